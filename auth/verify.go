package auth

import (
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// Why a token is refused. Verify wraps one of these, so the HTTP layer
// can count refusals by reason; the message says which key, which
// audience and so on.
var (
	ErrTokenTooLarge    = errors.New("token too large")
	ErrTokenMalformed   = errors.New("token malformed")
	ErrTokenExpired     = errors.New("token expired")
	ErrTokenNotYetValid = errors.New("token not valid yet")
	ErrUnknownKey       = errors.New("token signed by an unknown key")
	ErrWrongAlgorithm   = errors.New("token algorithm not allowed")
	ErrBadSignature     = errors.New("token signature invalid")
	ErrWrongAudience    = errors.New("token is for another service")
	ErrUnknownIssuer    = errors.New("token from an unknown issuer")
)

// maxChain bounds the certificates of an x5c header.
const maxChain = 4

// Trust is one issuer whose tokens are accepted and the keys it signs
// with: Berth's own (the cluster's current and previous keys) or an
// external token server's (a certificate bundle or a JWKS document).
type Trust struct {
	Issuer string
	Keys   *KeySet
}

// Verifier checks tokens presented to one service.
type Verifier struct {
	// Service is the audience a token must name.
	Service string
	Trusts  []Trust
	// Now defaults to time.Now.
	Now func() time.Time
	// UsernameClaim, if set, names a string claim copied to
	// Claims.Username (an OIDC ID token's preferred_username or email).
	UsernameClaim string
}

// Verify checks a token completely: its size, that it is a JWS signed
// with the algorithm of a known, unretired key of the issuer it names
// (never "none", never another algorithm than the key's), its audience,
// and exp, nbf and iat with Leeway. It returns the verified claims.
func (v *Verifier) Verify(token string) (Claims, error) {
	if len(token) > MaxTokenSize {
		return Claims{}, fmt.Errorf("%w: %d bytes, at most %d", ErrTokenTooLarge, len(token), MaxTokenSize)
	}
	now := time.Now
	if v.Now != nil {
		now = v.Now
	}
	var claims jwtClaims
	var used PublicKey
	parser := jwt.NewParser(
		jwt.WithLeeway(Leeway),
		jwt.WithTimeFunc(now),
		jwt.WithExpirationRequired(),
		jwt.WithIssuedAt(),
	)
	_, err := parser.ParseWithClaims(token, &claims, func(t *jwt.Token) (any, error) {
		// The algorithm is checked against the key, not the header's
		// word: "none" and HS256 (an RSA public key used as an HMAC
		// secret) never match a key.
		if alg := t.Method.Alg(); alg != AlgEdDSA && alg != AlgES256 && alg != AlgRS256 {
			return nil, fmt.Errorf("%w: %q", ErrWrongAlgorithm, alg)
		}
		k, err := v.key(t, &claims, now())
		if err != nil {
			return nil, err
		}
		if t.Method.Alg() != k.Alg {
			return nil, fmt.Errorf("%w: %s, but key %q is %s", ErrWrongAlgorithm, t.Method.Alg(), k.ID, k.Alg)
		}
		used = k
		return k.Key, nil
	})
	if err != nil {
		return Claims{}, classify(err)
	}
	if !slices.Contains(claims.Audience, v.Service) {
		return Claims{}, fmt.Errorf("%w: audience %q, this is %q", ErrWrongAudience, []string(claims.Audience), v.Service)
	}
	c := Claims{
		Issuer: claims.Issuer, Subject: claims.Subject, Audience: claims.Audience,
		ID: claims.ID, Access: claims.Access, KeyID: used.ID,
	}
	for _, d := range []struct {
		from *jwt.NumericDate
		to   *time.Time
	}{{claims.ExpiresAt, &c.ExpiresAt}, {claims.NotBefore, &c.NotBefore}, {claims.IssuedAt, &c.IssuedAt}} {
		if d.from != nil {
			*d.to = d.from.Time
		}
	}
	if v.UsernameClaim != "" {
		// The signature was checked above; the payload is the token's
		// second part, at most MaxTokenSize.
		parts := strings.Split(token, ".")
		raw, err := base64.RawURLEncoding.DecodeString(parts[1])
		var m map[string]any
		if err != nil || json.Unmarshal(raw, &m) != nil {
			return Claims{}, fmt.Errorf("%w: unreadable payload", ErrTokenMalformed)
		}
		name, _ := m[v.UsernameClaim].(string)
		if name == "" {
			return Claims{}, fmt.Errorf("%w: no %q claim", ErrTokenMalformed, v.UsernameClaim)
		}
		c.Username = name
	}
	return c, nil
}

type jwtClaims struct {
	jwt.RegisteredClaims
	Access []Access `json:"access"`
}

// key finds the key a token says it is signed with: the issuer's key by
// kid, or the leaf of an x5c chain that verifies up to the issuer's roots.
func (v *Verifier) key(t *jwt.Token, c *jwtClaims, now time.Time) (PublicKey, error) {
	var trust *Trust
	for i := range v.Trusts {
		if v.Trusts[i].Issuer == c.Issuer {
			trust = &v.Trusts[i]
			break
		}
	}
	if trust == nil || trust.Keys == nil {
		return PublicKey{}, fmt.Errorf("%w: %q", ErrUnknownIssuer, c.Issuer)
	}
	if chain, ok := t.Header["x5c"]; ok {
		return trust.Keys.chainKey(chain, now)
	}
	kid, _ := t.Header["kid"].(string)
	if kid == "" {
		return PublicKey{}, fmt.Errorf("%w: the token has neither kid nor x5c", ErrUnknownKey)
	}
	return trust.Keys.lookup(kid, now)
}

// chainKey verifies an x5c header (base64 DER certificates, leaf first)
// against the set's roots and returns the leaf's key.
func (s *KeySet) chainKey(raw any, now time.Time) (PublicKey, error) {
	if s.roots == nil {
		return PublicKey{}, fmt.Errorf("%w: x5c chain, but no root certificates are configured for this issuer", ErrUnknownKey)
	}
	list, ok := raw.([]any)
	if !ok || len(list) == 0 || len(list) > maxChain {
		return PublicKey{}, fmt.Errorf("%w: x5c must be a list of 1 to %d certificates", ErrTokenMalformed, maxChain)
	}
	var certs []*x509.Certificate
	for i, e := range list {
		s, _ := e.(string)
		der, err := base64.StdEncoding.DecodeString(s)
		if err != nil {
			return PublicKey{}, fmt.Errorf("%w: x5c[%d] is not base64", ErrTokenMalformed, i)
		}
		cert, err := x509.ParseCertificate(der)
		if err != nil {
			return PublicKey{}, fmt.Errorf("%w: x5c[%d]: %v", ErrTokenMalformed, i, err)
		}
		certs = append(certs, cert)
	}
	inter := x509.NewCertPool()
	for _, c := range certs[1:] {
		inter.AddCert(c)
	}
	if _, err := certs[0].Verify(x509.VerifyOptions{
		Roots: s.roots, Intermediates: inter, CurrentTime: now,
		KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny},
	}); err != nil {
		return PublicKey{}, fmt.Errorf("%w: x5c chain does not verify: %v", ErrUnknownKey, err)
	}
	return NewPublicKey(certs[0].PublicKey)
}

// classify maps the jwt library's errors onto this package's, keeping
// the message.
func classify(err error) error {
	for _, m := range []struct{ lib, ours error }{
		{ErrTokenMalformed, ErrTokenMalformed}, // ours, from x5c parsing
		{ErrUnknownIssuer, ErrUnknownIssuer},
		{ErrUnknownKey, ErrUnknownKey},
		{ErrWrongAlgorithm, ErrWrongAlgorithm},
		{jwt.ErrTokenMalformed, ErrTokenMalformed},
		{jwt.ErrTokenSignatureInvalid, ErrBadSignature},
		{jwt.ErrTokenUnverifiable, ErrWrongAlgorithm},
		{jwt.ErrTokenExpired, ErrTokenExpired},
		{jwt.ErrTokenRequiredClaimMissing, ErrTokenMalformed},
		{jwt.ErrTokenNotValidYet, ErrTokenNotYetValid},
		{jwt.ErrTokenUsedBeforeIssued, ErrTokenNotYetValid},
		{jwt.ErrTokenInvalidClaims, ErrTokenMalformed},
	} {
		if errors.Is(err, m.lib) {
			if m.lib == m.ours {
				return err
			}
			return fmt.Errorf("%w: %v", m.ours, err)
		}
	}
	return fmt.Errorf("%w: %v", ErrTokenMalformed, err)
}
