package single

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/berth-registry/berth/e2e/harness"
)

// A backup that is truncated, has a flipped bit or is not a backup at all
// is refused by `clusterctl snapshot restore` with a clear error, even with
// --force, and the node keeps serving its state; it also still starts,
// since nothing bad reached Raft's snapshot store. A good backup is
// refused over existing state without --force and restores with it.
func TestSnapshotRestoreRefusesBadFiles(t *testing.T) {
	data := t.TempDir()
	reg := startRegistry(t, data, "")
	ctl := harness.Tool(t, "clusterctl")
	env := []string{"BERTH_SERVER=http://" + reg.addr, "BERTH_TOKEN="}
	tokenFile := filepath.Join(data, "admin.token")
	c := func(args ...string) string {
		return harness.Run(t, env, ctl, append([]string{"--token-file", tokenFile}, args...)...)
	}
	fail := func(args ...string) string {
		t.Helper()
		cmd := exec.Command(ctl, append([]string{"--token-file", tokenFile}, args...)...)
		cmd.Env = append(os.Environ(), env...)
		out, err := cmd.CombinedOutput()
		if err == nil {
			t.Errorf("clusterctl %v succeeded: %s", args, out)
		}
		return string(out)
	}

	ctx, cancel := harness.Ctx(2 * time.Minute)
	defer cancel()
	im := harness.NewImage("backup/app", "v1")
	if err := im.Push(ctx, reg.addr); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	c("apply", "-f", writeFile(t, filepath.Join(dir, "regs.yaml"), []byte(registries)))
	good := filepath.Join(dir, "good.snap")
	c("snapshot", "save", good)
	b, err := os.ReadFile(good)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.SplitAfter(string(b), "\n")
	if len(lines) < 6 {
		t.Fatalf("backup has %d lines:\n%s", len(lines), b)
	}
	flipped := []byte(string(b))
	i := bytes.Index(flipped, []byte(`"Linked":"2026`))
	if i < 0 {
		t.Fatalf("no blob row in the backup:\n%s", b)
	}
	flipped[i+len(`"Linked":"202`)] ^= 1 // the year's last digit: still valid JSON and a valid time

	bad := []struct {
		name string
		body []byte
		want string
	}{
		{"truncated at a row boundary", []byte(strings.Join(lines[:len(lines)-3], "")), "truncated"},
		{"truncated mid-line", b[:len(b)/2], "truncated"},
		{"backup header only", []byte(lines[0]), "nothing was restored"},
		{"bit-flipped", flipped, "checksum mismatch"},
		{"foreign", harness.TarWithFile("etc/passwd", []byte("root:x:0:0::/root:/bin/sh\n")), "not a Berth snapshot file"},
	}
	for _, tt := range bad {
		file := writeFile(t, filepath.Join(dir, strings.ReplaceAll(tt.name, " ", "-")), tt.body)
		out := fail("snapshot", "restore", "--force", file)
		if !strings.Contains(out, tt.want) || !strings.Contains(out, "restore "+file) {
			t.Errorf("%s: error does not say %q:\n%s", tt.name, tt.want, out)
		}
		if err := harness.GetOK("http://" + reg.addr + "/readyz"); err != nil {
			t.Fatalf("%s: node stopped serving: %v\n%s", tt.name, err, harness.Tail(reg.p.Out.String(), 4000))
		}
		if err := im.Verify(ctx, reg.addr); err != nil {
			t.Errorf("%s: state lost after a refused restore: %v", tt.name, err)
		}
	}

	out := fail("snapshot", "restore", good)
	if !strings.Contains(out, "already holds") || !strings.Contains(out, "--force") {
		t.Errorf("restore over existing state without --force:\n%s", out)
	}
	// A later write, which the forced restore of the older backup undoes.
	later := harness.NewImage("backup/later", "v1")
	if err := later.Push(ctx, reg.addr); err != nil {
		t.Fatal(err)
	}
	if out := c("snapshot", "restore", "--force", good); !strings.Contains(out, "restored "+good) {
		t.Errorf("forced restore: %s", out)
	}
	check := func(when string) {
		t.Helper()
		if err := im.Verify(ctx, reg.addr); err != nil {
			t.Errorf("%s: image from the backup: %v", when, err)
		}
		if err := later.Verify(ctx, reg.addr); err == nil {
			t.Errorf("%s: an image pushed after the backup survived its restore", when)
		}
		if out := c("get", "registries"); !strings.Contains(out, "dockerhub") || !strings.Contains(out, "local-zot") {
			t.Errorf("%s: resources from the backup:\n%s", when, out)
		}
	}
	check("after restore")

	// Nothing bad reached Raft's snapshot store: the node starts again.
	reg.p.Stop(t)
	reg = startRegistry(t, data, reg.addr)
	check("after restart")
}
