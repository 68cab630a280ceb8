package access

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/berth-registry/berth/auth"
	"github.com/berth-registry/berth/fsm"
)

// AdminSubject is the sub of a token issued to the admin token. It holds
// a colon, which no user name can (Basic auth splits on the first colon),
// so no user can be confused with it.
const AdminSubject = "berth:admin"

// maxAuthorization bounds the Authorization header read (a token is at
// most auth.MaxTokenSize; Basic credentials are far smaller).
const maxAuthorization = auth.MaxTokenSize + 64

// credentials are what a request's Authorization header says.
type credentials struct {
	scheme   string // "", "basic" or "bearer"
	user     string
	password string
	token    string
}

// errMalformed is a header that is neither Basic nor Bearer, or broken.
var errMalformed = errors.New("malformed Authorization header: send Basic credentials or a Bearer token")

func parseAuthorization(h string) (credentials, error) {
	if h == "" {
		return credentials{}, nil
	}
	if len(h) > maxAuthorization {
		return credentials{}, fmt.Errorf("authorization header of %d bytes is too large (at most %d)", len(h), maxAuthorization)
	}
	scheme, rest, ok := strings.Cut(h, " ")
	rest = strings.TrimSpace(rest)
	if !ok || rest == "" {
		return credentials{}, errMalformed
	}
	switch {
	case strings.EqualFold(scheme, "Basic"):
		raw, err := base64.StdEncoding.DecodeString(rest)
		if err != nil {
			return credentials{}, fmt.Errorf("malformed Basic credentials: not base64")
		}
		user, pass, ok := strings.Cut(string(raw), ":")
		if !ok || user == "" {
			return credentials{}, fmt.Errorf("malformed Basic credentials: want user:password")
		}
		return credentials{scheme: "basic", user: user, password: pass}, nil
	case strings.EqualFold(scheme, "Bearer"):
		return credentials{scheme: "bearer", token: rest}, nil
	}
	return credentials{}, errMalformed
}

// isAdminToken compares in constant time; an unset admin token matches
// nothing.
func (s *Server) isAdminToken(secret string) bool {
	return s.cfg.AdminToken != "" && subtle.ConstantTimeCompare([]byte(secret), []byte(s.cfg.AdminToken)) == 1
}

// signIn checks Basic credentials against the state: the admin token as
// a password (any user name), a robot's secret (recognised by its
// prefix, with the robot's name as user name), or a user's password.
func (s *Server) signIn(v *fsm.View, c credentials) (auth.Identity, error) {
	if s.isAdminToken(c.password) {
		return adminIdentity, nil
	}
	acc := s.dir(v)
	if s.cfg.OIDC != nil && strings.Count(c.password, ".") == 2 && len(c.password) > 32 {
		return s.signInOIDC(v, c.password)
	}
	if strings.HasPrefix(c.password, auth.RobotSecretPrefix) {
		return auth.AuthenticateRobot(acc, c.user, c.password, s.cfg.Now())
	}
	// bcrypt costs tens of milliseconds by design; a client sending
	// Basic on every request pays it once a minute. The key holds the
	// stored hash, so a changed password misses, and the account's state
	// (disabled, deleted) is read afresh each time.
	spec, ok, err := acc.User(c.user)
	if err != nil {
		return auth.Identity{}, err
	}
	if ok && !spec.Disabled && s.creds.known(c.user, c.password, spec.PasswordHash) {
		return auth.Identity{Kind: auth.UserIdentity, Name: c.user, ClusterAdmin: spec.ClusterAdmin}, nil
	}
	id, err := auth.AuthenticateUser(acc, c.user, c.password)
	if err == nil {
		s.creds.remember(c.user, c.password, spec.PasswordHash)
	}
	return id, err
}

var adminIdentity = auth.Identity{Kind: auth.UserIdentity, Name: AdminSubject, ClusterAdmin: true}

// identityOf rebuilds, from the live state, the identity a Berth token's
// subject names: the token says who, the state says what they may do now.
func (s *Server) identityOf(v *fsm.View, sub string) (auth.Identity, error) {
	acc := s.dir(v)
	switch {
	case sub == "":
		return auth.Identity{}, nil
	case sub == AdminSubject:
		return adminIdentity, nil
	case strings.HasPrefix(sub, "oidc:"):
		return federated(acc, strings.TrimPrefix(sub, "oidc:"))
	case strings.HasPrefix(sub, "robot:"):
		name := strings.TrimPrefix(sub, "robot:")
		spec, ok, err := acc.Robot(name)
		switch {
		case err != nil:
			return auth.Identity{}, err
		case !ok:
			return auth.Identity{}, fmt.Errorf("robot %s no longer exists", name)
		case spec.Disabled:
			return auth.Identity{}, fmt.Errorf("robot %s is disabled", name)
		case !spec.ExpiresAt().IsZero() && !s.cfg.Now().Before(spec.ExpiresAt()):
			return auth.Identity{}, fmt.Errorf("robot %s expired", name)
		}
		return auth.Identity{Kind: auth.RobotIdentity, Name: name, Namespace: spec.Namespace, Role: spec.Role}, nil
	}
	spec, ok, err := acc.User(sub)
	switch {
	case err != nil:
		return auth.Identity{}, err
	case !ok:
		return auth.Identity{}, fmt.Errorf("user %s no longer exists", sub)
	case spec.Disabled:
		return auth.Identity{}, fmt.Errorf("user %s is disabled", sub)
	}
	return auth.Identity{Kind: auth.UserIdentity, Name: sub, ClusterAdmin: spec.ClusterAdmin}, nil
}

// credentialCache remembers, for a minute, Basic credentials that passed
// bcrypt, and verified tokens until they expire. Both are bounded: when
// full, the cache is emptied, which costs only a re-check.
type credentialCache struct {
	mu       sync.Mutex
	basic    map[[32]byte]time.Time
	tokens   map[[32]byte]cachedToken
	maxBasic int
	maxToken int
}

type cachedToken struct {
	claims auth.Claims
	own    bool // signed by this cluster
}

const (
	basicCacheTTL  = time.Minute
	maxCachedBasic = 4096
	maxCachedToken = 16384
)

func (c *credentialCache) init() {
	c.basic = map[[32]byte]time.Time{}
	c.tokens = map[[32]byte]cachedToken{}
	c.maxBasic, c.maxToken = maxCachedBasic, maxCachedToken
}

func basicKey(user, password, hash string) [32]byte {
	return sha256.Sum256([]byte(user + "\x00" + password + "\x00" + hash))
}

func (c *credentialCache) known(user, password, hash string) bool {
	k := basicKey(user, password, hash)
	c.mu.Lock()
	defer c.mu.Unlock()
	t, ok := c.basic[k]
	return ok && time.Since(t) < basicCacheTTL
}

func (c *credentialCache) remember(user, password, hash string) {
	k := basicKey(user, password, hash)
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.basic) >= c.maxBasic {
		clear(c.basic)
	}
	c.basic[k] = time.Now()
}

func (c *credentialCache) token(tok string, now time.Time) (cachedToken, bool) {
	k := sha256.Sum256([]byte(tok))
	c.mu.Lock()
	defer c.mu.Unlock()
	ct, ok := c.tokens[k]
	if ok && !now.Before(ct.claims.ExpiresAt.Add(auth.Leeway)) {
		delete(c.tokens, k)
		return cachedToken{}, false
	}
	return ct, ok
}

func (c *credentialCache) putToken(tok string, ct cachedToken) {
	k := sha256.Sum256([]byte(tok))
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.tokens) >= c.maxToken {
		clear(c.tokens)
	}
	c.tokens[k] = ct
}

// maxFederatedName bounds a name an OIDC provider asserts.
const maxFederatedName = 256

// signInOIDC accepts an OIDC ID token as a password: the provider vouches
// for the user's name, the namespaces say what the name may do.
func (s *Server) signInOIDC(v *fsm.View, idToken string) (auth.Identity, error) {
	vf := s.cfg.OIDC()
	if vf == nil {
		return auth.Identity{}, fmt.Errorf("%w: the OIDC provider's keys are not loaded yet", auth.ErrBadCredentials)
	}
	c, err := vf.Verify(idToken)
	if err != nil {
		return auth.Identity{}, fmt.Errorf("%w: OIDC token: %w", auth.ErrBadCredentials, err)
	}
	name := c.Username
	if name == "" {
		name = c.Subject
	}
	return federated(s.dir(v), name)
}

// federated is the identity of a user an OIDC provider named. A User of
// the same name, if any, may disable them or make them a cluster admin.
func federated(acc auth.Accounts, name string) (auth.Identity, error) {
	if name == "" || len(name) > maxFederatedName || strings.ContainsFunc(name, func(r rune) bool { return r < 0x20 || r == 0x7f }) {
		return auth.Identity{}, fmt.Errorf("%w: unusable user name from the OIDC provider", auth.ErrBadCredentials)
	}
	spec, ok, err := acc.User(name)
	if err != nil {
		return auth.Identity{}, err
	}
	if ok && spec.Disabled {
		return auth.Identity{}, fmt.Errorf("%w: user %s: %w", auth.ErrBadCredentials, name, auth.ErrDisabled)
	}
	return auth.Identity{Kind: auth.UserIdentity, Name: name, Federated: true, ClusterAdmin: ok && spec.ClusterAdmin}, nil
}

// ErrNoCredentials is Identify's answer to a request without an
// Authorization header.
var ErrNoCredentials = errors.New("sign in: send Basic credentials (a user's password, a robot's secret, or the admin token as password)")

// Identify authenticates a request's Basic credentials, or the admin
// token as a bearer token, against the state v, for pages that are not
// the OCI API (the web console). Other bearer tokens are refused: they
// carry scopes for the OCI API, not a session. A refusal is counted and
// audited like the gate's, and its error is safe to show the client.
func (s *Server) Identify(r *http.Request, v *fsm.View) (auth.Identity, error) {
	c, err := parseAuthorization(r.Header.Get("Authorization"))
	switch {
	case err != nil:
		s.fail(r, "login", "malformed")
		return auth.Identity{}, err
	case c.scheme == "":
		return auth.Identity{}, ErrNoCredentials
	case c.scheme == "bearer" && s.isAdminToken(c.token):
		return adminIdentity, nil
	case c.scheme == "bearer":
		s.fail(r, "login", "credentials")
		return auth.Identity{}, errors.New("this page takes Basic credentials or the admin token, not an OCI API token")
	}
	id, err := s.signIn(v, c)
	if err != nil {
		s.fail(r, "login", "credentials")
		s.audit.refused(r, "sign-in refused", err)
		return auth.Identity{}, auth.ErrBadCredentials
	}
	return id, nil
}
