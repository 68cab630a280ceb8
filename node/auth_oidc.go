package node

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"sync/atomic"
	"time"

	"github.com/berth-registry/berth/auth"
)

// oidcProvider holds the verifier of an OIDC provider's ID tokens, with
// its keys from a file, or from the provider's jwks_uri refreshed every
// oidcRefresh so that the provider's own key rotation is followed.
type oidcProvider struct {
	cfg OIDCConfig
	cur atomic.Pointer[auth.Verifier]
}

const (
	oidcRefresh  = 10 * time.Minute
	maxJWKSBytes = 1 << 20
)

func newOIDCProvider(cfg OIDCConfig) (*oidcProvider, error) {
	p := &oidcProvider{cfg: cfg}
	if cfg.JWKS != "" {
		b, err := os.ReadFile(cfg.JWKS)
		if err != nil {
			return nil, fmt.Errorf("auth.oidc.jwks: %w", err)
		}
		if err := p.load(b); err != nil {
			return nil, fmt.Errorf("auth.oidc.jwks %s: %w", cfg.JWKS, err)
		}
	}
	return p, nil
}

func (p *oidcProvider) load(doc []byte) error {
	set, err := auth.ParseJWKS(doc)
	if err != nil {
		return err
	}
	claim := p.cfg.UsernameClaim
	if claim == "sub" {
		claim = ""
	}
	p.cur.Store(&auth.Verifier{Service: p.cfg.ClientID, Trusts: []auth.Trust{{Issuer: p.cfg.Issuer, Keys: set}}, UsernameClaim: claim})
	return nil
}

// Verifier is the current verifier, nil until keys were loaded.
func (p *oidcProvider) Verifier() *auth.Verifier { return p.cur.Load() }

// refresh fetches the provider's keys now and then every oidcRefresh,
// until ctx ends. A failed fetch keeps the keys it had.
func (p *oidcProvider) refresh(ctx context.Context, log func(msg string, args ...any)) {
	if p.cfg.JWKSURL == "" {
		return
	}
	hc := &http.Client{Timeout: 10 * time.Second}
	for {
		if err := p.fetch(ctx, hc); err != nil {
			log("could not fetch the OIDC provider's keys; keeping the ones loaded before", "url", p.cfg.JWKSURL, "err", err)
		}
		wait := oidcRefresh
		if p.cur.Load() == nil {
			wait = 10 * time.Second
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
	}
}

func (p *oidcProvider) fetch(ctx context.Context, hc *http.Client) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, p.cfg.JWKSURL, nil)
	if err != nil {
		return err
	}
	resp, err := hc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("status %s", resp.Status)
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxJWKSBytes+1))
	if err != nil {
		return err
	}
	if len(b) > maxJWKSBytes {
		return fmt.Errorf("JWKS document over %d bytes", maxJWKSBytes)
	}
	return p.load(b)
}
