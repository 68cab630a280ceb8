// Package access decides who may use the OCI API: the Docker token
// endpoint (GET and POST /token) that signs short-lived JWTs with the
// cluster's key, and the gate in front of /v2/ that authenticates each
// request (a bearer token, Basic credentials, or none) and authorizes it
// from the FSM state at the read index.
//
// The rules themselves (scopes, roles, the decision, token signing and
// verification) live in package auth, which does no HTTP; this package is
// their HTTP face. Tokens Berth signed are checked again against the live
// state on every request, so a member removed from a namespace, a
// disabled user or a deleted robot is refused on every node as soon as the
// change is acknowledged, not when their token expires. Tokens of an
// external issuer carry their own grants, as Distribution's auth.token.
package access

import (
	"context"
	"log/slog"
	"time"

	"github.com/berth-registry/berth/auth"
	"github.com/berth-registry/berth/fsm"
)

// Views reads the state decisions are made from.
type Views interface {
	ReadView(ctx context.Context) (*fsm.View, error)
}

// Config configures the token endpoint and the gate.
type Config struct {
	// Service is the aud of tokens and the service of challenges.
	Service string
	// Issuer is the iss of the tokens Berth signs.
	Issuer string
	// Realm is the token endpoint's URL for challenges; empty means
	// <scheme>://<host>/token of the request, which is right behind a
	// load balancer that keeps the Host header.
	Realm string
	// TokenTTL is a token's lifetime (auth.DefaultTokenTTL if zero).
	TokenTTL time.Duration
	// AdminToken, presented as a bearer token or as a Basic password,
	// acts as a cluster admin.
	AdminToken string
	// SealSecret opens the sealed signing keys in the log.
	SealSecret []byte
	// External are other token servers whose tokens are accepted.
	External []auth.Trust
	// OIDC, if set, returns the verifier of an OIDC provider's ID
	// tokens (its keys may be refreshed), or nil while it has none. A
	// user signs in with the ID token as password.
	OIDC func() *auth.Verifier
	// Failed hears of each refused sign-in or request (metrics); kind is
	// "login" or "denied", reason a short fixed word.
	Failed func(kind, reason string)
	Logger *slog.Logger
	// Now defaults to time.Now.
	Now func() time.Time
}

// Server is the token endpoint and the gate of one node.
type Server struct {
	cfg   Config
	views Views
	keys  keyring
	creds credentialCache
	// decisions caches allowed bearer requests per authorization epoch.
	decisions decisionCache
	specs     specCache
	audit     auditLog
}

// New returns the access layer; it reads the signing keys from the views
// it is given and opens them with cfg.SealSecret.
func New(cfg Config, views Views) *Server {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.TokenTTL == 0 {
		cfg.TokenTTL = auth.DefaultTokenTTL
	}
	if cfg.Failed == nil {
		cfg.Failed = func(string, string) {}
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	s := &Server{cfg: cfg, views: views}
	s.keys.secret = cfg.SealSecret
	s.creds.init()
	s.decisions.init()
	s.specs.init()
	s.audit.init(cfg.Logger, cfg.Now)
	return s
}
