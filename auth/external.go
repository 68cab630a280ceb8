package auth

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"strings"
)

// Bounds on an external issuer's key material.
const (
	MaxJWKSSize   = 64 << 10
	maxJWKSKeys   = 32
	maxBundleSize = 1 << 20
	maxBundleCert = 64
)

// ParseCertBundle reads a PEM bundle of certificates, as Distribution's
// auth.token.rootcertbundle: the certificates become the roots that x5c
// chains in tokens must verify to, and each certificate's key is also
// trusted directly by its libtrust key ID, for token servers that send a
// kid instead of a chain. Anything but certificates is refused, so a
// private key pasted by mistake is noticed.
func ParseCertBundle(bundle []byte) (*KeySet, error) {
	if len(bundle) > maxBundleSize {
		return nil, fmt.Errorf("certificate bundle: %d bytes, at most %d", len(bundle), maxBundleSize)
	}
	var keys []PublicKey
	roots := x509.NewCertPool()
	seen := map[string]bool{}
	rest := bundle
	for n := 1; ; n++ {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			break
		}
		if n > maxBundleCert {
			return nil, fmt.Errorf("certificate bundle: more than %d certificates", maxBundleCert)
		}
		if block.Type != "CERTIFICATE" {
			return nil, fmt.Errorf("certificate bundle: PEM block %d is a %q, want CERTIFICATE", n, block.Type)
		}
		cert, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("certificate bundle: certificate %d: %w", n, err)
		}
		roots.AddCert(cert)
		k, err := NewPublicKey(cert.PublicKey)
		if err != nil {
			return nil, fmt.Errorf("certificate bundle: certificate %d (%s): %w", n, cert.Subject, err)
		}
		if !seen[k.ID] {
			seen[k.ID] = true
			keys = append(keys, k)
		}
	}
	if len(keys) == 0 {
		return nil, errors.New("certificate bundle: no PEM certificate found (-----BEGIN CERTIFICATE-----)")
	}
	if strings.TrimSpace(string(rest)) != "" {
		return nil, errors.New("certificate bundle: text after the last certificate")
	}
	s, err := NewKeySet(keys...)
	if err != nil {
		return nil, err
	}
	s.roots = roots
	return s, nil
}

// jwk is one key of a JWKS document (RFC 7517/7518/8037): the fields of
// the key types Berth verifies with.
type jwk struct {
	Kty string `json:"kty"`
	Kid string `json:"kid"`
	Alg string `json:"alg"`
	Use string `json:"use"`
	Crv string `json:"crv"`
	X   string `json:"x"`
	Y   string `json:"y"`
	N   string `json:"n"`
	E   string `json:"e"`
	D   string `json:"d"`
}

// ParseJWKS reads a JWKS document ({"keys": [...]}) of Ed25519 (OKP),
// P-256 (EC) and RSA keys. Keys meant for encryption ("use": "enc") are
// skipped; a key with private parts, an unsupported type or an "alg"
// that does not match its type is an error, as is a document without a
// usable key. A key without a kid gets its libtrust key ID.
func ParseJWKS(doc []byte) (*KeySet, error) {
	if len(doc) > MaxJWKSSize {
		return nil, fmt.Errorf("JWKS: %d bytes, at most %d", len(doc), MaxJWKSSize)
	}
	var set struct {
		Keys []jwk `json:"keys"`
	}
	if err := json.Unmarshal(doc, &set); err != nil {
		return nil, fmt.Errorf("JWKS: %w", err)
	}
	if len(set.Keys) > maxJWKSKeys {
		return nil, fmt.Errorf("JWKS: %d keys, at most %d", len(set.Keys), maxJWKSKeys)
	}
	var keys []PublicKey
	for i, j := range set.Keys {
		if j.Use == "enc" {
			continue
		}
		k, err := j.publicKey()
		if err != nil {
			return nil, fmt.Errorf("JWKS: key %d (kid %q): %w", i, j.Kid, err)
		}
		keys = append(keys, k)
	}
	if len(keys) == 0 {
		return nil, errors.New("JWKS: no signing key")
	}
	return NewKeySet(keys...)
}

func (j jwk) publicKey() (PublicKey, error) {
	if j.D != "" {
		return PublicKey{}, errors.New("has a private part (d); publish only public keys")
	}
	if j.Use != "" && j.Use != "sig" {
		return PublicKey{}, fmt.Errorf("use %q, want sig", j.Use)
	}
	var pub any
	switch j.Kty {
	case "OKP":
		if j.Crv != "Ed25519" {
			return PublicKey{}, fmt.Errorf("OKP curve %q, only Ed25519 is supported", j.Crv)
		}
		x, err := b64(j.X, "x")
		if err != nil {
			return PublicKey{}, err
		}
		if len(x) != ed25519.PublicKeySize {
			return PublicKey{}, fmt.Errorf("x is %d bytes, an Ed25519 key is %d", len(x), ed25519.PublicKeySize)
		}
		pub = ed25519.PublicKey(x)
	case "EC":
		if j.Crv != "P-256" {
			return PublicKey{}, fmt.Errorf("EC curve %q, only P-256 is supported", j.Crv)
		}
		x, err := b64(j.X, "x")
		if err != nil {
			return PublicKey{}, err
		}
		y, err := b64(j.Y, "y")
		if err != nil {
			return PublicKey{}, err
		}
		if len(x) != 32 || len(y) != 32 {
			return PublicKey{}, errors.New("x and y of a P-256 key are 32 bytes each")
		}
		// The parser checks that the point is on the curve.
		k, err := ecdsa.ParseUncompressedPublicKey(elliptic.P256(), append(append([]byte{4}, x...), y...))
		if err != nil {
			return PublicKey{}, fmt.Errorf("the EC point is not on P-256: %w", err)
		}
		pub = k
	case "RSA":
		n, err := b64(j.N, "n")
		if err != nil {
			return PublicKey{}, err
		}
		e, err := b64(j.E, "e")
		if err != nil {
			return PublicKey{}, err
		}
		if len(e) == 0 || len(e) > 4 {
			return PublicKey{}, errors.New("e must be 1 to 4 bytes")
		}
		exp := int(new(big.Int).SetBytes(e).Int64())
		if exp < 3 || exp%2 == 0 {
			return PublicKey{}, fmt.Errorf("RSA exponent %d is not an odd number of at least 3", exp)
		}
		pub = &rsa.PublicKey{N: new(big.Int).SetBytes(n), E: exp}
	default:
		return PublicKey{}, fmt.Errorf("key type %q: want OKP (Ed25519), EC (P-256) or RSA", j.Kty)
	}
	k, err := NewPublicKey(pub)
	if err != nil {
		return PublicKey{}, err
	}
	if j.Alg != "" && j.Alg != k.Alg {
		return PublicKey{}, fmt.Errorf("alg %q does not match the key, which is %s", j.Alg, k.Alg)
	}
	if j.Kid != "" {
		k.ID = j.Kid
	}
	return k, nil
}

func b64(s, field string) ([]byte, error) {
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil || len(b) == 0 {
		return nil, fmt.Errorf("%s is not base64url without padding", field)
	}
	return b, nil
}
