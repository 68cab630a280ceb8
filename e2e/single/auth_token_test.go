package single

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"maps"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/berth-registry/berth/e2e/harness"
)

// tokenTTL and leeway: the node signs tokens valid for tokenTTL, and
// accepts them for leeway more (clock skew, as Distribution's token spec).
const (
	tokenTTL = time.Second
	leeway   = 60 * time.Second
)

// TestAuthTokensRefused presents tokens that must not work: forged,
// tampered, expired and meant for another service. Each is refused with
// 401 invalid_token and says why; a real token works just before, so the
// refusals are the tokens' fault.
func TestAuthTokensRefused(t *testing.T) {
	data := t.TempDir()
	a := startAuthRegistry(t, data, "BERTH_AUTH_TOKENTTL="+tokenTTL.String())
	a.teams(t)
	ctx := authCtx(t)
	im := harness.NewImage("team-a/app", "1")
	if err := im.PushAs(ctx, a.addr, harness.Basic(alice, alicePassword)); err != nil {
		t.Fatal(err)
	}
	real, err := harness.Token(ctx, a.addr, alice, alicePassword, "repository:team-a/app:pull")
	issued := time.Now()
	if err != nil {
		t.Fatal(err)
	}
	if err := im.VerifyAs(ctx, a.addr, "Bearer "+real); err != nil {
		t.Fatalf("the real token: %v", err)
	}
	header, claims := decodeJWT(t, real)
	kid, _ := header["kid"].(string)
	if kid == "" || header["alg"] != "EdDSA" {
		t.Fatalf("token header %v: want alg EdDSA and a kid", header)
	}
	_, stranger, _ := ed25519.GenerateKey(rand.Reader)
	edited := maps.Clone(claims)
	edited["access"] = []any{map[string]any{"type": "repository", "name": "team-a/app", "actions": []string{"pull", "push"}}}
	parts := strings.Split(real, ".")

	manifest := "/v2/team-a/app/manifests/1"
	for _, tc := range []struct {
		name, token, method, path, reason string
	}{
		{"signed by an unknown key", sign(t, jwt.SigningMethodEdDSA, "e2e-unknown-key", claims, stranger), "GET", manifest, "token signed by an unknown key"},
		{"the cluster's kid, another key's signature", sign(t, jwt.SigningMethodEdDSA, kid, claims, stranger), "GET", manifest, "token signature invalid"},
		{"alg none", sign(t, jwt.SigningMethodNone, kid, claims, jwt.UnsafeAllowNoneSignatureType), "GET", manifest, "token algorithm not allowed"},
		{"alg HS256 keyed with the kid", sign(t, jwt.SigningMethodHS256, kid, claims, []byte(kid)), "GET", manifest, "token algorithm not allowed"},
		{"scope edited, signature kept", parts[0] + "." + encodeSegment(t, edited) + "." + parts[2], "POST", "/v2/team-a/app/blobs/uploads/", "token signature invalid"},
		{"signature cut off", parts[0] + "." + parts[1] + ".", "GET", manifest, "token"},
		{"another issuer", sign(t, jwt.SigningMethodEdDSA, kid, with(claims, "iss", "elsewhere"), stranger), "GET", manifest, "token from an unknown issuer"},
	} {
		t.Run(tc.name, func(t *testing.T) { expectInvalidToken(t, a.addr, tc.method, tc.path, tc.token, tc.reason) })
	}

	t.Run("expired", func(t *testing.T) {
		// The real token expires tokenTTL after it was issued, and is
		// accepted for the leeway after that.
		time.Sleep(time.Until(issued.Add(tokenTTL + leeway + 2*time.Second)))
		expectInvalidToken(t, a.addr, "GET", manifest, real, "token expired")
	})

	t.Run("for another service", func(t *testing.T) {
		ctx := authCtx(t)
		tok, err := harness.Token(ctx, a.addr, alice, alicePassword, "repository:team-a/app:pull")
		if err != nil {
			t.Fatal(err)
		}
		// The same cluster, key and issuer, now serving another name:
		// the token's audience no longer matches.
		a.p.Stop(t)
		b := startAuthRegistry(t, data, "BERTH_AUTH_SERVICE=elsewhere")
		expectInvalidToken(t, b.addr, "GET", manifest, tok, "token is for another service")
		fresh, err := harness.Token(ctx, b.addr, alice, alicePassword, "repository:team-a/app:pull")
		if err != nil {
			t.Fatal(err)
		}
		if err := im.VerifyAs(ctx, b.addr, "Bearer "+fresh); err != nil {
			t.Errorf("a token for the new service name: %v", err)
		}
	})
}

// expectInvalidToken checks that token is refused with 401, a Bearer
// challenge with error="invalid_token", and the OCI UNAUTHORIZED error
// whose message gives reason.
func expectInvalidToken(t *testing.T, addr, method, path, token, reason string) {
	t.Helper()
	code, hdr, body, err := harness.Request(authCtx(t), method, "http://"+addr+path, "Bearer "+token)
	if err != nil || code != http.StatusUnauthorized {
		t.Fatalf("%s %s: %d %v, want 401: %s", method, path, code, err, body)
	}
	ch, err := harness.ParseChallenge(hdr.Get("WWW-Authenticate"))
	if err != nil || ch.Scheme != "Bearer" || ch.Params["error"] != "invalid_token" || ch.Params["realm"] != "http://"+addr+"/token" {
		t.Errorf("WWW-Authenticate %q (%v), want a Bearer challenge with error=invalid_token", hdr.Get("WWW-Authenticate"), err)
	}
	e, err := harness.ParseOCIError(body)
	if err != nil || e.Code != "UNAUTHORIZED" || !strings.Contains(e.Message, reason) {
		t.Errorf("body %s (%v), want UNAUTHORIZED saying %q", body, err, reason)
	}
}

func decodeJWT(t *testing.T, tok string) (header, claims map[string]any) {
	t.Helper()
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		t.Fatalf("token %q is not a JWS", tok)
	}
	for i, into := range []*map[string]any{&header, &claims} {
		raw, err := base64.RawURLEncoding.DecodeString(parts[i])
		if err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(raw, into); err != nil {
			t.Fatal(err)
		}
	}
	return header, claims
}

func encodeSegment(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return base64.RawURLEncoding.EncodeToString(b)
}

// sign makes a token with the given claims, algorithm, kid and key.
func sign(t *testing.T, m jwt.SigningMethod, kid string, claims map[string]any, key any) string {
	t.Helper()
	tok := jwt.NewWithClaims(m, jwt.MapClaims(maps.Clone(claims)))
	tok.Header["kid"] = kid
	s, err := tok.SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func with(m map[string]any, k string, v any) map[string]any {
	out := maps.Clone(m)
	out[k] = v
	return out
}
