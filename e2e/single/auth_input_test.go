package single

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/berth-registry/berth/e2e/harness"
)

// TestAuthBadInput sends broken credentials and token requests: each gets
// a clear 400 or 401 in the OCI (for /v2/) or OAuth2 (for /token) error
// JSON, never a 500.
func TestAuthBadInput(t *testing.T) {
	a := startAuthRegistry(t, t.TempDir())
	a.teams(t)
	ctx := authCtx(t)
	im := harness.NewImage("team-a/app", "1")
	if err := im.PushAs(ctx, a.addr, harness.Basic(alice, alicePassword)); err != nil {
		t.Fatal(err)
	}
	b64 := func(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }
	huge := strings.Repeat("A", 100<<10)

	t.Run("Authorization on /v2/", func(t *testing.T) {
		for _, tc := range []struct {
			name, header string
			status       int
			says         string
		}{
			{"Basic, not base64", "Basic !!not-base64!!", 400, "not base64"},
			{"Basic without a colon", "Basic " + b64("alice"), 400, "want user:password"},
			{"Basic with an empty user", "Basic " + b64(":"+alicePassword), 400, "want user:password"},
			{"Basic with nothing after it", "Basic", 400, "malformed Authorization header"},
			{"no scheme", b64(alice + ":" + alicePassword), 400, "malformed Authorization header"},
			{"unknown scheme", `Digest username="alice", realm="berth"`, 400, "malformed Authorization header"},
			{"Bearer without a token", "Bearer ", 400, "malformed Authorization header"},
			{"a 100 KB bearer token", "Bearer " + huge, 400, "too large"},
			{"a 100 KB Basic password", "Basic " + b64(alice+":"+huge), 400, "too large"},
			{"Bearer, not a JWT", "Bearer not-a-jwt", 401, "token malformed"},
			{"Bearer, three garbage segments", "Bearer a.b.c", 401, "token malformed"},
			{"Bearer, a JSON header of the wrong type", "Bearer " + base64.RawURLEncoding.EncodeToString([]byte(`[1]`)) + ".e30.", 401, "token malformed"},
			{"Basic, wrong password", harness.Basic(alice, "wrong-password"), 401, "invalid username or password"},
			{"Basic, unknown user", harness.Basic("mallory", alicePassword), 401, "invalid username or password"},
			{"Basic, a robot with a forged secret", harness.Basic("ci-team-a", "berth_rbt_forged"), 401, "invalid username or password"},
		} {
			t.Run(tc.name, func(t *testing.T) {
				code, hdr, body, err := harness.Request(ctx, "GET", "http://"+a.addr+"/v2/team-a/app/manifests/1", tc.header)
				if err != nil {
					t.Fatal(err)
				}
				if code != tc.status {
					t.Errorf("status %d, want %d: %s", code, tc.status, body)
				}
				e, err := harness.ParseOCIError(body)
				if err != nil || e.Code != "UNAUTHORIZED" || !strings.Contains(e.Message, tc.says) {
					t.Errorf("body %.300s (%v), want UNAUTHORIZED saying %q", body, err, tc.says)
				}
				if ch, err := harness.ParseChallenge(hdr.Get("WWW-Authenticate")); err != nil || ch.Scheme != "Bearer" || ch.Params["realm"] == "" {
					t.Errorf("WWW-Authenticate %q (%v): the client is not told where to get a token", hdr.Get("WWW-Authenticate"), err)
				}
			})
		}
	})

	t.Run("token requests", func(t *testing.T) {
		tokenURL := "http://" + a.addr + "/token"
		scopes := func(n int) string {
			q := url.Values{}
			for i := range n {
				q.Add("scope", fmt.Sprintf("repository:team-a/app%d:pull", i))
			}
			return q.Encode()
		}
		for _, tc := range []struct {
			name, method, query, authorization, form string
			status                                   int
			oauth, says                              string
		}{
			{"a scope with upper case", "GET", "scope=repository:Team-A/app:pull", "", "", 400, "invalid_scope", "is not a repository name"},
			{"a scope that is one word", "GET", "scope=everything", "", "", 400, "invalid_scope", "want type:name:actions"},
			{"a scope naming a host", "GET", "scope=repository:evil.example:5000/app:pull", "", "", 400, "invalid_scope", "has a host or port"},
			{"a scope of an unknown type", "GET", "scope=bucket:team-a:pull", "", "", 400, "invalid_scope", "unknown resource type"},
			{"a scope without actions", "GET", "scope=repository:team-a/app:", "", "", 400, "invalid_scope", "no actions"},
			{"a 100 KB scope", "GET", "scope=repository:team-a/" + strings.Repeat("a", 100<<10) + ":pull", "", "", 400, "invalid_scope", "at most"},
			{"17 scopes", "GET", scopes(17), "", "", 400, "invalid_scope", "more than 16 scopes"},
			{"another service", "GET", "service=elsewhere&scope=repository:team-a/app:pull", "", "", 400, "invalid_request", `serves "berth", not "elsewhere"`},
			{"a bearer token instead of credentials", "GET", "", "Bearer x.y.z", "", 400, "invalid_request", "send Basic credentials"},
			{"malformed Basic", "GET", "", "Basic !!", "", 400, "invalid_request", "send Basic credentials"},
			{"a wrong password", "GET", "scope=repository:team-a/app:pull", harness.Basic(alice, "wrong-password"), "", 401, "invalid_grant", "invalid username or password"},
			{"an unsupported grant", "POST", "", "", "grant_type=refresh_token&refresh_token=x", 400, "unsupported_grant_type", "use password"},
			{"a password grant with a wrong password", "POST", "", "", "grant_type=password&username=alice&password=wrong-password&service=berth", 401, "invalid_grant", "invalid username or password"},
			{"a form that is not one", "POST", "", "", "grant_type=%zz", 400, "invalid_request", "unreadable form"},
			{"PUT", "PUT", "", "", "", 405, "invalid_request", "not supported"},
		} {
			t.Run(tc.name, func(t *testing.T) {
				req, err := http.NewRequestWithContext(ctx, tc.method, tokenURL+"?"+tc.query, strings.NewReader(tc.form))
				if err != nil {
					t.Fatal(err)
				}
				if tc.authorization != "" {
					req.Header.Set("Authorization", tc.authorization)
				}
				if tc.form != "" {
					req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
				}
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				defer resp.Body.Close()
				var body struct {
					Error       string `json:"error"`
					Description string `json:"error_description"`
					Errors      []harness.OCIError
				}
				derr := json.NewDecoder(resp.Body).Decode(&body)
				if resp.StatusCode != tc.status || derr != nil || body.Error != tc.oauth || !strings.Contains(body.Description, tc.says) || len(body.Errors) != 1 {
					t.Errorf("%d %+v (%v), want %d %s saying %q with the OCI errors beside", resp.StatusCode, body, derr, tc.status, tc.oauth, tc.says)
				}
			})
		}
	})

	// Docker's OAuth2 flow with good credentials issues a token that works.
	t.Run("password grant", func(t *testing.T) {
		form := url.Values{"grant_type": {"password"}, "username": {alice}, "password": {alicePassword},
			"service": {"berth"}, "scope": {"repository:team-a/app:pull"}, "client_id": {"e2e"}}
		resp, err := http.PostForm("http://"+a.addr+"/token", form)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var tr struct {
			AccessToken string `json:"access_token"`
			ExpiresIn   int    `json:"expires_in"`
		}
		if err := json.NewDecoder(resp.Body).Decode(&tr); err != nil || resp.StatusCode != 200 || tr.ExpiresIn != 300 {
			t.Fatalf("POST /token: %d %+v %v, want 200 and a token for 300 s", resp.StatusCode, tr, err)
		}
		if err := im.VerifyAs(ctx, a.addr, "Bearer "+tr.AccessToken); err != nil {
			t.Errorf("pull with the password grant's token: %v", err)
		}
	})
}
