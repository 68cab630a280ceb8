package node

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"github.com/berth-registry/berth/auth"
	"github.com/berth-registry/berth/node/access"
	"github.com/berth-registry/berth/node/admin"
	"github.com/berth-registry/berth/node/httperr"
)

// SealKeyFile holds, on a single node without a cluster secret, the secret
// the token signing keys are sealed under (in a cluster, the cluster
// secret seals them, so every node can sign).
const SealKeyFile = "auth.seal"

// openAccess builds the OCI API's token endpoint and gate, or nil when
// authentication is off.
func (n *Node) openAccess() (*access.Server, error) {
	if !n.cfg.AuthEnabled() {
		return nil, nil
	}
	secret := n.cfg.Cluster.secret
	if secret == "" {
		var err error
		if secret, err = loadOrCreateToken(filepath.Join(n.cfg.Storage.DataDir, SealKeyFile)); err != nil {
			return nil, fmt.Errorf("auth seal key: %w", err)
		}
	}
	n.sealSecret = []byte(secret)
	var external []auth.Trust
	for i, e := range n.cfg.Auth.External {
		t, err := loadTrust(e)
		if err != nil {
			return nil, fmt.Errorf("auth.external[%d] (%s): %w", i, e.Issuer, err)
		}
		external = append(external, t)
	}
	a := n.cfg.Auth
	cfg := access.Config{
		Service: a.Service, Issuer: a.Issuer, Realm: a.Realm, TokenTTL: a.TokenTTL,
		AdminToken: n.token, SealSecret: n.sealSecret, External: external,
		Failed: n.metrics.AuthFailed, Logger: n.logger.With("part", "auth"),
	}
	if a.OIDC.Issuer != "" {
		p, err := newOIDCProvider(a.OIDC)
		if err != nil {
			return nil, err
		}
		n.oidc, cfg.OIDC = p, p.Verifier
	}
	return access.New(cfg, n), nil
}

func loadTrust(e ExternalIssuer) (auth.Trust, error) {
	path, parse := e.CertBundle, auth.ParseCertBundle
	if e.JWKS != "" {
		path, parse = e.JWKS, auth.ParseJWKS
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return auth.Trust{}, err
	}
	set, err := parse(b)
	if err != nil {
		return auth.Trust{}, err
	}
	return auth.Trust{Issuer: e.Issuer, Keys: set}, nil
}

// guardAPI puts the gate in front of the OCI API when auth is on.
func (n *Node) guardAPI(h http.Handler) http.Handler {
	if n.access == nil {
		return h
	}
	return n.access.Gate(h)
}

// runSigningKeys keeps a fresh token signing key while this node leads:
// one at once when there is none, and a new one every auth.keyrotation.
// Old keys keep verifying until their tokens expired, so rotation needs
// no downtime (node/access keyring).
func (n *Node) runSigningKeys(ctx context.Context) {
	for {
		wait := time.Minute
		keys := n.fsm.View().SigningKeys()
		if len(keys) == 0 || time.Since(keys[len(keys)-1].Created) >= n.cfg.Auth.KeyRotation {
			if err := n.addSigningKey(ctx); err != nil {
				n.logger.Warn("could not add a token signing key; retrying", "err", err)
				wait = 5 * time.Second
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
	}
}

// addSigningKey runs only with authentication on (openAccess set the
// seal secret).
func (n *Node) addSigningKey(ctx context.Context) error {
	ev, err := access.NewKey(n.cfg.Auth.Algorithm, n.sealSecret, time.Now())
	if err != nil {
		return err
	}
	pctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if _, err := n.Propose(pctx, ev); err != nil {
		return fmt.Errorf("propose signing key %s: %w", ev.ID, err)
	}
	n.logger.Info("token signing key added", "kid", ev.ID, "alg", ev.Alg)
	return nil
}

// RotateSigningKey adds a new signing key now (clusterctl auth rotate).
func (n *Node) RotateSigningKey(ctx context.Context) error { return n.addSigningKey(ctx) }

// authAdmin serves POST /admin/v1/auth/rotate-key: a new signing key now
// (after a suspected leak, say). Tokens signed by the old key keep working
// until they expire.
func (n *Node) authAdmin() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /admin/v1/auth/rotate-key", func(w http.ResponseWriter, r *http.Request) {
		if n.access == nil {
			adminError(w, http.StatusConflict, "authentication is off (auth.mode): there is no signing key to rotate")
			return
		}
		if err := n.RotateSigningKey(r.Context()); err != nil {
			adminError(w, httperr.Status(err), err.Error())
			return
		}
		keys := n.fsm.View().SigningKeys()
		writeJSON(w, http.StatusOK, map[string]string{"kid": keys[len(keys)-1].ID})
	})
	return admin.Guard(n.token).Wrap(mux)
}
