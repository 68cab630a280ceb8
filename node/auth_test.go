package node

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
)

// startTestNode runs a real single node with pprof on and returns its
// base URL.
func startTestNode(t *testing.T) string {
	t.Helper()
	return "http://" + runTestNode(t, func(c *Config) { c.HTTP.Pprof = true }).Addr()
}

// TestAuthenticationIsOneRule: the admin API, the cluster admin API, pprof
// and the internal API check their token the same way (node/httpauth):
// "Bearer" in any case, the token compared in constant time, and a 401
// with WWW-Authenticate and a JSON error otherwise.
func TestAuthenticationIsOneRule(t *testing.T) {
	base := startTestNode(t)
	areas := []struct {
		name, path, token string
	}{
		{"admin", "/admin/v1/resources/registries", "admin-token"},
		{"cluster admin", "/admin/v1/cluster/status", "admin-token"},
		{"pprof", "/debug/pprof/", "admin-token"},
		{"internal", "/internal/v1/status", "cluster-secret"},
	}
	for _, a := range areas {
		for _, tc := range []struct {
			name   string
			header string
			ok     bool
		}{
			{"Bearer", "Bearer " + a.token, true},
			{"lower-case scheme", "bearer " + a.token, true},
			{"upper-case scheme", "BEARER " + a.token, true},
			{"no header", "", false},
			{"token without a scheme", a.token, false},
			{"wrong token", "Bearer x" + a.token, false},
			{"token prefix", "Bearer " + a.token[:len(a.token)-1], false},
			{"other scheme", "Basic " + a.token, false},
		} {
			t.Run(a.name+"/"+tc.name, func(t *testing.T) {
				req, _ := http.NewRequest("GET", base+a.path, nil)
				if tc.header != "" {
					req.Header.Set("Authorization", tc.header)
				}
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				defer resp.Body.Close()
				body, _ := io.ReadAll(resp.Body)
				if tc.ok {
					if resp.StatusCode != http.StatusOK {
						t.Fatalf("GET %s with %q = %d %s, want 200", a.path, tc.header, resp.StatusCode, body)
					}
					return
				}
				if resp.StatusCode != http.StatusUnauthorized {
					t.Fatalf("GET %s with %q = %d, want 401", a.path, tc.header, resp.StatusCode)
				}
				if !strings.HasPrefix(resp.Header.Get("WWW-Authenticate"), "Bearer realm=") {
					t.Errorf("401 without a Bearer WWW-Authenticate: %q", resp.Header.Get("WWW-Authenticate"))
				}
				var e struct{ Error string }
				if json.Unmarshal(body, &e) != nil || e.Error == "" {
					t.Errorf("401 body %q is not {\"error\": ...}", body)
				}
			})
		}
	}
}
