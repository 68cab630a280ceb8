package single

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/berth-registry/berth/e2e/harness"
)

const diskTestToken = "disk-full-admin-token"

// TestDiskFull runs registryd on a 64 MiB tmpfs, fills it, and checks what
// users see: pushes fail with 507 and the OCI error JSON, not 500; reads
// of what was pushed before go on; the Raft term stays flat (no election
// storm); and once space is freed pushes work again without a restart.
//
// With the default storage.reservedspace the node refuses writes before
// the Raft log is touched; with 0 the log write itself fails with ENOSPC
// and the node must cope with that.
func TestDiskFull(t *testing.T) {
	for _, tc := range []struct {
		name, reserve string
		// logFits: with no reserve, an entry that fits in the log's free
		// pages is still stored; it must then succeed, not fail with 500.
		logFits bool
	}{
		{"reserve", "", false},
		{"no-reserve", "0", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			env := []string{"BERTH_ADMIN_TOKEN=" + diskTestToken}
			if tc.reserve != "" {
				env = append(env, "BERTH_STORAGE_RESERVEDSPACE="+tc.reserve)
			}
			testDiskFull(t, env, tc.logFits)
		})
	}
}

func testDiskFull(t *testing.T, env []string, logFits bool) {
	mnt := mountTmpfs(t, "64m")
	reg := startRegistryEnv(t, filepath.Join(mnt, "data"), "", env)
	base := reg.addr
	ctx, cancel := harness.Ctx(3 * time.Minute)
	defer cancel()

	var before []harness.Image
	for i := range 3 {
		im := harness.NewImage("full/app", fmt.Sprintf("v%d", i))
		if err := im.Push(ctx, base); err != nil {
			t.Fatalf("push before the disk is full: %v", err)
		}
		before = append(before, im)
	}
	// Tagging a manifest that is already stored needs no blob write, only
	// a log entry: that is what shows how the Raft log copes.
	retag := before[0]
	retag.Tag = "retag"

	// Leave 4 MiB free, then push 1 MiB blobs until the disk refuses one,
	// then fill what is left.
	filler := filepath.Join(mnt, "filler")
	fillTo(t, mnt, filler, 4<<20)
	var code int
	var body []byte
	for i := 0; ; i++ {
		if i > 16 {
			t.Fatalf("16 MiB of blobs accepted on a disk with 4 MiB free: %d %s", code, body)
		}
		b := make([]byte, 1<<20)
		rand.Read(b)
		if code, body = postBlob(ctx, t, base, "full/filler", b); code != http.StatusCreated {
			break
		}
	}
	expectDiskFull(t, "blob upload on a full disk", code, body)
	fillUp(t, filler)
	tagged507 := 0
	tagOnFullDisk := func() {
		code, body := putManifest(ctx, t, base, retag)
		if logFits && code == http.StatusCreated {
			return
		}
		expectDiskFull(t, "tagging a stored manifest on a full disk", code, body)
		tagged507++
	}
	tagOnFullDisk()
	late := harness.NewImage("full/app", "late")
	if err := late.Push(ctx, base); err == nil || !strings.Contains(err.Error(), "507") {
		t.Errorf("push of a new image on a full disk: %v, want 507", err)
	}

	// For 10 s: reads still work, writes keep failing with 507, the term
	// stays put.
	term0 := raftTerm(t, base)
	for end := time.Now().Add(10 * time.Second); time.Now().Before(end); {
		for _, im := range before {
			if err := im.Verify(ctx, base); err != nil {
				t.Fatalf("read while the disk is full: %v", err)
			}
		}
		code, _, body, err := harness.HTTPStatus(ctx, "GET", "http://"+base+"/v2/full/app/tags/list", nil, nil)
		if err != nil || code != http.StatusOK || !bytes.Contains(body, []byte(`"v2"`)) {
			t.Fatalf("tags list while the disk is full: %d %s %v", code, body, err)
		}
		tagOnFullDisk()
		time.Sleep(200 * time.Millisecond)
	}
	if tagged507 == 0 {
		t.Errorf("no log write was refused on a full disk")
	}
	if term1 := raftTerm(t, base); term1 > term0+1 {
		t.Errorf("raft term went from %d to %d in 10 s with a full disk: an election storm", term0, term1)
	} else {
		t.Logf("raft term %d -> %d over 10 s with a full disk", term0, term1)
	}

	// Free the space: pushes work again, same process.
	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	harness.WaitFor(t, "a push after space was freed", 30*time.Second, func() error {
		if code, body := putManifest(ctx, t, base, retag); code != http.StatusCreated {
			return fmt.Errorf("%d %s", code, body)
		}
		return nil
	})
	if err := late.Push(ctx, base); err != nil {
		t.Fatalf("push after space was freed: %v", err)
	}
	for _, im := range append(before, retag, late) {
		if err := im.Verify(ctx, base); err != nil {
			t.Errorf("after space was freed: %v", err)
		}
	}
	if reg.p.Exited() {
		t.Fatalf("registryd exited: %v", reg.p.Err)
	}
}

// mountTmpfs mounts a tmpfs of the given size for the test and unmounts it
// after the processes the test starts later have been killed. It fails,
// rather than skips, where mounting is not allowed: CI runs as root.
func mountTmpfs(t *testing.T, size string) string {
	t.Helper()
	dir := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size="+size, "tmpfs", dir).CombinedOutput(); err != nil {
		t.Fatalf("mount -t tmpfs -o size=%s tmpfs %s (the test needs root): %v\n%s", size, dir, err, out)
	}
	t.Cleanup(func() {
		if out, err := exec.Command("umount", dir).CombinedOutput(); err != nil {
			t.Errorf("umount %s: %v\n%s", dir, err, out)
		}
	})
	return dir
}

// fillTo writes path until only about free bytes are left on dir's filesystem.
func fillTo(t *testing.T, dir, path string, free uint64) {
	t.Helper()
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		t.Fatal(err)
	}
	avail := st.Bavail * uint64(st.Bsize)
	if avail <= free {
		t.Fatalf("only %d bytes free before filling", avail)
	}
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.Write(make([]byte, avail-free)); err != nil {
		t.Fatalf("fill %s: %v", path, err)
	}
}

// fillUp appends to path until the filesystem refuses another byte.
func fillUp(t *testing.T, path string) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	chunk := make([]byte, 4096)
	for {
		if _, err := f.Write(chunk); err != nil {
			if !errors.Is(err, syscall.ENOSPC) {
				t.Fatalf("fill %s: %v", path, err)
			}
			return
		}
	}
}

func postBlob(ctx context.Context, t *testing.T, base, repo string, b []byte) (int, []byte) {
	t.Helper()
	code, _, body, err := harness.HTTPStatus(ctx, "POST",
		fmt.Sprintf("http://%s/v2/%s/blobs/uploads/?digest=%s", base, repo, harness.Sha(b)),
		map[string]string{"Content-Type": "application/octet-stream"}, bytes.NewReader(b))
	if err != nil {
		t.Fatalf("blob upload: %v", err)
	}
	return code, body
}

func putManifest(ctx context.Context, t *testing.T, base string, im harness.Image) (int, []byte) {
	t.Helper()
	code, _, body, err := harness.HTTPStatus(ctx, "PUT", fmt.Sprintf("http://%s/v2/%s/manifests/%s", base, im.Repo, im.Tag),
		map[string]string{"Content-Type": "application/vnd.oci.image.manifest.v1+json"}, bytes.NewReader(im.Manifest))
	if err != nil {
		t.Fatalf("manifest put: %v", err)
	}
	return code, body
}

// expectDiskFull checks for 507 with the OCI error JSON saying what to do.
func expectDiskFull(t *testing.T, what string, code int, body []byte) {
	t.Helper()
	e := ociError(t, body)
	if code != http.StatusInsufficientStorage || !strings.Contains(e.Message, "disk is full") {
		t.Errorf("%s: got %d %s, want 507 with an OCI error saying the disk is full", what, code, body)
	}
}

type ociErr struct{ Code, Message string }

// ociError decodes the first error of the spec's error JSON.
func ociError(t *testing.T, body []byte) ociErr {
	t.Helper()
	var v struct{ Errors []ociErr }
	if err := json.Unmarshal(body, &v); err != nil || len(v.Errors) == 0 || v.Errors[0].Code == "" {
		t.Errorf("not the OCI error JSON: %s", body)
		return ociErr{}
	}
	return v.Errors[0]
}

// raftTerm is this single node's Raft term from the admin API.
func raftTerm(t *testing.T, base string) uint64 {
	t.Helper()
	ctx, cancel := harness.Ctx(5 * time.Second)
	defer cancel()
	code, _, body, err := harness.HTTPStatus(ctx, "GET", "http://"+base+"/admin/v1/cluster/status",
		map[string]string{"Authorization": "Bearer " + diskTestToken}, nil)
	if err != nil || code != http.StatusOK {
		t.Fatalf("cluster status: %d %s %v", code, body, err)
	}
	var st struct{ Nodes []struct{ Term uint64 } }
	if err := json.Unmarshal(body, &st); err != nil || len(st.Nodes) != 1 {
		t.Fatalf("cluster status: %s %v", body, err)
	}
	return st.Nodes[0].Term
}
