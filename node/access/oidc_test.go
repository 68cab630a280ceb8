package access

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"golang.org/x/crypto/bcrypt"

	"github.com/berth-registry/berth/auth"
)

// idp is a stand-in OIDC provider: a key, its JWKS and ID tokens.
type idp struct {
	priv ed25519.PrivateKey
	v    *auth.Verifier
}

func newIDP(t *testing.T) *idp {
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	set, err := auth.ParseJWKS([]byte(`{"keys":[{"kty":"OKP","crv":"Ed25519","kid":"idp-1","x":"` + base64.RawURLEncoding.EncodeToString(pub) + `"}]}`))
	if err != nil {
		t.Fatal(err)
	}
	return &idp{priv: priv, v: &auth.Verifier{Service: "berth-client", Trusts: []auth.Trust{{Issuer: "https://idp.example.com", Keys: set}}, UsernameClaim: "preferred_username"}}
}

func (p *idp) idToken(t *testing.T, aud, name string) string {
	now := time.Now()
	tok := jwt.NewWithClaims(jwt.SigningMethodEdDSA, jwt.MapClaims{
		"iss": "https://idp.example.com", "sub": "f81d4fae-7dec", "aud": aud, "preferred_username": name,
		"iat": now.Unix(), "exp": now.Add(time.Hour).Unix(),
	})
	tok.Header["kid"] = "idp-1"
	s, err := tok.SignedString(p.priv)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestOIDCSignIn(t *testing.T) {
	s := newState(t)
	p := newIDP(t)
	srv := New(Config{Service: "berth", Issuer: "berth", SealSecret: secret, OIDC: func() *auth.Verifier { return p.v }}, s)
	gate := srv.Gate(echo)
	good := p.idToken(t, "berth-client", "alice")
	// alice is a developer of team-a by name, whoever vouches for her.
	tok := token(t, srv, basic("alice", good), "repository:team-a/app:pull,push")
	if w := do(gate, "PUT", "/v2/team-a/app/manifests/v1", "Bearer "+tok); w.Code != 200 || w.Body.String() != "oidc:alice" {
		t.Fatalf("OIDC user's token: %d %s", w.Code, w.Body)
	}
	if w := do(gate, "GET", "/v2/team-a/app/tags/list", basic("whatever", good)); w.Code != 200 {
		t.Errorf("ID token as Basic password: %d %s", w.Code, w.Body)
	}
	for name, bad := range map[string]string{
		"another client": p.idToken(t, "other-client", "alice"),
		"unknown key":    newIDP(t).idToken(t, "berth-client", "alice"),
		"no username":    p.idToken(t, "berth-client", ""),
	} {
		if w := do(srv.TokenHandler(), "GET", "/token?service=berth", basic("alice", bad)); w.Code != 401 {
			t.Errorf("%s: %d %s", name, w.Code, w.Body)
		}
	}
	// A disabled User of the same name stops the federated user too, at
	// once, token or not.
	hash, err := bcrypt.GenerateFromPassword([]byte("unused-password"), 10)
	if err != nil {
		t.Fatal(err)
	}
	s.applyYAML("apiVersion: berth.dev/v1\nkind: User\nmetadata: {name: alice}\nspec: {disabled: true, passwordHash: '" + string(hash) + "'}\n")
	if w := do(gate, "GET", "/v2/team-a/app/tags/list", "Bearer "+tok); w.Code != 401 {
		t.Errorf("disabled federated user: %d %s", w.Code, w.Body)
	}
}
