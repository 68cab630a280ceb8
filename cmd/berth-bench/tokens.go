package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// tokenSource is the client side of the Docker token flow, as docker and
// crane do it: a 401 with a Bearer challenge sends the client to the
// challenge's realm for a token of the challenge's service and scope
// (with Basic credentials), and the request is retried with it. Tokens
// are cached per scope until shortly before they expire, and every later
// request to a repository sends that repository's token up front, so a
// warm client makes no token round trips at all.
//
// Requests read the per-repository tokens through an atomic pointer to a
// map that is replaced, never changed, so the hot path takes no lock: on
// a bench server without authentication the flow must cost nothing that
// would bias a comparison.
type tokenSource struct {
	user, password string
	hc             *http.Client
	now            func() time.Time

	// mu serialises fetches: sixteen workers meeting the same challenge
	// at once make one token request, not sixteen.
	mu      sync.Mutex
	byScope map[string]bearer
	realm   string // learned from the first challenge
	service string

	byRepo atomic.Pointer[map[string]bearer]
	// fetches counts token requests made, so a benchmark can say how
	// many fell inside its timed rounds.
	fetches atomic.Int64
}

// bearer is one token and when the client stops using it.
type bearer struct {
	token  string
	scopes []string
	renew  time.Time // shortly before expiry
}

// renewBefore is how long before a token's expiry the client gets a new
// one; a token closer to its end could expire on the way.
const renewBefore = 30 * time.Second

// defaultTokenLifetime is the token spec's default when expires_in is
// missing.
const defaultTokenLifetime = 60 * time.Second

// parseCredentials reads a --auth flag: user:password.
func parseCredentials(s string) (user, password string, err error) {
	user, password, ok := strings.Cut(s, ":")
	if !ok || user == "" {
		return "", "", errors.New("--auth wants user:password")
	}
	return user, password, nil
}

func newTokenSource(hc *http.Client, user, password string) *tokenSource {
	t := &tokenSource{user: user, password: password, hc: hc, now: time.Now, byScope: map[string]bearer{}}
	t.byRepo.Store(&map[string]bearer{})
	return t
}

// forPath returns the token to send up front for a request path (or full
// URL), or "" when the client holds none that is still fresh.
func (t *tokenSource) forPath(path string) string {
	repo := repoOf(path)
	if repo == "" {
		return ""
	}
	b, ok := (*t.byRepo.Load())[repo]
	if !ok || !t.now().Before(b.renew) {
		return ""
	}
	return b.token
}

// answer handles a 401: it gets a token for the challenge in hdr and
// returns it, or ok false when the challenge is not a Bearer one (the
// caller then returns the 401 as it is).
func (t *tokenSource) answer(ctx context.Context, hdr http.Header) (string, bool, error) {
	ch, ok := parseChallenge(hdr.Get("WWW-Authenticate"))
	if !ok {
		return "", false, nil
	}
	scopes := strings.Fields(ch.scope)
	b, err := t.obtain(ctx, ch.realm, ch.service, scopes, false)
	if err != nil {
		return "", true, err
	}
	return b.token, true, nil
}

// prefetch gets a token for repo with actions (e.g. "pull,push") before a
// timed run, learning the realm from a ping of /v2/ if no challenge was
// seen yet. A registry that answers the ping with 200 wants no token, and
// prefetch does nothing. A token is fetched even when one is cached, so
// it lasts the whole run.
func (t *tokenSource) prefetch(ctx context.Context, c *client, repo, actions string) error {
	t.mu.Lock()
	realm, service := t.realm, t.service
	t.mu.Unlock()
	if realm == "" {
		code, hdr, body, _, err := c.send(ctx, "GET", "/v2/", nil, "", nil, -1, true)
		if err != nil {
			return fmt.Errorf("ping: %w", err)
		}
		if code == http.StatusOK {
			return nil
		}
		ch, ok := parseChallenge(hdr.Get("WWW-Authenticate"))
		if code != http.StatusUnauthorized || !ok {
			return fmt.Errorf("ping: status %d without a Bearer challenge: %s", code, strings.TrimSpace(string(body)))
		}
		realm, service = ch.realm, ch.service
	}
	_, err := t.obtain(ctx, realm, service, []string{"repository:" + repo + ":" + actions}, true)
	return err
}

// obtain returns a token for scopes: the cached one while it is fresh
// (another worker may just have fetched it) unless fresh is set, or a
// new one.
func (t *tokenSource) obtain(ctx context.Context, realm, service string, scopes []string, fresh bool) (bearer, error) {
	key := strings.Join(scopes, " ")
	t.mu.Lock()
	defer t.mu.Unlock()
	if b, ok := t.byScope[key]; ok && !fresh && t.now().Before(b.renew) {
		return b, nil
	}
	b, err := t.fetch(ctx, realm, service, scopes)
	if err != nil {
		return bearer{}, err
	}
	t.realm, t.service = realm, service
	t.byScope[key] = b
	// The first scope is the request's own repository (a mount's source
	// comes second): later requests to it send this token up front.
	if len(scopes) > 0 {
		if target := targetOfScope(scopes[0]); target != "" {
			old := *t.byRepo.Load()
			m := make(map[string]bearer, len(old)+1)
			for k, v := range old {
				m[k] = v
			}
			m[target] = b
			t.byRepo.Store(&m)
		}
	}
	return b, nil
}

// fetch asks the realm for a token, retrying while the registry says it
// is not ready yet (503 with Retry-After: no signing key right after start).
func (t *tokenSource) fetch(ctx context.Context, realm, service string, scopes []string) (bearer, error) {
	u, err := url.Parse(realm)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") {
		return bearer{}, fmt.Errorf("token realm %q is not an http(s) URL", realm)
	}
	q := u.Query()
	if service != "" {
		q.Set("service", service)
	}
	for _, s := range scopes {
		q.Add("scope", s)
	}
	u.RawQuery = q.Encode()
	for attempt := 0; ; attempt++ {
		t.fetches.Add(1)
		start := t.now()
		req, err := http.NewRequestWithContext(ctx, "GET", u.String(), nil)
		if err != nil {
			return bearer{}, err
		}
		req.SetBasicAuth(t.user, t.password)
		resp, err := t.hc.Do(req)
		if err != nil {
			return bearer{}, fmt.Errorf("token from %s: %w", realm, err)
		}
		body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		resp.Body.Close()
		if err != nil {
			return bearer{}, fmt.Errorf("token from %s: %w", realm, err)
		}
		if resp.StatusCode == http.StatusServiceUnavailable && attempt < 30 {
			wait, _ := strconv.Atoi(resp.Header.Get("Retry-After"))
			select {
			case <-ctx.Done():
				return bearer{}, ctx.Err()
			case <-time.After(time.Duration(min(max(wait, 1), 5)) * time.Second):
			}
			continue
		}
		if resp.StatusCode != http.StatusOK {
			return bearer{}, fmt.Errorf("token from %s: status %d: %s (check --auth)", realm, resp.StatusCode, strings.TrimSpace(string(body)))
		}
		var tr struct {
			Token       string `json:"token"`
			AccessToken string `json:"access_token"`
			ExpiresIn   int    `json:"expires_in"`
		}
		if err := json.Unmarshal(body, &tr); err != nil {
			return bearer{}, fmt.Errorf("token from %s: not a token response: %w", realm, err)
		}
		tok := tr.Token
		if tok == "" {
			tok = tr.AccessToken
		}
		if tok == "" {
			return bearer{}, fmt.Errorf("token from %s: the response holds no token", realm)
		}
		life := defaultTokenLifetime
		if tr.ExpiresIn > 0 {
			life = time.Duration(tr.ExpiresIn) * time.Second
		}
		// A token shorter-lived than the margin is used for half its life.
		margin := min(renewBefore, life/2)
		return bearer{token: tok, scopes: scopes, renew: start.Add(life - margin)}, nil
	}
}

// challenge is a parsed `WWW-Authenticate: Bearer ...` header.
type challenge struct {
	realm, service, scope string
}

// parseChallenge reads a Bearer challenge's parameters (RFC 7235
// auth-params; quoted values may hold commas, as "pull,push" does).
func parseChallenge(h string) (challenge, bool) {
	scheme, rest, _ := strings.Cut(strings.TrimSpace(h), " ")
	if !strings.EqualFold(scheme, "Bearer") {
		return challenge{}, false
	}
	params := map[string]string{}
	for {
		rest = strings.TrimLeft(rest, " \t,")
		if rest == "" {
			break
		}
		key, after, ok := strings.Cut(rest, "=")
		if !ok {
			return challenge{}, false
		}
		key = strings.ToLower(strings.TrimSpace(key))
		after = strings.TrimLeft(after, " \t")
		var val strings.Builder
		if strings.HasPrefix(after, `"`) {
			i, closed := 1, false
			for ; i < len(after); i++ {
				if after[i] == '\\' && i+1 < len(after) {
					i++
					val.WriteByte(after[i])
					continue
				}
				if after[i] == '"' {
					closed = true
					break
				}
				val.WriteByte(after[i])
			}
			if !closed {
				return challenge{}, false
			}
			rest = after[i+1:]
		} else {
			v, r, _ := strings.Cut(after, ",")
			val.WriteString(strings.TrimSpace(v))
			rest = r
		}
		params[key] = val.String()
	}
	if params["realm"] == "" {
		return challenge{}, false
	}
	return challenge{realm: params["realm"], service: params["service"], scope: params["scope"]}, true
}

// catalogTarget stands for the catalog among repository names; no
// repository can be called that (a name's components start with a letter
// or digit).
const catalogTarget = "_catalog"

// targetOfScope is the repository a scope names (or catalogTarget), as
// repoOf would find it in a request path.
func targetOfScope(scope string) string {
	typ, rest, _ := strings.Cut(scope, ":")
	// The name may hold a port-like colon in other registries' scopes; the
	// actions come after the last colon.
	i := strings.LastIndex(rest, ":")
	if i <= 0 {
		return ""
	}
	switch name := rest[:i]; {
	case typ == "repository":
		return name
	case typ == "registry" && name == "catalog":
		return catalogTarget
	}
	return ""
}

// repoOf is the repository a /v2/ request path or URL names,
// catalogTarget for the catalog, or "" for the ping and anything else. It reads from the end, as the
// registry's router does, since a repository name may itself contain
// "blobs" or "manifests" as a component.
func repoOf(p string) string {
	if i := strings.Index(p, "/v2/"); i >= 0 {
		p = p[i+len("/v2/"):]
	} else {
		return ""
	}
	p, _, _ = strings.Cut(p, "?")
	if p == catalogTarget {
		return catalogTarget
	}
	segs := strings.Split(p, "/")
	n := len(segs)
	switch {
	case n >= 4 && segs[n-3] == "blobs" && segs[n-2] == "uploads":
		return strings.Join(segs[:n-3], "/")
	case n >= 3 && segs[n-2] == "tags" && segs[n-1] == "list":
		return strings.Join(segs[:n-2], "/")
	case n >= 2 && (segs[n-2] == "manifests" || segs[n-2] == "blobs" || segs[n-2] == "referrers"):
		return strings.Join(segs[:n-2], "/")
	}
	return ""
}
