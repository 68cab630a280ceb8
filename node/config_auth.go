package node

import (
	"errors"
	"fmt"
	"time"

	"github.com/berth-registry/berth/auth"
)

// AuthConfig turns on authentication of the OCI API (node/access).
type AuthConfig struct {
	// Mode is "auto" (the default: on in a cluster, off for a single
	// node, whose default listens on loopback only), "on" or "off".
	Mode string `yaml:"mode"`
	// Service is the token audience and the challenge's service.
	Service string `yaml:"service"`
	// Issuer is the iss of tokens this cluster signs.
	Issuer string `yaml:"issuer"`
	// Realm is the token endpoint URL sent in challenges; empty derives
	// it from each request (<scheme>://<Host>/token).
	Realm string `yaml:"realm"`
	// TokenTTL is how long a token lives (default 5m, at most 1h).
	TokenTTL time.Duration `yaml:"tokenttl"`
	// KeyRotation is how often the leader replaces the signing key.
	KeyRotation time.Duration `yaml:"keyrotation"`
	// Algorithm of new signing keys: EdDSA (default) or ES256.
	Algorithm string `yaml:"algorithm"`
	// External token servers whose tokens are accepted (YAML only).
	External []ExternalIssuer `yaml:"external"`
	// OIDC lets users sign in with an OIDC provider's ID token as their
	// password; off unless oidc.issuer is set.
	OIDC OIDCConfig `yaml:"oidc"`
}

// OIDCConfig is an OIDC provider whose ID tokens sign users in.
type OIDCConfig struct {
	// Issuer is the provider's iss (https://accounts.example.com).
	Issuer string `yaml:"issuer"`
	// ClientID is the aud the ID tokens must carry.
	ClientID string `yaml:"clientid"`
	// JWKS is a file with the provider's keys; JWKSURL is fetched at
	// start and every 10 minutes instead (the provider's jwks_uri).
	JWKS    string `yaml:"jwks"`
	JWKSURL string `yaml:"jwksurl"`
	// UsernameClaim names the claim that is the user's name in
	// Namespace members (default preferred_username; "sub" for the
	// subject).
	UsernameClaim string `yaml:"usernameclaim"`
}

// ExternalIssuer is a token server Berth trusts, as Distribution's
// auth.token: its iss, and its keys as a certificate bundle or a JWKS
// document (an OIDC provider's jwks_uri saved to a file).
type ExternalIssuer struct {
	Issuer     string `yaml:"issuer"`
	CertBundle string `yaml:"certbundle"`
	JWKS       string `yaml:"jwks"`
}

func defaultAuthConfig() AuthConfig {
	return AuthConfig{Mode: "auto", Service: "berth", Issuer: "berth", TokenTTL: auth.DefaultTokenTTL,
		KeyRotation: 7 * 24 * time.Hour, Algorithm: auth.AlgEdDSA, OIDC: OIDCConfig{UsernameClaim: "preferred_username"}}
}

// AuthEnabled says whether the OCI API asks for credentials.
func (c Config) AuthEnabled() bool {
	switch c.Auth.Mode {
	case "on":
		return true
	case "off":
		return false
	}
	return c.Clustered()
}

func (c AuthConfig) validate() []error {
	var errs []error
	switch c.Mode {
	case "auto", "on", "off":
	default:
		errs = append(errs, fmt.Errorf("auth.mode: %q is not one of auto, on, off", c.Mode))
	}
	if c.Service == "" || c.Issuer == "" {
		errs = append(errs, errors.New("auth.service and auth.issuer must not be empty"))
	}
	if c.TokenTTL <= 0 || c.TokenTTL > auth.MaxTokenTTL {
		errs = append(errs, fmt.Errorf("auth.tokenttl: between 1s and %s", auth.MaxTokenTTL))
	}
	if c.KeyRotation < time.Hour {
		errs = append(errs, errors.New("auth.keyrotation: at least 1h"))
	}
	if c.Algorithm != auth.AlgEdDSA && c.Algorithm != auth.AlgES256 {
		errs = append(errs, fmt.Errorf("auth.algorithm: %q is not EdDSA or ES256", c.Algorithm))
	}
	if o := c.OIDC; o.Issuer != "" {
		if o.ClientID == "" {
			errs = append(errs, errors.New("auth.oidc.clientid: required with auth.oidc.issuer (the aud of the ID tokens)"))
		}
		if (o.JWKS == "") == (o.JWKSURL == "") {
			errs = append(errs, errors.New("auth.oidc: set one of jwks (a file) or jwksurl (the provider's jwks_uri)"))
		}
	} else if o.ClientID != "" || o.JWKS != "" || o.JWKSURL != "" {
		errs = append(errs, errors.New("auth.oidc.issuer: required when any other auth.oidc key is set"))
	}
	for i, e := range c.External {
		switch {
		case e.Issuer == "":
			errs = append(errs, fmt.Errorf("auth.external[%d].issuer: required", i))
		case e.Issuer == c.Issuer:
			errs = append(errs, fmt.Errorf("auth.external[%d].issuer: %q is this cluster's own issuer (auth.issuer)", i, e.Issuer))
		case (e.CertBundle == "") == (e.JWKS == ""):
			errs = append(errs, fmt.Errorf("auth.external[%d]: set one of certbundle or jwks", i))
		}
	}
	return errs
}
