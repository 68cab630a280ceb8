package single

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/berth-registry/berth/e2e/harness"
)

func TestCrane(t *testing.T) {
	reg := startRegistry(t, t.TempDir(), "")
	crane, env := harness.Tool(t, "crane"), clientEnv(t)
	dir := t.TempDir()
	layer := writeFile(t, filepath.Join(dir, "layer.tar"), harness.TarWithFile("hello.txt", []byte("hello berth\n")))
	ref := reg.addr + "/e2e/crane:1"
	c := func(args ...string) string {
		return strings.TrimSpace(harness.Run(t, env, crane, append([]string{"--insecure"}, args...)...))
	}
	c("append", "-f", layer, "-t", ref)
	digest := c("digest", ref)
	if !strings.HasPrefix(digest, "sha256:") {
		t.Fatalf("digest %q", digest)
	}
	c("tag", ref, "latest")
	if got := c("ls", reg.addr+"/e2e/crane"); got != "1\nlatest" {
		t.Errorf("crane ls = %q", got)
	}
	c("copy", ref, reg.addr+"/e2e/copy:v1")
	if got := c("digest", reg.addr+"/e2e/copy:v1"); got != digest {
		t.Errorf("copied digest %s, want %s", got, digest)
	}
	if got := c("catalog", reg.addr); got != "e2e/copy\ne2e/crane" {
		t.Errorf("catalog = %q", got)
	}
	out := filepath.Join(dir, "pulled.tar")
	c("pull", ref, out)
	if fi, err := os.Stat(out); err != nil || fi.Size() == 0 {
		t.Fatalf("pull wrote nothing: %v", err)
	}
	// The pulled tarball pushed elsewhere is the same image, byte for byte.
	if got := c("push", out, reg.addr+"/e2e/pushed:1"); got != reg.addr+"/e2e/pushed@"+digest {
		t.Errorf("crane push printed %q, want %s/e2e/pushed@%s", got, reg.addr, digest)
	}
	// mutate writes a new config and manifest that reuse the layer.
	mutated := c("mutate", ref, "--label", "org.berth.e2e=yes", "-t", reg.addr+"/e2e/crane:labeled")
	if !strings.HasPrefix(mutated, reg.addr+"/e2e/crane@sha256:") || strings.HasSuffix(mutated, digest) {
		t.Errorf("crane mutate printed %q", mutated)
	}
	var cfg struct {
		Config struct{ Labels map[string]string }
	}
	if err := json.Unmarshal([]byte(c("config", reg.addr+"/e2e/crane:labeled")), &cfg); err != nil || cfg.Config.Labels["org.berth.e2e"] != "yes" {
		t.Errorf("mutated config: %v %+v", err, cfg)
	}
	// The pulled layer holds our file.
	export := harness.Run(t, env, crane, "--insecure", "export", ref, "-")
	if !strings.Contains(export, "hello berth") {
		t.Error("exported filesystem lacks the pushed file")
	}
	c("delete", reg.addr+"/e2e/copy@"+digest)
	cmd := exec.Command(crane, "--insecure", "manifest", reg.addr+"/e2e/copy:v1")
	cmd.Env = append(os.Environ(), env...)
	if out, err := cmd.CombinedOutput(); err == nil || !strings.Contains(string(out), "MANIFEST_UNKNOWN") {
		t.Errorf("deleted manifest still served (err=%v): %s", err, out)
	}
	ctx, cancel := harness.Ctx(30 * time.Second)
	defer cancel()
	for _, path := range []string{"/v2/e2e/copy/manifests/" + digest, "/v2/e2e/copy/manifests/v1"} {
		if code, _, _, err := harness.HTTPStatus(ctx, "GET", "http://"+reg.addr+path, nil, nil); err != nil || code != 404 {
			t.Errorf("GET %s after crane delete: %d %v, want 404", path, code, err)
		}
	}
	if got := c("ls", reg.addr+"/e2e/copy"); got != "" {
		t.Errorf("tags left after crane delete: %q", got)
	}
	// The same image under its other names is untouched.
	if got := c("digest", ref); got != digest {
		t.Errorf("%s after deleting the copy: %s, want %s", ref, got, digest)
	}
}

func TestRegctl(t *testing.T) {
	reg := startRegistry(t, t.TempDir(), "")
	crane, regctl, env := harness.Tool(t, "crane"), harness.Tool(t, "regctl"), clientEnv(t)
	dir := t.TempDir()
	layer := writeFile(t, filepath.Join(dir, "layer.tar"), harness.TarWithFile("a.txt", []byte("regctl\n")))
	src := reg.addr + "/e2e/src:1"
	harness.Run(t, env, crane, "--insecure", "append", "-f", layer, "-t", src)

	r := func(args ...string) string { return strings.TrimSpace(harness.Run(t, env, regctl, args...)) }
	r("registry", "set", reg.addr, "--tls", "disabled")
	r("image", "copy", src, reg.addr+"/e2e/dst:2")
	if got := r("tag", "ls", reg.addr+"/e2e/dst"); got != "2" {
		t.Errorf("regctl tag ls = %q", got)
	}
	digest := r("image", "digest", reg.addr+"/e2e/dst:2")
	var m struct {
		Config struct{ Digest string } `json:"config"`
	}
	if err := json.Unmarshal([]byte(r("manifest", "get", reg.addr+"/e2e/dst:2", "--format", "raw-body")), &m); err != nil || m.Config.Digest == "" {
		t.Fatalf("manifest get: %v", err)
	}
	if cfg := r("blob", "get", reg.addr+"/e2e/dst", m.Config.Digest); !strings.Contains(cfg, "rootfs") {
		t.Errorf("blob get of the config: %q", cfg)
	}

	// Referrers: attach an SBOM to the image and find it again.
	sbom := writeFile(t, filepath.Join(dir, "sbom.json"), []byte(`{"spdxVersion":"SPDX-2.3"}`))
	r("artifact", "put", "--artifact-type", "application/spdx+json", "--subject", reg.addr+"/e2e/dst@"+digest, "-f", sbom)
	list := r("artifact", "list", reg.addr+"/e2e/dst@"+digest, "--format", "{{range .Descriptors}}{{.ArtifactType}}{{\"\\n\"}}{{end}}")
	if list != "application/spdx+json" {
		t.Errorf("referrers of the image = %q, want the SBOM", list)
	}
	filtered := r("artifact", "list", reg.addr+"/e2e/dst@"+digest, "--filter-artifact-type", "application/other", "--format", "{{len .Descriptors}}")
	if filtered != "0" {
		t.Errorf("filtered referrers = %q", filtered)
	}
	r("tag", "delete", reg.addr+"/e2e/dst:2")
	if got := r("tag", "ls", reg.addr+"/e2e/dst"); got != "" {
		t.Errorf("tags after delete = %q", got)
	}
}

// TestDocker pushes and pulls an image built FROM scratch with the Docker
// CLI and engine. Without a reachable engine it fails: it is never skipped.
func TestDocker(t *testing.T) {
	if out, err := exec.Command("docker", "info", "--format", "{{.ServerVersion}}").CombinedOutput(); err != nil {
		t.Fatalf("Docker engine not reachable (this test is not skipped): %v\n%s", err, out)
	}
	reg := startRegistry(t, t.TempDir(), "")
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "hello.txt"), []byte("hello from a scratch image\n"))
	writeFile(t, filepath.Join(dir, "Dockerfile"), []byte("FROM scratch\nCOPY hello.txt /hello.txt\n"))
	ref := reg.addr + "/e2e/docker:1"
	t.Cleanup(func() { exec.Command("docker", "rmi", "-f", ref).Run() })
	env := clientEnv(t)
	harness.Run(t, env, "docker", "build", "-q", "-t", ref, dir)
	id := strings.TrimSpace(harness.Run(t, env, "docker", "image", "inspect", "-f", "{{.Id}}", ref))
	push := harness.Run(t, env, "docker", "push", ref)
	if !strings.Contains(push, "digest: sha256:") {
		t.Fatalf("docker push: %s", push)
	}
	harness.Run(t, env, "docker", "rmi", ref)
	harness.Run(t, env, "docker", "pull", ref)
	if got := strings.TrimSpace(harness.Run(t, env, "docker", "image", "inspect", "-f", "{{.Id}}", ref)); got != id {
		t.Errorf("pulled image ID %s, pushed %s", got, id)
	}
}
