package cluster

import (
	"encoding/base64"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/berth-registry/berth/e2e/harness"
)

// newAuthCluster is newCluster with authentication at its cluster
// default, on, and waits until the cluster signs tokens (the leader
// commits the first signing key as soon as it leads).
func newAuthCluster(t *testing.T, n int) *cluster {
	c := &cluster{t: t, dir: t.TempDir(), auth: true}
	c.minio = startMinIO(t, c.dir)
	c.startNodes("node", n)
	c.startHAProxy()
	harness.WaitFor(t, "the token endpoint", 30*time.Second, func() error {
		ctx, cancel := c.ctx(5 * time.Second)
		defer cancel()
		_, err := harness.Token(ctx, c.lb, "", "")
		return err
	})
	return c
}

func (c *cluster) apply(t *testing.T, server, doc string) {
	t.Helper()
	file := filepath.Join(t.TempDir(), "doc.yaml")
	if err := os.WriteFile(file, []byte(doc), 0o644); err != nil {
		t.Fatal(err)
	}
	c.ctl(t, server, "apply", "-f", file)
}

const (
	bob         = "bob"
	bobPassword = "bob-e2e-password"
)

// TestAuthRevokedMember: a member pushes through HAProxy; the admin
// removes them from the namespace; as soon as clusterctl apply returns,
// every node refuses them, including with the token they got before
// the removal, which is still within its lifetime.
func TestAuthRevokedMember(t *testing.T) {
	c := newAuthCluster(t, 3)
	harness.RunInput(t, c.ctlEnv(), bobPassword+"\n", harness.Tool(t, "clusterctl"),
		"--server", c.url(c.lb, ""), "user", "passwd", bob, "--password-stdin")
	c.apply(t, c.lb, `apiVersion: berth.dev/v1
kind: Namespace
metadata: {name: team-a}
spec:
  members:
    - {user: bob, role: developer}
`)

	// bob pushes with crane through HAProxy: the challenge's realm is the
	// load balancer's /token, which any node serves.
	crane, env := harness.Tool(t, "crane"), c.clientEnv(t.TempDir())
	harness.RunInput(t, env, bobPassword+"\n", crane, "auth", "login", c.lb, "-u", bob, "--password-stdin")
	layer := filepath.Join(t.TempDir(), "layer.tar")
	if err := os.WriteFile(layer, harness.TarWithFile("bob.txt", []byte("pushed by bob\n")), 0o644); err != nil {
		t.Fatal(err)
	}
	ref := c.lb + "/team-a/app:1"
	harness.Run(t, env, crane, "append", "-f", layer, "-t", ref)
	digest := strings.TrimSpace(harness.Run(t, env, crane, "digest", ref))

	ctx, cancel := c.ctx(2 * time.Minute)
	defer cancel()
	tok, err := harness.Token(ctx, c.lb, bob, bobPassword, "repository:team-a/app:pull,push")
	if err != nil {
		t.Fatal(err)
	}
	creds := []struct{ name, authorization string }{
		{"token from before the removal", "Bearer " + tok},
		{"Basic", harness.Basic(bob, bobPassword)},
	}
	manifest := "/v2/team-a/app/manifests/" + digest
	// Before: every node lets bob pull and push, with either.
	for _, nd := range c.nodes {
		for _, cr := range creds {
			for _, req := range []struct{ method, path string }{{"GET", manifest}, {"POST", "/v2/team-a/app/blobs/uploads/"}} {
				if code, _, body, err := harness.Request(ctx, req.method, c.url(nd.api, req.path), cr.authorization); err != nil || code >= 300 {
					t.Fatalf("before the removal, %s %s on %s with %s: %d %v %s", req.method, req.path, nd.id, cr.name, code, err, body)
				}
			}
		}
	}

	c.apply(t, c.lb, `apiVersion: berth.dev/v1
kind: Namespace
metadata: {name: team-a}
spec:
  public: false
`)
	removed := time.Now()
	for _, nd := range c.nodes {
		for _, cr := range creds {
			for _, req := range []struct{ method, path string }{{"GET", manifest}, {"POST", "/v2/team-a/app/blobs/uploads/"}} {
				code, _, body, err := harness.Request(ctx, req.method, c.url(nd.api, req.path), cr.authorization)
				if err != nil || (code != http.StatusUnauthorized && code != http.StatusForbidden) {
					t.Errorf("%s after the removal, %s %s on %s with %s: %d %v %s, want 401 or 403",
						time.Since(removed), req.method, req.path, nd.id, cr.name, code, err, body)
				}
			}
		}
	}
	if out := harness.RunFail(t, env, crane, "digest", ref); !strings.Contains(out, "UNAUTHORIZED") {
		t.Errorf("crane through HAProxy after the removal: %s", out)
	}
	// A new token grants bob nothing in team-a any more.
	tok, err = harness.Token(ctx, c.lb, bob, bobPassword, "repository:team-a/app:pull,push")
	if err != nil {
		t.Fatal(err)
	}
	if claims := tokenPayload(t, tok); strings.Contains(claims, "team-a") {
		t.Errorf("a token asked for after the removal grants %s", claims)
	}
}

// tokenPayload is a token's claims as JSON text (not verified).
func tokenPayload(t *testing.T, tok string) string {
	t.Helper()
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		t.Fatalf("token %q is not a JWS", tok)
	}
	b, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
