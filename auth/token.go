package auth

import (
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// Token lifetimes and bounds.
const (
	// DefaultTokenTTL is how long a token is valid: long enough for one
	// push of a large image, short enough that a revoked member's token
	// soon stops working (the decision itself is re-made per request).
	DefaultTokenTTL = 5 * time.Minute
	// MaxTokenTTL bounds a configured lifetime.
	MaxTokenTTL = time.Hour
	// MaxTokenSize is the largest token read; anything larger is refused
	// before it is decoded.
	MaxTokenSize = 8 << 10
	// Leeway is the clock skew allowed for exp, nbf and iat, as in
	// Distribution's token spec.
	Leeway = 60 * time.Second
)

// Access is one entry of a token's access claim: what the bearer may do
// to one resource (Distribution's token spec).
type Access struct {
	Type    string   `json:"type"`
	Name    string   `json:"name"`
	Actions []string `json:"actions"`
}

// Claims are the verified contents of a token.
type Claims struct {
	Issuer    string
	Subject   string // empty for an anonymous token
	Audience  []string
	ExpiresAt time.Time
	NotBefore time.Time
	IssuedAt  time.Time
	ID        string
	Access    []Access
	// KeyID is the key that signed the token.
	KeyID string
	// Username is the Verifier's UsernameClaim, if it asked for one.
	Username string
}

// Allows says whether the token grants action on the resource.
func (c Claims) Allows(typ, name, action string) bool {
	for _, a := range c.Access {
		if a.Type == typ && a.Name == name {
			if (Scope{Actions: a.Actions}).Has(action) {
				return true
			}
		}
	}
	return false
}

// TokenIssuer signs tokens for one service with one key.
type TokenIssuer struct {
	// Issuer is the iss claim, the name verifiers know the issuer by.
	Issuer string
	Key    *SigningKey
	// TTL is the lifetime of a token; zero means DefaultTokenTTL.
	TTL time.Duration
	// Now and Rand default to time.Now and crypto/rand.Reader.
	Now  func() time.Time
	Rand io.Reader
}

// Issue signs a token for subject (empty for anonymous) to present to
// service (the aud claim), granting access. It returns the token and its
// claims (the caller answers expires_in and issued_at from them).
func (i *TokenIssuer) Issue(subject, service string, access []Access) (string, Claims, error) {
	if i.Key == nil || i.Issuer == "" || service == "" {
		return "", Claims{}, errors.New("issue token: issuer, key and service are required")
	}
	ttl := i.TTL
	if ttl == 0 {
		ttl = DefaultTokenTTL
	}
	if ttl < 0 || ttl > MaxTokenTTL {
		return "", Claims{}, fmt.Errorf("issue token: lifetime %s is not within (0, %s]", ttl, MaxTokenTTL)
	}
	now := time.Now
	if i.Now != nil {
		now = i.Now
	}
	rnd := i.Rand
	if rnd == nil {
		rnd = rand.Reader
	}
	var jti [16]byte
	if _, err := io.ReadFull(rnd, jti[:]); err != nil {
		return "", Claims{}, fmt.Errorf("issue token: token ID: %w", err)
	}
	if access == nil {
		access = []Access{}
	}
	t := now().Truncate(time.Second)
	c := Claims{
		Issuer: i.Issuer, Subject: subject, Audience: []string{service},
		IssuedAt: t, NotBefore: t, ExpiresAt: t.Add(ttl),
		ID: base64.RawURLEncoding.EncodeToString(jti[:]), Access: access, KeyID: i.Key.ID,
	}
	// aud is written as a single string, as Distribution's examples do;
	// verifiers accept a string or a list.
	tok := jwt.NewWithClaims(signingMethod(i.Key.Alg), jwt.MapClaims{
		"iss": c.Issuer, "sub": c.Subject, "aud": service,
		"exp": c.ExpiresAt.Unix(), "nbf": c.NotBefore.Unix(), "iat": c.IssuedAt.Unix(),
		"jti": c.ID, "access": access,
	})
	tok.Header["kid"] = i.Key.ID
	s, err := tok.SignedString(i.Key.priv)
	if err != nil {
		return "", Claims{}, fmt.Errorf("issue token: sign: %w", err)
	}
	if len(s) > MaxTokenSize {
		return "", Claims{}, fmt.Errorf("issue token: %d bytes, over the %d a verifier reads; ask for fewer scopes", len(s), MaxTokenSize)
	}
	return s, c, nil
}

func signingMethod(alg string) jwt.SigningMethod {
	switch alg {
	case AlgES256:
		return jwt.SigningMethodES256
	case AlgRS256:
		return jwt.SigningMethodRS256
	}
	return jwt.SigningMethodEdDSA
}
