package access

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/raft"
	"golang.org/x/crypto/bcrypt"

	"github.com/berth-registry/berth/auth"
	"github.com/berth-registry/berth/events"
	"github.com/berth-registry/berth/fsm"
	"github.com/berth-registry/berth/fsm/resource"
)

var (
	t0     = time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)
	secret = []byte("cluster-secret-for-tests-0123456789")
)

const adminToken = "admin-token-0123456789"

// state is an FSM fed events as Raft would, read through Views.
type state struct {
	t   testing.TB
	f   *fsm.FSM
	idx uint64
}

func (s *state) ReadView(context.Context) (*fsm.View, error) { return s.f.View(), nil }

func (s *state) apply(p events.Payload) {
	s.t.Helper()
	b, err := events.Encode(events.Event{Time: t0, Payload: p})
	if err != nil {
		s.t.Fatal(err)
	}
	s.idx++
	if res := s.f.Apply(&raft.Log{Index: s.idx, Type: raft.LogCommand, Data: b}); res != nil {
		s.t.Fatalf("apply %T: %v", p, res)
	}
}

// applyYAML commits resources as the admin API does: validated and
// normalized.
func (s *state) applyYAML(doc string) {
	s.t.Helper()
	docs, err := resource.ParseYAML(strings.NewReader(doc))
	if err != nil {
		s.t.Fatal(err)
	}
	for _, d := range docs {
		norm, err := resource.Normalize(d)
		if err != nil {
			s.t.Fatal(err)
		}
		s.apply(events.ResourceApplied{Kind: d.Kind, Name: d.Metadata.Name, Document: norm})
	}
}

func (s *state) addKey(created time.Time) events.SigningKeyAdded {
	s.t.Helper()
	ev, err := NewKey(auth.AlgEdDSA, secret, created)
	if err != nil {
		s.t.Fatal(err)
	}
	s.apply(ev)
	return ev
}

var robotSecret string

func newState(t testing.TB) *state {
	t.Helper()
	s := &state{t: t, f: fsm.New(slog.New(slog.DiscardHandler))}
	hash, err := bcrypt.GenerateFromPassword([]byte("alice-password"), 10)
	if err != nil {
		t.Fatal(err)
	}
	sec, secHash, err := auth.NewRobotSecret(nil)
	if err != nil {
		t.Fatal(err)
	}
	robotSecret = sec
	s.applyYAML(`apiVersion: berth.dev/v1
kind: User
metadata: {name: alice}
spec: {passwordHash: '` + string(hash) + `'}
---
apiVersion: berth.dev/v1
kind: Robot
metadata: {name: ci}
spec: {namespace: team-a, role: guest, secretHash: '` + secHash + `'}
---
apiVersion: berth.dev/v1
kind: Namespace
metadata: {name: team-a}
spec:
  members: [{user: alice, role: developer}]
---
apiVersion: berth.dev/v1
kind: Namespace
metadata: {name: pub}
spec: {public: true}
`)
	s.addKey(t0)
	return s
}

// echo is the API behind the gate: it answers 200 with the actor.
var echo = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
	w.Write([]byte(events.OriginFrom(r.Context()).Actor))
})

func newServer(s *state, now time.Time) *Server {
	return New(Config{Service: "berth", Issuer: "berth", AdminToken: adminToken, SealSecret: secret,
		Now: func() time.Time { return now }}, s)
}

func basic(user, pass string) string {
	return "Basic " + base64.StdEncoding.EncodeToString([]byte(user+":"+pass))
}

func do(h http.Handler, method, target, authz string) *httptest.ResponseRecorder {
	r := httptest.NewRequest(method, target, nil)
	if authz != "" {
		r.Header.Set("Authorization", authz)
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w
}

// token gets a token from the endpoint.
func token(t testing.TB, srv *Server, authz, scope string) string {
	t.Helper()
	w := do(srv.TokenHandler(), "GET", "/token?service=berth&scope="+scope, authz)
	if w.Code != 200 {
		t.Fatalf("token: %d %s", w.Code, w.Body)
	}
	var tr tokenResponse
	if err := json.Unmarshal(w.Body.Bytes(), &tr); err != nil {
		t.Fatal(err)
	}
	return tr.Token
}

func TestGate(t *testing.T) {
	s := newState(t)
	srv := newServer(s, time.Now())
	gate := srv.Gate(echo)
	aliceTok := token(t, srv, basic("alice", "alice-password"), "repository:team-a/app:pull,push")
	anonTok := token(t, srv, "", "repository:pub/app:pull,push")
	robotBasic := basic("ci", robotSecret)
	cases := []struct {
		name, method, path, authz string
		code                      int
		challenge                 string // substring of WWW-Authenticate
		body                      string // substring of the body
	}{
		{"ping without credentials", "GET", "/v2/", "", 401, `Bearer realm="http://example.com/token",service="berth"`, "UNAUTHORIZED"},
		{"ping with a token", "GET", "/v2/", "Bearer " + anonTok, 200, "", ""},
		{"anonymous pull of a private namespace", "GET", "/v2/team-a/app/tags/list", "", 401, `scope="repository:team-a/app:pull"`, "authentication required"},
		{"anonymous pull of a public namespace", "GET", "/v2/pub/app/manifests/v1", "", 200, "", ""},
		{"anonymous push to a public namespace", "POST", "/v2/pub/app/blobs/uploads/", "", 401, `scope="repository:pub/app:pull,push"`, ""},
		{"anonymous token cannot push", "PUT", "/v2/pub/app/manifests/v1", "Bearer " + anonTok, 401, `error="insufficient_scope"`, ""},
		{"member pushes with Basic", "PUT", "/v2/team-a/app/manifests/v1", basic("alice", "alice-password"), 200, "", "alice"},
		{"member pushes with a token", "PATCH", "/v2/team-a/app/blobs/uploads/x", "Bearer " + aliceTok, 200, "", "alice"},
		{"token for another repository", "GET", "/v2/team-a/other/tags/list", "Bearer " + aliceTok, 401, `error="insufficient_scope"`, ""},
		{"developer may not delete", "DELETE", "/v2/team-a/app/manifests/v1", basic("alice", "alice-password"), 403, "", "DENIED"},
		{"wrong password", "GET", "/v2/team-a/app/tags/list", basic("alice", "nope"), 401, "", "invalid username or password"},
		{"unknown user", "GET", "/v2/team-a/app/tags/list", basic("mallory", "x"), 401, "", "invalid username or password"},
		{"robot pulls its namespace", "GET", "/v2/team-a/app/tags/list", robotBasic, 200, "", "robot:ci"},
		{"robot guest cannot push", "POST", "/v2/team-a/app/blobs/uploads/", robotBasic, 403, "", "DENIED"},
		{"robot cannot pull another namespace", "GET", "/v2/team-b/app/tags/list", robotBasic, 403, "", "DENIED"},
		{"mount needs pull on the source", "POST", "/v2/team-a/app/blobs/uploads/?mount=sha256:" + strings.Repeat("a", 64) + "&from=team-b/x", basic("alice", "alice-password"), 403, "", "team-b/x"},
		{"admin token as bearer", "DELETE", "/v2/team-b/app/manifests/v1", "Bearer " + adminToken, 200, "", AdminSubject},
		{"admin token as password", "GET", "/v2/_catalog", basic("anyone", adminToken), 200, "", AdminSubject},
		{"catalog is for cluster admins", "GET", "/v2/_catalog", basic("alice", "alice-password"), 403, "", "DENIED"},
		{"unknown scheme", "GET", "/v2/", "Negotiate abc", 400, "", "malformed Authorization"},
		{"scheme without credentials", "GET", "/v2/", "Bearer", 400, "", "malformed"},
		{"Basic not base64", "GET", "/v2/", "Basic %%%", 400, "", "not base64"},
		{"Basic without a colon", "GET", "/v2/", "Basic " + base64.StdEncoding.EncodeToString([]byte("alice")), 400, "", "user:password"},
		{"huge token", "GET", "/v2/", "Bearer " + strings.Repeat("a", 100<<10), 400, "", "too large"},
		{"garbage token", "GET", "/v2/team-a/app/tags/list", "Bearer abc.def.ghi", 401, `error="invalid_token"`, "token malformed"},
		{"invalid name goes through to its 400", "GET", "/v2/Team_A/tags/list", "", 200, "", ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			w := do(gate, tc.method, tc.path, tc.authz)
			if w.Code != tc.code {
				t.Fatalf("status %d, want %d: %s", w.Code, tc.code, w.Body)
			}
			if got := w.Header().Get("WWW-Authenticate"); !strings.Contains(got, tc.challenge) {
				t.Errorf("WWW-Authenticate %q does not contain %q", got, tc.challenge)
			}
			if !strings.Contains(w.Body.String(), tc.body) {
				t.Errorf("body %q does not contain %q", w.Body, tc.body)
			}
			if w.Code >= 400 && !json.Valid(w.Body.Bytes()) {
				t.Errorf("error body is not JSON: %q", w.Body)
			}
		})
	}
}

// A member removed from a namespace is refused at once, even with a token
// issued before, and so is a deleted robot: the token says who, the state
// says what they may do.
func TestRevocationIsImmediate(t *testing.T) {
	s := newState(t)
	srv := newServer(s, time.Now())
	gate := srv.Gate(echo)
	tok := token(t, srv, basic("alice", "alice-password"), "repository:team-a/app:pull,push")
	robotTok := token(t, srv, basic("ci", robotSecret), "repository:team-a/app:pull")
	if w := do(gate, "PUT", "/v2/team-a/app/manifests/v1", "Bearer "+tok); w.Code != 200 {
		t.Fatalf("before removal: %d %s", w.Code, w.Body)
	}
	// The same requests allowed before (now in the decision cache).
	for _, authz := range []string{"Bearer " + tok, "Bearer " + robotTok} {
		if w := do(gate, "GET", "/v2/team-a/app/manifests/v1", authz); w.Code != 200 {
			t.Fatalf("before removal: %d %s", w.Code, w.Body)
		}
	}
	s.applyYAML("apiVersion: berth.dev/v1\nkind: Namespace\nmetadata: {name: team-a}\nspec: {public: false}\n")
	s.apply(events.ResourceDeleted{Kind: "Robot", Name: "ci"})
	for _, authz := range []string{"Bearer " + tok, basic("alice", "alice-password")} {
		if w := do(gate, "GET", "/v2/team-a/app/manifests/v1", authz); w.Code != 401 && w.Code != 403 {
			t.Errorf("after removal (%s...): %d %s", authz[:8], w.Code, w.Body)
		}
	}
	if w := do(gate, "GET", "/v2/team-a/app/manifests/v1", "Bearer "+robotTok); w.Code != 401 {
		t.Errorf("deleted robot's token: %d %s", w.Code, w.Body)
	}
}

// forge signs claims with the cluster's current key, or with key.
func forge(t *testing.T, s *state, key *auth.SigningKey, claims map[string]any) string {
	t.Helper()
	if key == nil {
		rows := s.f.View().SigningKeys()
		var err error
		if key, err = auth.OpenSigningKey(secret, rows[len(rows)-1].Sealed); err != nil {
			t.Fatal(err)
		}
	}
	iss := auth.TokenIssuer{Issuer: "berth", Key: key, Now: func() time.Time { return claims["now"].(time.Time) }}
	tok, _, err := iss.Issue(claims["sub"].(string), claims["aud"].(string), []auth.Access{{Type: "repository", Name: "team-a/app", Actions: []string{"pull"}}})
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func TestTokensRefused(t *testing.T) {
	s := newState(t)
	now := time.Now()
	srv := newServer(s, now)
	gate := srv.Gate(echo)
	good := forge(t, s, nil, map[string]any{"sub": "alice", "aud": "berth", "now": now})
	if w := do(gate, "GET", "/v2/team-a/app/tags/list", "Bearer "+good); w.Code != 200 {
		t.Fatalf("a good token: %d %s", w.Code, w.Body)
	}
	other, err := auth.GenerateSigningKey(auth.AlgEdDSA, nil)
	if err != nil {
		t.Fatal(err)
	}
	parts := strings.Split(good, ".")
	payload, _ := base64.RawURLEncoding.DecodeString(parts[1])
	edited := strings.Replace(string(payload), `"pull"`, `"pull","push"`, 1)
	none := base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"none","typ":"JWT"}`)) + "." + parts[1] + "."
	cases := map[string]string{
		"expired":         forge(t, s, nil, map[string]any{"sub": "alice", "aud": "berth", "now": now.Add(-time.Hour)}),
		"unknown key":     forge(t, s, other, map[string]any{"sub": "alice", "aud": "berth", "now": now}),
		"alg none":        none,
		"another service": forge(t, s, nil, map[string]any{"sub": "alice", "aud": "other", "now": now}),
		"edited scope":    parts[0] + "." + base64.RawURLEncoding.EncodeToString([]byte(edited)) + "." + parts[2],
		"no signature":    parts[0] + "." + parts[1] + ".",
	}
	for name, tok := range cases {
		t.Run(name, func(t *testing.T) {
			w := do(gate, "GET", "/v2/team-a/app/tags/list", "Bearer "+tok)
			if w.Code != 401 || !strings.Contains(w.Header().Get("WWW-Authenticate"), `error="invalid_token"`) {
				t.Errorf("%d %q %s", w.Code, w.Header().Get("WWW-Authenticate"), w.Body)
			}
		})
	}
}

// Rotation: tokens signed with the old key keep working; new ones are
// signed with the new key.
func TestKeyRotation(t *testing.T) {
	s := newState(t)
	srv := newServer(s, time.Now())
	gate := srv.Gate(echo)
	old := token(t, srv, basic("alice", "alice-password"), "repository:team-a/app:pull")
	ev := s.addKey(time.Now())
	fresh := token(t, srv, basic("alice", "alice-password"), "repository:team-a/app:pull")
	for name, tok := range map[string]string{"old": old, "fresh": fresh} {
		if w := do(gate, "GET", "/v2/team-a/app/tags/list", "Bearer "+tok); w.Code != 200 {
			t.Errorf("%s token after rotation: %d %s", name, w.Code, w.Body)
		}
	}
	hdr, _ := base64.RawURLEncoding.DecodeString(strings.Split(fresh, ".")[0])
	if !strings.Contains(string(hdr), ev.ID) {
		t.Errorf("fresh token header %s does not name the new key %s", hdr, ev.ID)
	}
	// Long after the rotation the old key is retired.
	late := newServer(s, time.Now().Add(auth.MaxTokenTTL+2*auth.Leeway))
	if w := do(late.Gate(echo), "GET", "/v2/team-a/app/tags/list", "Bearer "+old); w.Code != 401 {
		t.Errorf("old key's token after retirement: %d", w.Code)
	}
}

func TestTokenEndpoint(t *testing.T) {
	s := newState(t)
	srv := newServer(s, time.Now())
	h := srv.TokenHandler()
	cases := []struct {
		name, method, target, authz, form string
		code                              int
		body                              string
	}{
		{"anonymous", "GET", "/token?service=berth&scope=repository:pub/app:pull", "", "", 200, `"token"`},
		{"wrong password", "GET", "/token?service=berth", basic("alice", "x"), "", 401, "invalid_grant"},
		{"another service", "GET", "/token?service=evil", "", "", 400, "invalid_request"},
		{"bad scope", "GET", "/token?service=berth&scope=repository:UPPER:pull", "", "", 400, "invalid_scope"},
		{"too many scopes", "GET", "/token?service=berth&scope=" + strings.Repeat("repository:a:pull+", 40), "", "", 400, "invalid_scope"},
		{"bearer is not a sign-in", "GET", "/token", "Bearer x", "", 400, "invalid_request"},
		{"oauth password grant", "POST", "/token", "", "grant_type=password&username=alice&password=alice-password&service=berth&scope=repository:team-a/app:push", 200, `"access_token"`},
		{"oauth refresh grant", "POST", "/token", "", "grant_type=refresh_token&refresh_token=x", 400, "unsupported_grant_type"},
		{"method", "DELETE", "/token", "", "", 405, "invalid_request"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var body io.Reader
			if tc.form != "" {
				body = strings.NewReader(tc.form)
			}
			r := httptest.NewRequest(tc.method, tc.target, body)
			if tc.form != "" {
				r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			}
			if tc.authz != "" {
				r.Header.Set("Authorization", tc.authz)
			}
			w := httptest.NewRecorder()
			h.ServeHTTP(w, r)
			if w.Code != tc.code || !strings.Contains(w.Body.String(), tc.body) {
				t.Errorf("%d %s, want %d with %q", w.Code, w.Body, tc.code, tc.body)
			}
		})
	}
	// The grant is the intersection of what was asked and what is allowed.
	tok := token(t, srv, basic("ci", robotSecret), "repository:team-a/app:pull,push,delete")
	v := auth.Verifier{Service: "berth", Trusts: []auth.Trust{{Issuer: "berth", Keys: mustSet(t, s)}}}
	c, err := v.Verify(tok)
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := json.Marshal(c.Access); string(got) != `[{"type":"repository","name":"team-a/app","actions":["pull"]}]` {
		t.Errorf("robot guest's grant = %s", got)
	}
}

func mustSet(t *testing.T, s *state) *auth.KeySet {
	var k keyring
	k.secret = secret
	_, set, err := k.at(s.f.View())
	if err != nil {
		t.Fatal(err)
	}
	return set
}

// A node whose secret differs cannot sign, and says why.
func TestWrongSealSecret(t *testing.T) {
	s := newState(t)
	srv := New(Config{Service: "berth", Issuer: "berth", SealSecret: []byte("another secret entirely")}, s)
	w := do(srv.TokenHandler(), "GET", "/token?service=berth", "")
	if w.Code != 500 || !strings.Contains(w.Body.String(), "signing key") {
		t.Errorf("%d %s", w.Code, w.Body)
	}
}

func FuzzParseAuthorization(f *testing.F) {
	for _, s := range []string{"", "Basic YWxpY2U6cHc=", "Bearer a.b.c", "basic", "Basic %%", "Negotiate x", "Bearer  ", "BASIC Og=="} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, h string) {
		c, err := parseAuthorization(h)
		if err != nil {
			return
		}
		switch c.scheme {
		case "":
			if h != "" {
				t.Fatalf("%q parsed as no credentials", h)
			}
		case "basic":
			if c.user == "" || strings.Contains(c.user, ":") {
				t.Fatalf("%q: user %q", h, c.user)
			}
		case "bearer":
			if c.token == "" {
				t.Fatalf("%q: empty token", h)
			}
		}
	})
}
