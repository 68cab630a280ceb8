package access

import (
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/berth-registry/berth/auth"
	"github.com/berth-registry/berth/events"
	"github.com/berth-registry/berth/fsm"
	"github.com/berth-registry/berth/node/api"
)

// caller is an authenticated request's identity and, for a bearer token,
// its claims.
type caller struct {
	id     auth.Identity
	claims *auth.Claims // nil for Basic credentials and none
	own    bool         // claims signed by this cluster
	actor  string
}

// Gate authenticates and authorizes every /v2/ request before next sees
// it, and hands next the view it decided on (api.WithView) and the actor
// for the events the request causes.
func (s *Server) Gate(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		needs, ping, ok := api.Needs(r)
		if !ok {
			// No endpoint or an invalid name: the handler's 404 or
			// 400 says so, and reveals nothing about any repository.
			next.ServeHTTP(w, r)
			return
		}
		creds, err := parseAuthorization(r.Header.Get("Authorization"))
		if err != nil {
			s.fail(r, "login", "malformed")
			s.challenge(w, r, needs, "invalid_request", http.StatusBadRequest, "UNAUTHORIZED", err.Error())
			return
		}
		view, err := s.views.ReadView(r.Context())
		if err != nil {
			writeError(w, r, http.StatusServiceUnavailable, "UNAVAILABLE", "cannot read the cluster state to authorize the request: "+err.Error())
			return
		}
		// A bearer token's allowed request, decided before at the same
		// authorization epoch, is decided again the same way: the token,
		// the need and every Namespace, User and Robot are unchanged.
		if creds.scheme == "bearer" && len(needs) == 1 && !ping {
			if actor, ok := s.decisions.allowed(creds.token, needs[0], view.AuthEpoch(), s.cfg.Now()); ok {
				s.pass(w, r, next, view, actor)
				return
			}
		}
		c, err := s.authenticate(view, creds)
		if err != nil {
			s.fail(r, "login", "credentials")
			s.audit.refused(r, "sign-in refused", err)
			code := ""
			if creds.scheme == "bearer" {
				code = "invalid_token"
			}
			s.challenge(w, r, needs, code, http.StatusUnauthorized, "UNAUTHORIZED", publicReason(creds, err))
			return
		}
		if ping && creds.scheme == "" {
			// A client discovers the token endpoint here.
			s.challenge(w, r, nil, "", http.StatusUnauthorized, "UNAUTHORIZED", "authentication required: sign in (docker login) or get a token from the realm")
			return
		}
		for _, n := range needs {
			allowed, err := s.allowed(view, c, n)
			if err != nil {
				writeError(w, r, http.StatusServiceUnavailable, "UNAVAILABLE", "cannot decide access: "+err.Error())
				return
			}
			if allowed {
				continue
			}
			s.fail(r, "denied", n.Action)
			s.audit.refused(r, "access denied", fmt.Errorf("%s may not %s %s", actorOr(c.actor), n.Action, target(n)))
			switch {
			case creds.scheme == "":
				s.challenge(w, r, needs, "", http.StatusUnauthorized, "UNAUTHORIZED", "authentication required to "+n.Action+" "+target(n))
			case c.claims != nil:
				s.challenge(w, r, needs, "insufficient_scope", http.StatusUnauthorized, "UNAUTHORIZED",
					"the token does not grant "+n.Action+" on "+target(n)+": request a token with that scope")
			default:
				writeError(w, r, http.StatusForbidden, "DENIED", actorOr(c.actor)+" may not "+n.Action+" "+target(n)+": ask a namespace admin for a role that allows it")
			}
			return
		}
		if creds.scheme == "bearer" && len(needs) == 1 && !ping && c.claims != nil {
			until := c.claims.ExpiresAt
			if c.id.Kind == auth.RobotIdentity {
				// A robot's expiry moves no epoch: it caps the entry.
				if spec, ok, err := (auth.ViewDirectory{View: view}).Robot(c.id.Name); err != nil || !ok {
					until = time.Time{}
				} else if exp := spec.ExpiresAt(); !exp.IsZero() && exp.Before(until) {
					until = exp.Add(-auth.Leeway)
				}
			}
			s.decisions.remember(creds.token, needs[0], view.AuthEpoch(), until, c.actor)
		}
		s.pass(w, r, next, view, c.actor)
	})
}

// pass hands an authorized request to the API with the view it was
// decided on and the actor its events carry.
func (s *Server) pass(w http.ResponseWriter, r *http.Request, next http.Handler, view *fsm.View, actor string) {
	ctx := api.WithView(r.Context(), view)
	if actor != "" {
		ctx = events.WithOrigin(ctx, events.Origin{Actor: actor})
	}
	next.ServeHTTP(w, r.WithContext(ctx))
}

func target(n api.Need) string {
	if n.Catalog {
		return "the catalog"
	}
	return "repository " + n.Repository
}

func actorOr(a string) string {
	if a == "" {
		return "anonymous"
	}
	return a
}

// publicReason is what a refused client is told: for Basic credentials
// never which part was wrong; for a token, why it is not valid.
func publicReason(c credentials, err error) string {
	if c.scheme == "basic" {
		return auth.ErrBadCredentials.Error()
	}
	for _, e := range []error{auth.ErrTokenExpired, auth.ErrTokenNotYetValid, auth.ErrUnknownKey, auth.ErrWrongAlgorithm,
		auth.ErrBadSignature, auth.ErrWrongAudience, auth.ErrUnknownIssuer, auth.ErrTokenMalformed, auth.ErrTokenTooLarge} {
		if errors.Is(err, e) {
			return e.Error() + ": get a new token"
		}
	}
	return "token refused: get a new token"
}

// authenticate turns credentials into a caller. No credentials are the
// anonymous caller.
func (s *Server) authenticate(v *fsm.View, c credentials) (caller, error) {
	switch c.scheme {
	case "":
		return caller{}, nil
	case "basic":
		id, err := s.signIn(v, c)
		if err != nil {
			return caller{}, err
		}
		return caller{id: id, actor: actorOf(id)}, nil
	}
	if s.isAdminToken(c.token) {
		return caller{id: adminIdentity, actor: AdminSubject}, nil
	}
	ct, ok := s.creds.token(c.token, s.cfg.Now())
	if !ok {
		claims, own, err := s.verify(v, c.token)
		if err != nil {
			return caller{}, err
		}
		ct = cachedToken{claims: claims, own: own}
		s.creds.putToken(c.token, ct)
	}
	out := caller{claims: &ct.claims, own: ct.own}
	if !ct.own {
		out.actor = ct.claims.Subject + "@" + ct.claims.Issuer
		return out, nil
	}
	id, err := s.identityOf(v, ct.claims.Subject)
	if err != nil {
		return caller{}, fmt.Errorf("%w: %w", auth.ErrUnknownIssuer, err)
	}
	out.id, out.actor = id, actorOf(id)
	return out, nil
}

// verify checks a token against this cluster's keys and the external
// issuers.
func (s *Server) verify(v *fsm.View, tok string) (auth.Claims, bool, error) {
	trusts := s.cfg.External
	if _, set, err := s.keys.at(v); err == nil {
		trusts = append([]auth.Trust{{Issuer: s.cfg.Issuer, Keys: set}}, trusts...)
	} else if !errors.Is(err, ErrNoKey) {
		return auth.Claims{}, false, err
	}
	vf := auth.Verifier{Service: s.cfg.Service, Trusts: trusts, Now: s.cfg.Now}
	c, err := vf.Verify(tok)
	if err != nil {
		return auth.Claims{}, false, err
	}
	return c, c.Issuer == s.cfg.Issuer, nil
}

func actorOf(id auth.Identity) string {
	if id.Kind == auth.Anonymous {
		return ""
	}
	return id.Subject()
}

// allowed decides one need: a token must grant it and, for Berth's own
// tokens and for Basic credentials, the live state must still allow it.
func (s *Server) allowed(v *fsm.View, c caller, n api.Need) (bool, error) {
	typ, name := auth.TypeRepository, n.Repository
	if n.Catalog {
		typ, name = auth.TypeRegistry, auth.CatalogName
	}
	if c.claims != nil && !c.claims.Allows(typ, name, n.Action) {
		return false, nil
	}
	if c.claims != nil && !c.own {
		return true, nil
	}
	if n.Catalog {
		return c.id.ClusterAdmin && c.id.Kind != auth.Anonymous, nil
	}
	return auth.Can(c.id, auth.NamespaceOf(n.Repository), n.Action, s.dir(v))
}

// writeError answers the gate's refusals as the API answers its errors,
// with the API version header a client looks for.
func writeError(w http.ResponseWriter, r *http.Request, status int, code, msg string) {
	w.Header().Set("Docker-Distribution-API-Version", "registry/2.0")
	api.WriteError(w, r, status, code, msg)
}

// challenge answers 401 (or status) with a Bearer challenge naming the
// realm, the service and the scope the request needs, as Distribution's
// token spec describes.
func (s *Server) challenge(w http.ResponseWriter, r *http.Request, needs []api.Need, errCode string, status int, code, msg string) {
	var b strings.Builder
	fmt.Fprintf(&b, `Bearer realm=%q,service=%q`, s.realm(r), s.cfg.Service)
	if sc := scopeOf(needs); sc != "" {
		fmt.Fprintf(&b, `,scope=%q`, sc)
	}
	if errCode != "" {
		fmt.Fprintf(&b, `,error=%q`, errCode)
	}
	w.Header().Set("WWW-Authenticate", b.String())
	writeError(w, r, status, code, msg)
}

// scopeOf is the scope a client should ask for: pushes ask for pull and
// push together, as docker does, so one token serves the whole push.
func scopeOf(needs []api.Need) string {
	var scopes []string
	for _, n := range needs {
		switch {
		case n.Catalog:
			scopes = append(scopes, "registry:catalog:*")
		case n.Action == auth.ActionPush:
			scopes = append(scopes, "repository:"+n.Repository+":pull,push")
		default:
			scopes = append(scopes, "repository:"+n.Repository+":"+n.Action)
		}
	}
	return strings.Join(scopes, " ")
}

// realm is the token endpoint's URL.
func (s *Server) realm(r *http.Request) string {
	if s.cfg.Realm != "" {
		return s.cfg.Realm
	}
	scheme := "http"
	if r.TLS != nil || strings.EqualFold(r.Header.Get("X-Forwarded-Proto"), "https") {
		scheme = "https"
	}
	return scheme + "://" + r.Host + "/token"
}
