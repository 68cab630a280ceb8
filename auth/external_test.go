package auth

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"math/big"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// cert makes a certificate for pub signed by parent (self-signed when
// parent is nil), valid around t0.
func cert(t *testing.T, cn string, pub crypto.PublicKey, parent *x509.Certificate, parentKey crypto.Signer, isCA bool) *x509.Certificate {
	t.Helper()
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: cn},
		NotBefore: t0.Add(-time.Hour), NotAfter: t0.Add(24 * time.Hour),
		IsCA: isCA, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
	}
	if parent == nil {
		parent = tmpl
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, pub, parentKey)
	if err != nil {
		t.Fatal(err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func pemOf(certs ...*x509.Certificate) []byte {
	var b []byte
	for _, c := range certs {
		b = append(b, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})...)
	}
	return b
}

// An external token server whose signing certificate is in the bundle
// (Distribution's rootcertbundle): its tokens name the key by kid.
func TestCertBundleKid(t *testing.T) {
	_, priv, _ := ed25519.GenerateKey(rand.Reader)
	c := cert(t, "token-server", priv.Public(), nil, priv, false)
	set, err := ParseCertBundle(pemOf(c))
	if err != nil {
		t.Fatal(err)
	}
	kid, _ := KeyID(priv.Public())
	v := verifier(t0, Trust{Issuer: "auth.example.com", Keys: set})
	claims := goodClaims()
	claims["iss"] = "auth.example.com"
	if got, err := v.Verify(forge(t, jwt.SigningMethodEdDSA, priv, map[string]any{"kid": kid}, claims)); err != nil || got.Subject != "alice" {
		t.Errorf("token of the bundle's key: %+v, %v", got, err)
	}
	_, stranger, _ := ed25519.GenerateKey(rand.Reader)
	skid, _ := KeyID(stranger.Public())
	if _, err := v.Verify(forge(t, jwt.SigningMethodEdDSA, stranger, map[string]any{"kid": skid}, claims)); !errors.Is(err, ErrUnknownKey) {
		t.Errorf("token of a key outside the bundle: %v", err)
	}
}

// Tokens carrying their certificate chain in x5c verify when the chain
// leads to a root of the bundle.
func TestCertBundleX5C(t *testing.T) {
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	ca := cert(t, "root", caKey.Public(), nil, caKey, true)
	interKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	inter := cert(t, "intermediate", interKey.Public(), ca, caKey, true)
	leafKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	leaf := cert(t, "signer", leafKey.Public(), inter, interKey, false)

	set, err := ParseCertBundle(pemOf(ca))
	if err != nil {
		t.Fatal(err)
	}
	claims := goodClaims()
	claims["iss"] = "auth.example.com"
	x5c := func(cs ...*x509.Certificate) []string {
		var out []string
		for _, c := range cs {
			out = append(out, base64.StdEncoding.EncodeToString(c.Raw))
		}
		return out
	}
	v := verifier(t0, Trust{Issuer: "auth.example.com", Keys: set})
	if _, err := v.Verify(forge(t, jwt.SigningMethodES256, leafKey, map[string]any{"x5c": x5c(leaf, inter)}, claims)); err != nil {
		t.Errorf("chain to the root: %v", err)
	}
	if _, err := v.Verify(forge(t, jwt.SigningMethodES256, leafKey, map[string]any{"x5c": x5c(leaf)}, claims)); !errors.Is(err, ErrUnknownKey) {
		t.Errorf("chain missing its intermediate: %v", err)
	}
	otherKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	selfSigned := cert(t, "signer", otherKey.Public(), nil, otherKey, false)
	if _, err := v.Verify(forge(t, jwt.SigningMethodES256, otherKey, map[string]any{"x5c": x5c(selfSigned)}, claims)); !errors.Is(err, ErrUnknownKey) {
		t.Errorf("self-signed chain: %v", err)
	}
	// The chain is right but the token is signed by another key.
	if _, err := v.Verify(forge(t, jwt.SigningMethodES256, otherKey, map[string]any{"x5c": x5c(leaf, inter)}, claims)); !errors.Is(err, ErrBadSignature) {
		t.Errorf("chain of another key: %v", err)
	}
	if _, err := verifier(t0.Add(48*time.Hour), Trust{Issuer: "auth.example.com", Keys: set}).Verify(forge(t, jwt.SigningMethodES256, leafKey, map[string]any{"x5c": x5c(leaf, inter)}, claims)); !errors.Is(err, ErrUnknownKey) && !errors.Is(err, ErrTokenExpired) {
		t.Errorf("chain after the certificates expired: %v", err)
	}
	if _, err := v.Verify(forge(t, jwt.SigningMethodES256, leafKey, map[string]any{"x5c": []string{"!!"}}, claims)); !errors.Is(err, ErrTokenMalformed) {
		t.Errorf("x5c not base64: %v", err)
	}
	if _, err := v.Verify(forge(t, jwt.SigningMethodES256, leafKey, map[string]any{"x5c": x5c(leaf, inter, inter, inter, inter)}, claims)); !errors.Is(err, ErrTokenMalformed) {
		t.Errorf("x5c of 5 certificates: %v", err)
	}
}

func TestParseCertBundleErrors(t *testing.T) {
	k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	c := cert(t, "a", k.Public(), nil, k, true)
	der, _ := x509.MarshalPKCS8PrivateKey(k)
	keyPEM := pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})
	for name, tt := range map[string]struct {
		in   []byte
		want string
	}{
		"empty":          {nil, "no PEM certificate"},
		"private key":    {append(pemOf(c), keyPEM...), `is a "PRIVATE KEY", want CERTIFICATE`},
		"trailing text":  {append(pemOf(c), "junk"...), "text after the last certificate"},
		"bad DER":        {pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: []byte{1, 2}}), "certificate 1"},
		"too many certs": {[]byte(strings.Repeat(string(pemOf(c)), maxBundleCert+1)), "more than 64"},
	} {
		if _, err := ParseCertBundle(tt.in); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: %v, want %q", name, err, tt.want)
		}
	}
}

func b64u(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

func TestJWKS(t *testing.T) {
	edPub, edPriv, _ := ed25519.GenerateKey(rand.Reader)
	ecKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	ecPub, _ := ecKey.PublicKey.ECDH()
	pt := ecPub.Bytes()
	doc, _ := json.Marshal(map[string]any{"keys": []map[string]string{
		{"kty": "OKP", "crv": "Ed25519", "kid": "ed", "x": b64u(edPub), "use": "sig"},
		{"kty": "EC", "crv": "P-256", "kid": "ec", "alg": "ES256", "x": b64u(pt[1:33]), "y": b64u(pt[33:])},
		{"kty": "RSA", "kid": "rsa", "alg": "RS256", "n": b64u(rsaKey.N.Bytes()), "e": "AQAB"},
		{"kty": "RSA", "kid": "enc", "use": "enc", "n": "xx", "e": "AQAB"},
	}})
	set, err := ParseJWKS(doc)
	if err != nil {
		t.Fatal(err)
	}
	if set.Len() != 3 {
		t.Errorf("%d keys, want 3 (the enc key skipped)", set.Len())
	}
	claims := goodClaims()
	claims["iss"] = "https://idp.example.com"
	claims["aud"] = []string{"other", service}
	v := verifier(t0, Trust{Issuer: "https://idp.example.com", Keys: set})
	for name, tok := range map[string]string{
		"Ed25519": forge(t, jwt.SigningMethodEdDSA, edPriv, map[string]any{"kid": "ed"}, claims),
		"P-256":   forge(t, jwt.SigningMethodES256, ecKey, map[string]any{"kid": "ec"}, claims),
		"RSA":     forge(t, jwt.SigningMethodRS256, rsaKey, map[string]any{"kid": "rsa"}, claims),
	} {
		if _, err := v.Verify(tok); err != nil {
			t.Errorf("%s token: %v", name, err)
		}
	}
	// RS256 key, token claims PS256 / HS256 with the modulus as secret.
	if _, err := v.Verify(forge(t, jwt.SigningMethodPS256, rsaKey, map[string]any{"kid": "rsa"}, claims)); !errors.Is(err, ErrWrongAlgorithm) {
		t.Errorf("PS256 on an RS256 key: %v", err)
	}
	if _, err := v.Verify(forge(t, jwt.SigningMethodHS256, rsaKey.N.Bytes(), map[string]any{"kid": "rsa"}, claims)); !errors.Is(err, ErrWrongAlgorithm) {
		t.Errorf("HS256 on an RS256 key: %v", err)
	}
}

func TestJWKSErrors(t *testing.T) {
	small, _ := rsa.GenerateKey(rand.Reader, 1024)
	edPub, _, _ := ed25519.GenerateKey(rand.Reader)
	for name, tt := range map[string]struct{ doc, want string }{
		"not JSON":      {"{", "JWKS"},
		"no keys":       {`{"keys":[]}`, "no signing key"},
		"private key":   {`{"keys":[{"kty":"OKP","crv":"Ed25519","x":"` + b64u(edPub) + `","d":"AAAA"}]}`, "private part"},
		"HMAC key":      {`{"keys":[{"kty":"oct","k":"c2VjcmV0"}]}`, `key type "oct"`},
		"P-384":         {`{"keys":[{"kty":"EC","crv":"P-384","x":"AA","y":"AA"}]}`, "only P-256"},
		"point off":     {`{"keys":[{"kty":"EC","crv":"P-256","x":"` + b64u(make([]byte, 32)) + `","y":"` + b64u(append(make([]byte, 31), 1)) + `"}]}`, "not on P-256"},
		"short x":       {`{"keys":[{"kty":"OKP","crv":"Ed25519","x":"AAAA"}]}`, "x is 3 bytes"},
		"alg mismatch":  {`{"keys":[{"kty":"OKP","crv":"Ed25519","alg":"ES256","x":"` + b64u(edPub) + `"}]}`, `alg "ES256" does not match`},
		"short RSA":     {`{"keys":[{"kty":"RSA","n":"` + b64u(small.N.Bytes()) + `","e":"AQAB"}]}`, "at least 2048"},
		"even exponent": {`{"keys":[{"kty":"RSA","n":"` + b64u(small.N.Bytes()) + `","e":"Ag"}]}`, "not an odd number"},
		"padded base64": {`{"keys":[{"kty":"OKP","crv":"Ed25519","x":"` + base64.URLEncoding.EncodeToString(edPub) + `"}]}`, "base64url"},
		"duplicate kid": {`{"keys":[{"kty":"OKP","crv":"Ed25519","kid":"a","x":"` + b64u(edPub) + `"},{"kty":"OKP","crv":"Ed25519","kid":"a","x":"` + b64u(edPub) + `"}]}`, "given twice"},
		"too large":     {`{"keys":[],"pad":"` + strings.Repeat("a", MaxJWKSSize) + `"}`, "at most"},
	} {
		if _, err := ParseJWKS([]byte(tt.doc)); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: %v, want %q", name, err, tt.want)
		}
	}
}
