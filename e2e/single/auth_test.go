package single

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/berth-registry/berth/e2e/harness"
)

// authRegistry is a registryd with authentication on (BERTH_AUTH_MODE=on:
// a single node leaves it off by default) and the identities of the
// teams fixture.
type authRegistry struct {
	*registry
	ctl *ctl
	// Secrets of the robots: ci-team-a (developer in team-a) and
	// reader-a (guest in team-a).
	ciSecret, readerSecret string
}

// alice is a user who is a developer in team-a, team-b and pub.
const (
	alice         = "alice"
	alicePassword = "alice-e2e-password"
)

// startAuthRegistry starts a node with authentication on and waits until
// its token endpoint signs: the node commits its first signing key right
// after it starts leading, and /token answers 503 until then.
func startAuthRegistry(t *testing.T, dataDir string, env ...string) *authRegistry {
	t.Helper()
	reg := startRegistryEnv(t, dataDir, "", append([]string{"BERTH_AUTH_MODE=on"}, env...))
	waitTokens(t, reg.addr)
	return &authRegistry{registry: reg, ctl: newCtl(t, reg)}
}

func waitTokens(t *testing.T, addr string) {
	t.Helper()
	harness.WaitFor(t, "the token endpoint", 30*time.Second, func() error {
		ctx, cancel := harness.Ctx(5 * time.Second)
		defer cancel()
		_, err := harness.Token(ctx, addr, "", "")
		return err
	})
}

// teams creates the fixture with clusterctl, as an admin would: the user
// alice, the robots ci-team-a (developer) and reader-a (guest), both
// confined to team-a, and the namespaces team-a, team-b and pub (public).
func (a *authRegistry) teams(t *testing.T) {
	t.Helper()
	a.ctl.runInput(alicePassword+"\n", "user", "passwd", alice, "--password-stdin")
	a.ctl.apply(`apiVersion: berth.dev/v1
kind: Namespace
metadata: {name: team-a}
spec:
  members:
    - {user: alice, role: developer}
---
apiVersion: berth.dev/v1
kind: Namespace
metadata: {name: team-b}
spec:
  members:
    - {user: alice, role: developer}
---
apiVersion: berth.dev/v1
kind: Namespace
metadata: {name: pub}
spec:
  public: true
  members:
    - {user: alice, role: developer}
`)
	// Not a terminal: robot create prints the secret alone.
	a.ciSecret = strings.TrimSpace(a.ctl.run("robot", "create", "ci-team-a", "--namespace", "team-a", "--role", "developer", "--expires", "90d"))
	a.readerSecret = strings.TrimSpace(a.ctl.run("robot", "create", "reader-a", "--namespace", "team-a", "--role", "guest"))
	for _, s := range []string{a.ciSecret, a.readerSecret} {
		if !strings.HasPrefix(s, "berth_rbt_") || strings.ContainsAny(s, " \n") {
			t.Fatalf("robot create printed %q, want the secret alone", s)
		}
	}
}

func (c *ctl) runInput(stdin string, args ...string) string {
	c.t.Helper()
	return harness.RunInput(c.t, c.env, stdin, c.bin, append([]string{"--token-file", c.tok}, args...)...)
}

// TestAuthClients signs in with each real client and pushes and pulls
// through Docker's token flow: every request of theirs meets a 401
// challenge, fetches a token from /token with the credentials, and
// retries with it.
func TestAuthClients(t *testing.T) {
	a := startAuthRegistry(t, t.TempDir())
	a.teams(t)
	rec := startAuthRecorder(t, a.addr)
	for _, tc := range []struct {
		name, user, password string
		run                  func(t *testing.T, env []string, host, user, password string)
	}{
		{"docker with a robot", "ci-team-a", a.ciSecret, dockerAuth},
		{"crane with a user", alice, alicePassword, craneAuth},
		{"crane with a robot", "ci-team-a", a.ciSecret, craneAuth},
		{"regctl with a robot", "ci-team-a", a.ciSecret, regctlAuth},
		{"oras with a user", alice, alicePassword, orasAuth},
		{"cosign with a user", alice, alicePassword, cosignAuth},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rec.reset()
			tc.run(t, clientEnv(t), rec.addr, tc.user, tc.password)
			expectTokenFlow(t, rec.reset())
		})
	}
	// Every client above signed in; a wrong password does not.
	crane := harness.Tool(t, "crane")
	env := clientEnv(t)
	harness.Run(t, env, crane, "auth", "login", a.addr, "-u", alice, "-p", "not-the-password")
	if out := harness.RunFail(t, env, crane, "--insecure", "ls", a.addr+"/team-a/crane-with-a-user"); !strings.Contains(out, "401") && !strings.Contains(out, "UNAUTHORIZED") {
		t.Errorf("crane with a wrong password: %s", out)
	}
}

func dockerAuth(t *testing.T, env []string, host, user, password string) {
	if out, err := exec.Command("docker", "info", "--format", "{{.ServerVersion}}").CombinedOutput(); err != nil {
		t.Fatalf("Docker engine not reachable (this test is not skipped): %v\n%s", err, out)
	}
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "hello.txt"), fmt.Appendf(nil, "pushed by a robot at %s\n", time.Now().Format(time.RFC3339Nano)))
	writeFile(t, filepath.Join(dir, "Dockerfile"), []byte("FROM scratch\nCOPY hello.txt /hello.txt\n"))
	ref := host + "/team-a/docker:1"
	t.Cleanup(func() { exec.Command("docker", "rmi", "-f", ref).Run() })
	// Before login the push is refused: team-a is not public.
	harness.Run(t, env, "docker", "build", "-q", "-t", ref, dir)
	if out := harness.RunFail(t, env, "docker", "push", ref); !strings.Contains(strings.ToLower(out), "unauthorized") && !strings.Contains(out, "denied") {
		t.Errorf("docker push without login: %s", out)
	}
	if out := harness.RunFail(t, env, "docker", "login", host, "-u", user, "-p", "berth_rbt_wrong"); !strings.Contains(out, "invalid username or password") {
		t.Errorf("docker login with a wrong secret: %s", out)
	}
	if out := harness.RunInput(t, env, password+"\n", "docker", "login", host, "-u", user, "--password-stdin"); !strings.Contains(out, "Login Succeeded") {
		t.Fatalf("docker login: %s", out)
	}
	id := strings.TrimSpace(harness.Run(t, env, "docker", "image", "inspect", "-f", "{{.Id}}", ref))
	if push := harness.Run(t, env, "docker", "push", ref); !strings.Contains(push, "digest: sha256:") {
		t.Fatalf("docker push: %s", push)
	}
	harness.Run(t, env, "docker", "rmi", ref)
	harness.Run(t, env, "docker", "pull", ref)
	if got := strings.TrimSpace(harness.Run(t, env, "docker", "image", "inspect", "-f", "{{.Id}}", ref)); got != id {
		t.Errorf("pulled image ID %s, pushed %s", got, id)
	}
	// Signed out, the same pull is refused.
	harness.Run(t, env, "docker", "logout", host)
	harness.Run(t, env, "docker", "rmi", ref)
	if out := harness.RunFail(t, env, "docker", "pull", ref); !strings.Contains(out, "denied") && !strings.Contains(strings.ToLower(out), "unauthorized") {
		t.Errorf("docker pull after logout: %s", out)
	}
}

func craneAuth(t *testing.T, env []string, host, user, password string) {
	crane := harness.Tool(t, "crane")
	c := func(args ...string) string {
		return strings.TrimSpace(harness.Run(t, env, crane, append([]string{"--insecure"}, args...)...))
	}
	repo := host + "/team-a/crane-" + strings.ReplaceAll(user, "-", "")
	layer := writeFile(t, filepath.Join(t.TempDir(), "layer.tar"), harness.TarWithFile("hello.txt", []byte("crane as "+user+"\n")))
	harness.RunInput(t, env, password+"\n", crane, "auth", "login", host, "-u", user, "--password-stdin")
	c("append", "-f", layer, "-t", repo+":1")
	digest := c("digest", repo+":1")
	if !strings.HasPrefix(digest, "sha256:") {
		t.Fatalf("crane digest printed %q", digest)
	}
	// A copy to another repository of the namespace mounts the blobs.
	c("copy", repo+":1", repo+"-copy:1")
	if got := c("digest", repo+"-copy:1"); got != digest {
		t.Errorf("copy's digest %s, want %s", got, digest)
	}
	if got := c("ls", repo); got != "1" {
		t.Errorf("crane ls = %q", got)
	}
	if export := harness.Run(t, env, crane, "--insecure", "export", repo+":1", "-"); !strings.Contains(export, "crane as "+user) {
		t.Error("the pulled layer lacks the pushed file")
	}
	harness.Run(t, env, crane, "auth", "logout", host)
	if out := harness.RunFail(t, env, crane, "--insecure", "digest", repo+":1"); !strings.Contains(out, "UNAUTHORIZED") {
		t.Errorf("crane digest after logout: %s", out)
	}
}

func regctlAuth(t *testing.T, env []string, host, user, password string) {
	regctl := harness.Tool(t, "regctl")
	r := func(args ...string) string { return strings.TrimSpace(harness.Run(t, env, regctl, args...)) }
	repo := host + "/team-a/regctl"
	r("registry", "set", host, "--tls", "disabled")
	harness.RunInput(t, env, password+"\n", regctl, "registry", "login", host, "-u", user, "--pass-stdin")
	file := writeFile(t, filepath.Join(t.TempDir(), "sbom.json"), []byte(`{"spdxVersion":"SPDX-2.3"}`))
	r("artifact", "put", "--artifact-type", "application/spdx+json", "-f", file, repo+":1")
	if got := r("artifact", "get", repo+":1"); got != `{"spdxVersion":"SPDX-2.3"}` {
		t.Errorf("artifact get = %q", got)
	}
	r("image", "copy", repo+":1", repo+"-copy:2")
	if got := r("tag", "ls", repo+"-copy"); got != "2" {
		t.Errorf("regctl tag ls = %q", got)
	}
	if a, b := r("image", "digest", repo+":1"), r("image", "digest", repo+"-copy:2"); a != b || !strings.HasPrefix(a, "sha256:") {
		t.Errorf("copied digest %q, source %q", b, a)
	}
	r("registry", "logout", host)
	harness.RunFail(t, env, regctl, "tag", "ls", repo)
}

func orasAuth(t *testing.T, env []string, host, user, password string) {
	oras := harness.Tool(t, "oras")
	dir := t.TempDir()
	content := fmt.Sprintf("an artifact pushed by %s\n", user)
	writeFile(t, filepath.Join(dir, "notes.txt"), []byte(content))
	ref := host + "/team-a/oras:1"
	harness.RunInput(t, env, password+"\n", oras, "login", "--plain-http", "-u", user, "--password-stdin", host)
	harness.RunDir(t, dir, env, "", oras, "push", "--plain-http", "--artifact-type", "application/vnd.berth.e2e.notes", ref, "notes.txt:text/plain")
	out := filepath.Join(dir, "pulled")
	harness.Run(t, env, oras, "pull", "--plain-http", "-o", out, ref)
	if got, err := os.ReadFile(filepath.Join(out, "notes.txt")); err != nil || string(got) != content {
		t.Errorf("oras pull: %q %v, want %q", got, err, content)
	}
	if m := harness.Run(t, env, oras, "manifest", "fetch", "--plain-http", ref); !strings.Contains(m, "application/vnd.berth.e2e.notes") {
		t.Errorf("manifest lacks the artifact type: %s", m)
	}
	harness.Run(t, env, oras, "logout", host)
	if out := harness.RunFail(t, env, oras, "manifest", "fetch", "--plain-http", ref); !strings.Contains(strings.ToLower(out), "unauthorized") {
		t.Errorf("oras manifest fetch after logout: %s", out)
	}
}

// cosignAuth signs an image with a key pair of its own, offline (no
// transparency log: nothing outside this machine is reachable), and
// verifies the signature it stored in the registry.
func cosignAuth(t *testing.T, env []string, host, user, password string) {
	cosign, crane := harness.Tool(t, "cosign"), harness.Tool(t, "crane")
	dir := t.TempDir()
	env = append(env, "COSIGN_PASSWORD=e2e-key-password", "COSIGN_YES=true", "TUF_ROOT="+filepath.Join(dir, "tuf"))
	harness.RunDir(t, dir, env, "", cosign, "generate-key-pair")
	harness.RunInput(t, env, password+"\n", cosign, "login", host, "-u", user, "--password-stdin")
	// cosign login wrote the Docker config that crane reads too.
	repo := host + "/team-a/cosign"
	for _, tag := range []string{"signed", "unsigned"} {
		layer := writeFile(t, filepath.Join(dir, tag+".tar"), harness.TarWithFile(tag, []byte(tag+"\n")))
		harness.Run(t, env, crane, "--insecure", "append", "-f", layer, "-t", repo+":"+tag)
	}
	digest := func(tag string) string {
		return repo + "@" + strings.TrimSpace(harness.Run(t, env, crane, "--insecure", "digest", repo+":"+tag))
	}
	signed, unsigned := digest("signed"), digest("unsigned")
	insecure := []string{"--allow-http-registry", "--allow-insecure-registry"}
	harness.Run(t, env, cosign, append([]string{"sign", "--key", filepath.Join(dir, "cosign.key"), "--tlog-upload=false", "--use-signing-config=false"}, append(insecure, signed)...)...)
	verify := append([]string{"verify", "--key", filepath.Join(dir, "cosign.pub"), "--insecure-ignore-tlog=true", "--output", "json"}, insecure...)
	if out := harness.Run(t, env, cosign, append(verify, signed)...); !strings.Contains(out, strings.TrimPrefix(signed, repo+"@")) {
		t.Errorf("cosign verify does not name the signed digest:\n%s", out)
	}
	if out := harness.RunFail(t, env, cosign, append(verify, unsigned)...); !strings.Contains(out, "no signatures found") && !strings.Contains(out, "no matching signatures") {
		t.Errorf("cosign verify of an unsigned image: %s", out)
	}
}

// authCtx is the context of one HTTP check.
func authCtx(t *testing.T) context.Context {
	ctx, cancel := harness.Ctx(30 * time.Second)
	t.Cleanup(cancel)
	return ctx
}
