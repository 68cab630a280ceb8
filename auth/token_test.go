package auth

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

const service = "registry.example.com"

var t0 = time.Date(2026, 11, 30, 10, 0, 0, 0, time.UTC)

func clock(t time.Time) func() time.Time { return func() time.Time { return t } }

func newKey(t *testing.T, alg string) *SigningKey {
	t.Helper()
	k, err := GenerateSigningKey(alg, rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func keySet(t *testing.T, keys ...PublicKey) *KeySet {
	t.Helper()
	s, err := NewKeySet(keys...)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func issue(t *testing.T, k *SigningKey, at time.Time, access ...Access) string {
	t.Helper()
	i := &TokenIssuer{Issuer: "berth", Key: k, Now: clock(at)}
	tok, _, err := i.Issue("alice", service, access)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func verifier(at time.Time, trusts ...Trust) *Verifier {
	return &Verifier{Service: service, Trusts: trusts, Now: clock(at)}
}

var pullA = Access{Type: "repository", Name: "team-a/app", Actions: []string{"pull"}}

func TestIssueAndVerify(t *testing.T) {
	for _, alg := range []string{AlgEdDSA, AlgES256} {
		t.Run(alg, func(t *testing.T) {
			k := newKey(t, alg)
			i := &TokenIssuer{Issuer: "berth", Key: k, Now: clock(t0.Add(300 * time.Millisecond))}
			tok, issued, err := i.Issue("alice", service, []Access{pullA})
			if err != nil {
				t.Fatal(err)
			}
			if issued.ExpiresAt.Sub(issued.IssuedAt) != DefaultTokenTTL || !issued.IssuedAt.Equal(t0) {
				t.Errorf("issued at %s, expires %s: want %s and 5 minutes later", issued.IssuedAt, issued.ExpiresAt, t0)
			}
			// The header names the algorithm and the key.
			var hdr map[string]any
			raw, _ := base64.RawURLEncoding.DecodeString(strings.Split(tok, ".")[0])
			if err := json.Unmarshal(raw, &hdr); err != nil {
				t.Fatal(err)
			}
			if hdr["alg"] != alg || hdr["kid"] != k.ID {
				t.Errorf("header %v, want alg %s and kid %s", hdr, alg, k.ID)
			}
			// The claims are Distribution's.
			var body map[string]any
			raw, _ = base64.RawURLEncoding.DecodeString(strings.Split(tok, ".")[1])
			if err := json.Unmarshal(raw, &body); err != nil {
				t.Fatal(err)
			}
			for _, c := range []string{"iss", "sub", "aud", "exp", "nbf", "iat", "jti", "access"} {
				if _, ok := body[c]; !ok {
					t.Errorf("claim %s missing from %v", c, body)
				}
			}
			if body["aud"] != service {
				t.Errorf("aud = %v, want the string %q", body["aud"], service)
			}

			got, err := verifier(t0.Add(time.Minute), Trust{Issuer: "berth", Keys: keySet(t, k.PublicKey())}).Verify(tok)
			if err != nil {
				t.Fatal(err)
			}
			if got.Subject != "alice" || got.ID != issued.ID || got.KeyID != k.ID || !reflect.DeepEqual(got.Access, []Access{pullA}) {
				t.Errorf("verified claims %+v, issued %+v", got, issued)
			}
			if !got.Allows("repository", "team-a/app", "pull") || got.Allows("repository", "team-a/app", "push") || got.Allows("repository", "team-b/app", "pull") {
				t.Error("Allows does not follow the access claim")
			}
		})
	}
}

func TestTokenIDsDiffer(t *testing.T) {
	k := newKey(t, AlgEdDSA)
	i := &TokenIssuer{Issuer: "berth", Key: k, Now: clock(t0)}
	_, a, _ := i.Issue("alice", service, nil)
	_, b, _ := i.Issue("alice", service, nil)
	if a.ID == b.ID || len(a.ID) < 20 {
		t.Errorf("token IDs %q and %q", a.ID, b.ID)
	}
}

func TestIssueRefuses(t *testing.T) {
	k := newKey(t, AlgEdDSA)
	for name, i := range map[string]*TokenIssuer{
		"no key":       {Issuer: "berth"},
		"no issuer":    {Key: k},
		"too long TTL": {Issuer: "berth", Key: k, TTL: 2 * time.Hour},
	} {
		if _, _, err := i.Issue("a", service, nil); err == nil {
			t.Errorf("%s: issued", name)
		}
	}
	huge := make([]Access, 200)
	for j := range huge {
		huge[j] = Access{Type: "repository", Name: strings.Repeat("a", 60), Actions: []string{"pull"}}
	}
	if _, _, err := (&TokenIssuer{Issuer: "berth", Key: k}).Issue("a", service, huge); err == nil || !strings.Contains(err.Error(), "fewer scopes") {
		t.Errorf("a token over MaxTokenSize: %v", err)
	}
}

// forge signs claims with any method and key, to build the tokens an
// attacker would send.
func forge(t *testing.T, m jwt.SigningMethod, key any, header map[string]any, claims jwt.MapClaims) string {
	t.Helper()
	tok := jwt.NewWithClaims(m, claims)
	for k, v := range header {
		tok.Header[k] = v
	}
	s, err := tok.SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func goodClaims() jwt.MapClaims {
	return jwt.MapClaims{"iss": "berth", "sub": "alice", "aud": service, "exp": t0.Add(5 * time.Minute).Unix(),
		"nbf": t0.Unix(), "iat": t0.Unix(), "jti": "x", "access": []Access{pullA}}
}

func TestVerifyRefuses(t *testing.T) {
	k := newKey(t, AlgEdDSA)
	ec := newKey(t, AlgES256)
	other := newKey(t, AlgEdDSA)
	trust := Trust{Issuer: "berth", Keys: keySet(t, k.PublicKey(), ec.PublicKey())}
	good := issue(t, k, t0, pullA)

	edited := func() string {
		parts := strings.Split(good, ".")
		body, _ := base64.RawURLEncoding.DecodeString(parts[1])
		body = []byte(strings.Replace(string(body), `"pull"`, `"push"`, 1))
		parts[1] = base64.RawURLEncoding.EncodeToString(body)
		return strings.Join(parts, ".")
	}()
	with := func(key string, v any) jwt.MapClaims {
		c := goodClaims()
		if v == nil {
			delete(c, key)
		} else {
			c[key] = v
		}
		return c
	}
	edPriv := func(s *SigningKey) ed25519.PrivateKey { return s.priv.(ed25519.PrivateKey) }
	pubDER := []byte(k.PublicKey().Key.(ed25519.PublicKey))

	tests := []struct {
		name  string
		token string
		at    time.Time
		want  error
	}{
		{"expired past the leeway", good, t0.Add(5*time.Minute + Leeway + time.Second), ErrTokenExpired},
		{"not yet valid beyond the leeway", good, t0.Add(-Leeway - time.Second), ErrTokenNotYetValid},
		{"signed by an unknown key", issue(t, other, t0, pullA), t0, ErrUnknownKey},
		{"unknown kid on a good signature", forge(t, jwt.SigningMethodEdDSA, edPriv(k), map[string]any{"kid": "NOPE"}, goodClaims()), t0, ErrUnknownKey},
		{"no kid", forge(t, jwt.SigningMethodEdDSA, edPriv(k), nil, goodClaims()), t0, ErrUnknownKey},
		{"alg none", forge(t, jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, map[string]any{"kid": k.ID}, goodClaims()), t0, ErrWrongAlgorithm},
		{"HS256 keyed with the public key", forge(t, jwt.SigningMethodHS256, pubDER, map[string]any{"kid": k.ID}, goodClaims()), t0, ErrWrongAlgorithm},
		{"ES256 header on an Ed25519 kid", forge(t, jwt.SigningMethodES256, ec.priv, map[string]any{"kid": k.ID}, goodClaims()), t0, ErrWrongAlgorithm},
		{"for another service", forge(t, jwt.SigningMethodEdDSA, edPriv(k), map[string]any{"kid": k.ID}, with("aud", "other.example.com")), t0, ErrWrongAudience},
		{"no audience", forge(t, jwt.SigningMethodEdDSA, edPriv(k), map[string]any{"kid": k.ID}, with("aud", nil)), t0, ErrWrongAudience},
		{"from another issuer", forge(t, jwt.SigningMethodEdDSA, edPriv(k), map[string]any{"kid": k.ID}, with("iss", "evil")), t0, ErrUnknownIssuer},
		{"without exp", forge(t, jwt.SigningMethodEdDSA, edPriv(k), map[string]any{"kid": k.ID}, with("exp", nil)), t0, ErrTokenMalformed},
		{"issued in the future", forge(t, jwt.SigningMethodEdDSA, edPriv(k), map[string]any{"kid": k.ID}, with("iat", t0.Add(time.Hour).Unix())), t0, ErrTokenNotYetValid},
		{"edited scope", edited, t0, ErrBadSignature},
		{"signature of another token", strings.Join(strings.Split(good, ".")[:2], ".") + "." + strings.Split(issue(t, k, t0), ".")[2], t0, ErrBadSignature},
		{"too large", good + strings.Repeat("A", MaxTokenSize), t0, ErrTokenTooLarge},
		{"not a JWT", "hello", t0, ErrTokenMalformed},
		{"empty", "", t0, ErrTokenMalformed},
		{"garbage segments", "a.b.c", t0, ErrTokenMalformed},
		{"x5c without roots", forge(t, jwt.SigningMethodEdDSA, edPriv(k), map[string]any{"x5c": []string{"AAAA"}}, goodClaims()), t0, ErrUnknownKey},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := verifier(tt.at, trust).Verify(tt.token)
			if !errors.Is(err, tt.want) {
				t.Errorf("Verify = %v, want %v", err, tt.want)
			}
		})
	}
}

func TestVerifyLeeway(t *testing.T) {
	k := newKey(t, AlgEdDSA)
	trust := Trust{Issuer: "berth", Keys: keySet(t, k.PublicKey())}
	tok := issue(t, k, t0, pullA)
	for _, at := range []time.Time{t0.Add(-Leeway + time.Second), t0.Add(5*time.Minute + Leeway - time.Second)} {
		if _, err := verifier(at, trust).Verify(tok); err != nil {
			t.Errorf("at %s (within the 60 s leeway): %v", at, err)
		}
	}
}

// A key rotation: tokens of the old key verify until it is retired, and
// the new key's tokens verify from the start.
func TestKeyRotation(t *testing.T) {
	old, cur := newKey(t, AlgEdDSA), newKey(t, AlgEdDSA)
	oldTok := issue(t, old, t0, pullA)
	newTok := issue(t, cur, t0, pullA)
	retiring := old.PublicKey()
	retiring.NotAfter = t0.Add(2 * time.Minute)
	trust := Trust{Issuer: "berth", Keys: keySet(t, cur.PublicKey(), retiring)}
	if _, err := verifier(t0.Add(time.Minute), trust).Verify(oldTok); err != nil {
		t.Errorf("old key before retirement: %v", err)
	}
	if _, err := verifier(t0.Add(3*time.Minute), trust).Verify(oldTok); !errors.Is(err, ErrUnknownKey) || !strings.Contains(err.Error(), "retired") {
		t.Errorf("old key after retirement: %v", err)
	}
	if _, err := verifier(t0.Add(3*time.Minute), trust).Verify(newTok); err != nil {
		t.Errorf("new key: %v", err)
	}
	if _, err := NewKeySet(cur.PublicKey(), cur.PublicKey()); err == nil {
		t.Error("a key set with one kid twice")
	}
}

func TestSigningKeyRoundTrip(t *testing.T) {
	for _, alg := range []string{AlgEdDSA, AlgES256} {
		k := newKey(t, alg)
		der, err := k.MarshalPKCS8()
		if err != nil {
			t.Fatal(err)
		}
		back, err := ParseSigningKey(der)
		if err != nil {
			t.Fatal(err)
		}
		if back.ID != k.ID || back.Alg != alg {
			t.Errorf("%s: parsed key %s/%s, want %s/%s", alg, back.ID, back.Alg, k.ID, alg)
		}
		// A token of the parsed key verifies with the original's public key.
		if _, err := verifier(t0, Trust{Issuer: "berth", Keys: keySet(t, k.PublicKey())}).Verify(issue(t, back, t0)); err != nil {
			t.Errorf("%s: %v", alg, err)
		}
	}
	if _, err := GenerateSigningKey("HS256", rand.Reader); err == nil {
		t.Error("HS256 signing key generated")
	}
	if _, err := ParseSigningKey([]byte("not a key")); err == nil {
		t.Error("garbage parsed as a key")
	}
	// libtrust form: 12 groups of 4 base32 characters.
	if id := newKey(t, AlgEdDSA).ID; len(strings.Split(id, ":")) != 12 || len(id) != 59 {
		t.Errorf("key ID %q is not in libtrust form", id)
	}
}
