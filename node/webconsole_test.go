package node

import (
	"io"
	"net/http"
	"strings"
	"testing"
)

// The console is wired behind the OCI API's authentication: with auth
// on, no credentials get the browser's Basic prompt, and the admin token
// (as a Basic password or a bearer token) sees every page, events read
// from this node's JetStream stream included.
func TestWebConsoleWiring(t *testing.T) {
	n := runTestNode(t, func(c *Config) { c.Auth.Mode = "on" })
	base := "http://" + n.Addr()
	for _, tc := range []struct {
		name, path, user, bearer string
		code                     int
		want                     string
	}{
		{"no credentials", "/ui/", "", "", 401, "sign in"},
		{"wrong password", "/ui/", "admin-token", "", 401, "invalid"},
		{"admin token as password", "/ui/", "admin-token-as-password", "", 200, "Repositories"},
		{"admin token as bearer", "/ui/cluster", "", "admin-token", 200, n.cfg.Node.ID},
		{"events", "/ui/events", "admin-token-as-password", "", 200, "Recent events"},
		{"resources", "/ui/resources", "admin-token-as-password", "", 200, "Namespace"},
		{"unknown page", "/ui/nope", "admin-token-as-password", "", 404, "no console page"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req, _ := http.NewRequest("GET", base+tc.path, nil)
			switch {
			case tc.user == "admin-token-as-password":
				req.SetBasicAuth("admin", "admin-token")
			case tc.user != "":
				req.SetBasicAuth("admin", "not-"+tc.user)
			case tc.bearer != "":
				req.Header.Set("Authorization", "Bearer "+tc.bearer)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			body, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != tc.code || !strings.Contains(string(body), tc.want) {
				t.Fatalf("GET %s: %d, want %d with %q:\n%s", tc.path, resp.StatusCode, tc.code, tc.want, body)
			}
			if tc.path == "/ui/events" && strings.Contains(string(body), "Events are off") {
				t.Errorf("events are on for a single node, but the page says off")
			}
			if tc.code == 401 && !strings.HasPrefix(resp.Header.Get("WWW-Authenticate"), `Basic realm="berth console"`) {
				t.Errorf("WWW-Authenticate = %q", resp.Header.Get("WWW-Authenticate"))
			}
		})
	}
}
