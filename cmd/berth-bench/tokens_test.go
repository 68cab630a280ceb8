package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

func TestParseChallenge(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want challenge
		ok   bool
	}{
		{"berth push", `Bearer realm="http://127.0.0.1:5000/token",service="berth",scope="repository:bench/small-0:pull,push"`,
			challenge{"http://127.0.0.1:5000/token", "berth", "repository:bench/small-0:pull,push"}, true},
		{"ping without scope", `Bearer realm="http://h/token",service="berth"`, challenge{"http://h/token", "berth", ""}, true},
		{"error and spaces", `bearer realm="http://h/token", service="s", scope="repository:a:pull", error="insufficient_scope"`,
			challenge{"http://h/token", "s", "repository:a:pull"}, true},
		{"mount: two scopes", `Bearer realm="http://h/token",service="s",scope="repository:a:pull,push repository:b:pull"`,
			challenge{"http://h/token", "s", "repository:a:pull,push repository:b:pull"}, true},
		{"escaped quote", `Bearer realm="http://h/t\"x",service=berth`, challenge{`http://h/t"x`, "berth", ""}, true},
		{"basic", `Basic realm="berth"`, challenge{}, false},
		{"empty", ``, challenge{}, false},
		{"no realm", `Bearer service="berth"`, challenge{}, false},
		{"unterminated", `Bearer realm="http://h/token`, challenge{}, false},
		{"no equals", `Bearer realm`, challenge{}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := parseChallenge(tt.in)
			if ok != tt.ok || got != tt.want {
				t.Errorf("parseChallenge(%q) = %+v, %v; want %+v, %v", tt.in, got, ok, tt.want, tt.ok)
			}
		})
	}
}

func TestRepoOf(t *testing.T) {
	tests := map[string]string{
		"/v2/bench/manifest/manifests/latest":                               "bench/manifest",
		"/v2/bench/small-3/blobs/sha256:abc":                                "bench/small-3",
		"/v2/bench/small-3/blobs/uploads/":                                  "bench/small-3",
		"/v2/bench/small-3/blobs/uploads":                                   "bench/small-3",
		"http://127.0.0.1:5000/v2/a/b/c/blobs/uploads/uuid?digest=sha256:1": "a/b/c",
		"/v2/bench/tags/tags/list?n=1000":                                   "bench/tags",
		"/v2/team/blobs/x/manifests/v1":                                     "team/blobs/x",
		"/v2/a/referrers/sha256:abc":                                        "a",
		"/v2/_catalog?n=1000":                                               catalogTarget,
		"/v2/":                                                              "",
		"/token":                                                            "",
		"/admin/v1/apply":                                                   "",
	}
	for in, want := range tests {
		if got := repoOf(in); got != want {
			t.Errorf("repoOf(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestTargetOfScope(t *testing.T) {
	tests := map[string]string{
		"repository:bench/small-0:pull,push": "bench/small-0",
		"repository:a:pull":                  "a",
		"registry:catalog:*":                 catalogTarget,
		"repository:localhost:5000/a:pull":   "localhost:5000/a",
		"repository:a":                       "",
		"garbage":                            "",
	}
	for in, want := range tests {
		if got := targetOfScope(in); got != want {
			t.Errorf("targetOfScope(%q) = %q, want %q", in, got, want)
		}
	}
}

// fakeRegistry asks for a token on every /v2/ request, as Berth with
// auth.mode on does, and counts what the client did.
type fakeRegistry struct {
	srv         *httptest.Server
	expiresIn   int
	tokenCalls  atomic.Int64
	challenges  atomic.Int64
	lastBody    atomic.Value // string
	lastTokenQS atomic.Value // string
}

func newFakeRegistry(t *testing.T, expiresIn int) *fakeRegistry {
	f := &fakeRegistry{expiresIn: expiresIn}
	f.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/token" {
			f.tokenCalls.Add(1)
			f.lastTokenQS.Store(r.URL.RawQuery)
			if u, p, ok := r.BasicAuth(); !ok || u != "bench" || p != "secret" {
				w.WriteHeader(http.StatusUnauthorized)
				io.WriteString(w, `{"errors":[{"code":"invalid_grant"}]}`)
				return
			}
			json.NewEncoder(w).Encode(map[string]any{
				"token": "tok " + strings.Join(r.URL.Query()["scope"], " "), "expires_in": f.expiresIn})
			return
		}
		repo := repoOf(r.URL.Path)
		scope := "repository:" + repo + ":pull"
		if r.Method == "PUT" || r.Method == "POST" {
			scope = "repository:" + repo + ":pull,push"
		}
		got := strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer tok ")
		if repo == "" || (got != scope && !(strings.HasSuffix(scope, ":pull") && got == scope+",push")) {
			f.challenges.Add(1)
			w.Header().Set("WWW-Authenticate", fmt.Sprintf(`Bearer realm="%s/token",service="fake",scope="%s"`, f.srv.URL, scope))
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		b, _ := io.ReadAll(r.Body)
		f.lastBody.Store(string(b))
		w.WriteHeader(http.StatusCreated)
	}))
	t.Cleanup(f.srv.Close)
	return f
}

// TestTokenFlow: the first request to a repository makes the 401 round
// trip and one token request; later ones send the token up front; a push
// token serves pulls of the same repository; a body is sent whole again
// after the 401.
func TestTokenFlow(t *testing.T) {
	ctx := context.Background()
	f := newFakeRegistry(t, 300)
	c := newClient(f.srv.URL, 4).withAuth("bench", "secret")

	put := func(repo string) int {
		body := []byte("manifest for " + repo)
		code, _, _, _, err := c.do(ctx, "PUT", "/v2/"+repo+"/manifests/v1", nil, bytes.NewReader(body), int64(len(body)), true)
		if err != nil {
			t.Fatal(err)
		}
		if got, _ := f.lastBody.Load().(string); code == http.StatusCreated && got != string(body) {
			t.Errorf("server got body %q after the retry, want %q", got, body)
		}
		return code
	}
	steps := []struct {
		name                   string
		do                     func() int
		challenges, tokenCalls int64
	}{
		{"first push answers the challenge", func() int { return put("bench/a") }, 1, 1},
		{"second push sends the token up front", func() int { return put("bench/a") }, 1, 1},
		{"a pull of the same repository uses the push token", func() int {
			code, _, _, _, err := c.do(ctx, "HEAD", "/v2/bench/a/manifests/v1", nil, nil, -1, false)
			if err != nil {
				t.Fatal(err)
			}
			return code
		}, 1, 1},
		{"another repository needs its own token", func() int { return put("bench/b") }, 2, 2},
	}
	for _, s := range steps {
		if code := s.do(); code != http.StatusCreated {
			t.Fatalf("%s: status %d, want 201", s.name, code)
		}
		if got := f.challenges.Load(); got != s.challenges {
			t.Errorf("%s: %d challenges so far, want %d", s.name, got, s.challenges)
		}
		if got := f.tokenCalls.Load(); got != s.tokenCalls {
			t.Errorf("%s: %d token requests so far, want %d", s.name, got, s.tokenCalls)
		}
	}
	if qs, _ := f.lastTokenQS.Load().(string); !strings.Contains(qs, "service=fake") || !strings.Contains(qs, "scope=repository%3Abench%2Fb%3Apull%2Cpush") {
		t.Errorf("token request query %q: want the challenge's service and scope", qs)
	}
}

// TestPrefetch: a prefetched token means the timed request makes no
// token work at all; against a registry without auth, prefetch does
// nothing.
func TestPrefetch(t *testing.T) {
	ctx := context.Background()
	f := newFakeRegistry(t, 300)
	c := newClient(f.srv.URL, 4).withAuth("bench", "secret")
	// The fake answers the ping with a challenge without scope.
	if err := c.tokens.prefetch(ctx, c, "bench/m", "pull"); err != nil {
		t.Fatal(err)
	}
	before := f.challenges.Load()
	code, _, _, _, err := c.do(ctx, "HEAD", "/v2/bench/m/manifests/latest", nil, nil, -1, false)
	if err != nil || code != http.StatusCreated {
		t.Fatalf("HEAD after prefetch: %d %v", code, err)
	}
	if f.challenges.Load() != before || f.tokenCalls.Load() != 1 {
		t.Errorf("after prefetch: %d more challenges, %d token requests; want 0 and 1", f.challenges.Load()-before, f.tokenCalls.Load())
	}

	open := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "" {
			t.Errorf("a registry without auth got an Authorization header on %s", r.URL.Path)
		}
	}))
	defer open.Close()
	oc := newClient(open.URL, 4).withAuth("bench", "secret")
	if err := oc.tokens.prefetch(ctx, oc, "bench/m", "pull"); err != nil {
		t.Fatal(err)
	}
	if code, _, _, _, err := oc.do(ctx, "HEAD", "/v2/bench/m/manifests/latest", nil, nil, -1, false); err != nil || code != http.StatusOK {
		t.Fatalf("HEAD without auth: %d %v", code, err)
	}
	if n := oc.tokens.fetches.Load(); n != 0 {
		t.Errorf("%d token requests against a registry without auth", n)
	}
}

// TestTokenRenewal: a token within renewBefore of its expiry is not sent;
// the client gets a new one through the challenge.
func TestTokenRenewal(t *testing.T) {
	ctx := context.Background()
	f := newFakeRegistry(t, 300)
	c := newClient(f.srv.URL, 4).withAuth("bench", "secret")
	now := time.Now()
	c.tokens.now = func() time.Time { return now }
	head := func() {
		t.Helper()
		if code, _, _, _, err := c.do(ctx, "HEAD", "/v2/bench/r/manifests/v1", nil, nil, -1, false); err != nil || code != http.StatusCreated {
			t.Fatalf("HEAD: %d %v", code, err)
		}
	}
	head()
	now = now.Add(300*time.Second - renewBefore - time.Second)
	head()
	if f.tokenCalls.Load() != 1 {
		t.Fatalf("%d token requests before the renewal point, want 1", f.tokenCalls.Load())
	}
	now = now.Add(2 * time.Second)
	head()
	if f.tokenCalls.Load() != 2 {
		t.Errorf("%d token requests after the renewal point, want 2", f.tokenCalls.Load())
	}
}

// TestTokenRefused: wrong credentials end in an error that names the
// status and the flag to check, not a silent 401.
func TestTokenRefused(t *testing.T) {
	f := newFakeRegistry(t, 300)
	c := newClient(f.srv.URL, 4).withAuth("bench", "wrong")
	_, _, _, _, err := c.do(context.Background(), "HEAD", "/v2/bench/r/manifests/v1", nil, nil, -1, false)
	if err == nil || !strings.Contains(err.Error(), "status 401") || !strings.Contains(err.Error(), "--auth") {
		t.Errorf("err = %v, want the token endpoint's 401 and a hint at --auth", err)
	}
}

func TestParseCredentials(t *testing.T) {
	tests := []struct {
		in, user, pass string
		ok             bool
	}{
		{"bench:secret", "bench", "secret", true},
		{"bench:with:colon", "bench", "with:colon", true},
		{"bench:", "bench", "", true},
		{"nopassword", "", "", false},
		{":secret", "", "", false},
	}
	for _, tt := range tests {
		u, p, err := parseCredentials(tt.in)
		if (err == nil) != tt.ok || u != tt.user || p != tt.pass {
			t.Errorf("parseCredentials(%q) = %q, %q, %v", tt.in, u, p, err)
		}
	}
}
