package single

import (
	"io/fs"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/berth-registry/berth/e2e/harness"
)

// blobFiles lists the blob files on disk, by hex digest.
func blobFiles(t *testing.T, dataDir string) []string {
	t.Helper()
	var out []string
	root := filepath.Join(dataDir, "blobs", "sha256")
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() && len(d.Name()) == 64 {
			out = append(out, d.Name())
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(out)
	return out
}

// TestGCWithCraneAndClusterctl: an image whose tag and manifest were
// deleted is garbage once older than gc.uploadmaxage; the dry run lists
// exactly what `gc run --wait` then deletes from disk, and the image that
// is still tagged pulls whole.
func TestGCWithCraneAndClusterctl(t *testing.T) {
	data := t.TempDir()
	reg := startRegistryEnv(t, data, "", []string{"BERTH_GC_UPLOADMAXAGE=1m"})
	crane, env := harness.Tool(t, "crane"), clientEnv(t)
	c := func(args ...string) string {
		return strings.TrimSpace(harness.Run(t, env, crane, append([]string{"--insecure"}, args...)...))
	}
	dir := t.TempDir()
	kept := writeFile(t, filepath.Join(dir, "kept.tar"), harness.TarWithFile("kept.txt", []byte("kept\n")))
	gone := writeFile(t, filepath.Join(dir, "gone.tar"), harness.TarWithFile("gone.txt", []byte("garbage\n")))
	c("append", "-f", kept, "-t", reg.addr+"/e2e/gc:kept")
	c("append", "-f", gone, "-t", reg.addr+"/e2e/gc:gone")
	goneDigest := c("digest", reg.addr+"/e2e/gc:gone")
	c("delete", reg.addr+"/e2e/gc@"+goneDigest)
	before := blobFiles(t, data)

	ctl := harness.Tool(t, "clusterctl")
	cenv := []string{"BERTH_SERVER=http://" + reg.addr, "BERTH_TOKEN="}
	g := func(args ...string) string {
		return harness.Run(t, cenv, ctl, append([]string{"--token-file", filepath.Join(data, "admin.token")}, args...)...)
	}
	if out := g("gc", "run", "--dry-run"); !strings.Contains(out, "0 blobs") {
		t.Errorf("within gc.uploadmaxage nothing is garbage, dry run says:\n%s", out)
	}
	time.Sleep(61 * time.Second)
	dry := g("gc", "run", "--dry-run")
	var listed []string
	for _, l := range strings.Split(dry, "\n") {
		if d, ok := strings.CutPrefix(l, "blob      sha256:"); ok {
			listed = append(listed, strings.TrimSpace(d))
		}
	}
	// The deleted image's manifest, config and layer; the kept image
	// shares nothing with it.
	if len(listed) != 3 {
		t.Fatalf("dry run lists %d blobs, want the deleted image's 3:\n%s", len(listed), dry)
	}
	if after := blobFiles(t, data); strings.Join(after, ",") != strings.Join(before, ",") {
		t.Fatal("the dry run changed the store")
	}
	if out := g("gc", "run", "--wait"); !strings.Contains(out, "3 blobs deleted") {
		t.Errorf("gc run: %s", out)
	}
	after := blobFiles(t, data)
	var removed []string
	for _, b := range before {
		if !contains(after, b) {
			removed = append(removed, b)
		}
	}
	sort.Strings(listed)
	if strings.Join(removed, ",") != strings.Join(listed, ",") {
		t.Errorf("removed from disk %v, dry run listed %v", removed, listed)
	}
	export := harness.Run(t, env, crane, "--insecure", "export", reg.addr+"/e2e/gc:kept", "-")
	if !strings.Contains(export, "kept") {
		t.Error("the kept image does not pull whole after GC")
	}
	if out := g("gc", "status"); !strings.Contains(out, "swept") {
		t.Errorf("gc status:\n%s", out)
	}
}

func contains(xs []string, x string) bool {
	for _, y := range xs {
		if y == x {
			return true
		}
	}
	return false
}
