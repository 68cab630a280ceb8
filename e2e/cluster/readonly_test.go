package cluster

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/berth-registry/berth/e2e/harness"
)

// TestReadOnlyMode: `clusterctl readonly on` through one node makes every
// node refuse a crane push with the spec's DENIED and a message saying
// who set it, when, why and how to lift it, while pulls go on; `readonly
// off` through another node lets pushes in again on every node.
func TestReadOnlyMode(t *testing.T) {
	c := newCluster(t, 3)
	crane := harness.Tool(t, "crane")
	home := t.TempDir()
	env := c.clientEnv(home)
	layer := filepath.Join(home, "layer.tar")
	if err := os.WriteFile(layer, harness.TarWithFile("hello.txt", []byte("pushed before read-only\n")), 0o644); err != nil {
		t.Fatal(err)
	}
	ref := c.lb + "/ro/app:1"
	harness.Run(t, env, crane, "append", "-f", layer, "-t", ref)
	digest := strings.TrimSpace(harness.Run(t, env, crane, "digest", ref))

	on := c.ctl(t, c.nodes[1].api, "readonly", "on", "--reason", "e2e maintenance window")
	if !strings.HasPrefix(on, "read-only: set by admin at ") || !strings.Contains(on, "e2e maintenance window") {
		t.Fatalf("readonly on printed %q", on)
	}
	// A new layer each time, so crane has to upload.
	other := filepath.Join(home, "other.tar")
	if err := os.WriteFile(other, harness.TarWithFile("new.txt", []byte("pushed while read-only\n")), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, nd := range c.nodes {
		out, err := craneFails(env, crane, "append", "-f", other, "-t", nd.api+"/ro/app:2")
		if err == nil {
			t.Errorf("push to %s succeeded while read-only:\n%s", nd.id, out)
			continue
		}
		t.Logf("crane push to %s while read-only: %s", nd.id, harness.Tail(strings.TrimSpace(out), 300))
		for _, want := range []string{"DENIED", "registry is in read-only mode (set by admin at ", ": e2e maintenance window); clusterctl readonly off lifts it"} {
			if !strings.Contains(out, want) {
				t.Errorf("crane push to %s: output lacks %q:\n%s", nd.id, want, out)
			}
		}
		if out, err := craneFails(env, crane, "delete", nd.api+"/ro/app@"+digest); err == nil || !strings.Contains(out, "read-only mode") {
			t.Errorf("crane delete on %s while read-only: %v\n%s", nd.id, err, out)
		}
		// Pulls go on: the manifest and every blob.
		if got := strings.TrimSpace(harness.Run(t, env, crane, "digest", nd.api+"/ro/app:1")); got != digest {
			t.Errorf("%s serves digest %s while read-only, want %s", nd.id, got, digest)
		}
		harness.Run(t, env, crane, "pull", nd.api+"/ro/app:1", filepath.Join(home, nd.id+".tar"))
	}
	st := c.ctl(t, c.nodes[0].api, "status")
	if !strings.Contains(st, "Mode:   read-only: set by admin") || strings.Count(st, "(read-only)") != 3 {
		t.Errorf("clusterctl status while read-only:\n%s", st)
	}
	if out := c.ctl(t, c.nodes[2].api, "readonly", "status"); out != on {
		t.Errorf("readonly status on another node: %q, want %q", out, on)
	}

	if off := c.ctl(t, c.nodes[2].api, "readonly", "off"); !strings.HasPrefix(off, "read-write: lifted by admin at ") {
		t.Fatalf("readonly off printed %q", off)
	}
	// Right after the lift is acknowledged, every node takes a push.
	for _, nd := range c.nodes {
		r := nd.api + "/ro/after:" + nd.id
		harness.Run(t, env, crane, "append", "-f", other, "-t", r)
		for _, o := range c.nodes {
			harness.Run(t, env, crane, "digest", o.api+"/ro/after:"+nd.id)
		}
	}
	if st := c.ctl(t, c.nodes[0].api, "status"); !strings.Contains(st, "Mode:   read-write: lifted by admin") || strings.Contains(st, "(read-only)") {
		t.Errorf("clusterctl status after off:\n%s", st)
	}
}

// craneFails runs crane expecting it to fail, and returns everything it
// printed (the error is on stderr).
func craneFails(env []string, crane string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, crane, args...)
	cmd.Env = append(os.Environ(), env...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	return out.String(), err
}
