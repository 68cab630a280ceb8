package auth

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base32"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"
)

// Signature algorithms (JWS "alg"). Berth signs with EdDSA (Ed25519) by
// default or ES256 (P-256); RS256 is accepted from external issuers only,
// as most existing token servers sign with RSA.
const (
	AlgEdDSA = "EdDSA"
	AlgES256 = "ES256"
	AlgRS256 = "RS256"
)

// minRSABits refuses RSA keys too short to trust.
const minRSABits = 2048

// SigningKey is a private key that signs tokens, with its key ID (the
// JWS "kid") and algorithm.
type SigningKey struct {
	ID   string
	Alg  string
	priv crypto.Signer
}

// GenerateSigningKey makes a new Ed25519 (AlgEdDSA) or P-256 (AlgES256)
// key from rnd (crypto/rand.Reader outside tests).
func GenerateSigningKey(alg string, rnd io.Reader) (*SigningKey, error) {
	var priv crypto.Signer
	switch alg {
	case AlgEdDSA, "":
		_, k, err := ed25519.GenerateKey(rnd)
		if err != nil {
			return nil, fmt.Errorf("generate Ed25519 key: %w", err)
		}
		priv = k
	case AlgES256:
		k, err := ecdsa.GenerateKey(elliptic.P256(), rnd)
		if err != nil {
			return nil, fmt.Errorf("generate P-256 key: %w", err)
		}
		priv = k
	default:
		return nil, fmt.Errorf("signing algorithm %q: Berth signs with %s or %s", alg, AlgEdDSA, AlgES256)
	}
	return newSigningKey(priv)
}

// ParseSigningKey reads a PKCS #8 DER private key (what MarshalPKCS8
// writes, and what Seal protects) and infers its algorithm.
func ParseSigningKey(der []byte) (*SigningKey, error) {
	k, err := x509.ParsePKCS8PrivateKey(der)
	if err != nil {
		return nil, fmt.Errorf("parse signing key: %w", err)
	}
	s, ok := k.(crypto.Signer)
	if !ok {
		return nil, fmt.Errorf("parse signing key: %T cannot sign", k)
	}
	return newSigningKey(s)
}

func newSigningKey(priv crypto.Signer) (*SigningKey, error) {
	pub, err := NewPublicKey(priv.Public())
	if err != nil {
		return nil, err
	}
	if pub.Alg == AlgRS256 {
		return nil, errors.New("signing key: Berth signs with Ed25519 or P-256, not RSA")
	}
	return &SigningKey{ID: pub.ID, Alg: pub.Alg, priv: priv}, nil
}

// MarshalPKCS8 writes the private key as PKCS #8 DER. Seal it before it
// goes anywhere: it must never sit in the log or on disk in the clear.
func (k *SigningKey) MarshalPKCS8() ([]byte, error) {
	return x509.MarshalPKCS8PrivateKey(k.priv)
}

// PublicKey is the verifying half of the key.
func (k *SigningKey) PublicKey() PublicKey {
	return PublicKey{ID: k.ID, Alg: k.Alg, Key: k.priv.Public()}
}

// PublicKey verifies tokens signed with one algorithm. A key with a
// NotAfter stops verifying then: that is how a rotated-out key is retired
// once every token it signed has expired.
type PublicKey struct {
	ID       string
	Alg      string
	Key      crypto.PublicKey
	NotAfter time.Time // zero: no end
}

// NewPublicKey wraps an Ed25519, P-256 or RSA (at least 2048 bits)
// public key with its algorithm and a key ID derived from it.
func NewPublicKey(pub crypto.PublicKey) (PublicKey, error) {
	var alg string
	switch k := pub.(type) {
	case ed25519.PublicKey:
		alg = AlgEdDSA
	case *ecdsa.PublicKey:
		if k.Curve != elliptic.P256() {
			return PublicKey{}, fmt.Errorf("ECDSA key on %s: only P-256 (ES256) is supported", k.Curve.Params().Name)
		}
		alg = AlgES256
	case *rsa.PublicKey:
		if k.N.BitLen() < minRSABits {
			return PublicKey{}, fmt.Errorf("RSA key of %d bits: at least %d required", k.N.BitLen(), minRSABits)
		}
		alg = AlgRS256
	default:
		return PublicKey{}, fmt.Errorf("unsupported public key type %T: want Ed25519, P-256 or RSA", pub)
	}
	id, err := KeyID(pub)
	if err != nil {
		return PublicKey{}, err
	}
	return PublicKey{ID: id, Alg: alg, Key: pub}, nil
}

// KeyID derives a key ID as libtrust does, and so as CNCF Distribution
// expects in a token's kid when it trusts a certificate bundle: the
// SHA-256 of the PKIX public key, first 240 bits, base32, in groups of
// four separated by colons.
func KeyID(pub crypto.PublicKey) (string, error) {
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return "", fmt.Errorf("key ID: %w", err)
	}
	sum := sha256.Sum256(der)
	s := base32.StdEncoding.EncodeToString(sum[:30])
	groups := make([]string, 0, len(s)/4)
	for i := 0; i < len(s); i += 4 {
		groups = append(groups, s[i:i+4])
	}
	return strings.Join(groups, ":"), nil
}

// KeySet is the keys one issuer signs with, by key ID, and optionally the
// root certificates that vouch for keys sent in a token's x5c header. It
// is immutable: rotation builds a new set (current and previous keys) and
// swaps the Verifier, so a reader never sees a half-changed set.
type KeySet struct {
	keys  map[string]PublicKey
	roots *x509.CertPool
}

// NewKeySet builds a set; two keys with one ID are an error.
func NewKeySet(keys ...PublicKey) (*KeySet, error) {
	s := &KeySet{keys: make(map[string]PublicKey, len(keys))}
	for _, k := range keys {
		if k.ID == "" || k.Alg == "" || k.Key == nil {
			return nil, errors.New("key set: a key needs an ID, an algorithm and a public key")
		}
		if _, dup := s.keys[k.ID]; dup {
			return nil, fmt.Errorf("key set: key ID %q given twice", k.ID)
		}
		s.keys[k.ID] = k
	}
	return s, nil
}

// Len is the number of keys by ID (roots not counted).
func (s *KeySet) Len() int { return len(s.keys) }

// lookup returns the key for kid if it may still verify at now.
func (s *KeySet) lookup(kid string, now time.Time) (PublicKey, error) {
	k, ok := s.keys[kid]
	if !ok {
		return PublicKey{}, fmt.Errorf("%w: %q", ErrUnknownKey, kid)
	}
	if !k.NotAfter.IsZero() && now.After(k.NotAfter) {
		return PublicKey{}, fmt.Errorf("%w: %q was retired at %s", ErrUnknownKey, kid, k.NotAfter.UTC().Format(time.RFC3339))
	}
	return k, nil
}
