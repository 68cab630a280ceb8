package single

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/berth-registry/berth/e2e/harness"
)

const quotaNamespace = `apiVersion: berth.dev/v1
kind: Namespace
metadata: {name: quota}
spec:
  quota: {storage: 100Ki}
`

// blobSizes maps each blob file on disk to its size, by "sha256:<hex>".
func blobSizes(t *testing.T, dataDir string) map[string]int64 {
	t.Helper()
	out := map[string]int64{}
	root := filepath.Join(dataDir, "blobs", "sha256")
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || len(d.Name()) != 64 {
			return err
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		out["sha256:"+d.Name()] = fi.Size()
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// bigImage is harness.NewImage with a layer of n random bytes.
func bigImage(repo, tag string, n int) harness.Image {
	layer := make([]byte, n)
	rand.Read(layer)
	config := fmt.Appendf(nil, `{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[%q]}}`, harness.Sha(layer))
	m, _ := json.Marshal(map[string]any{
		"schemaVersion": 2,
		"mediaType":     "application/vnd.oci.image.manifest.v1+json",
		"config":        map[string]any{"mediaType": "application/vnd.oci.image.config.v1+json", "digest": harness.Sha(config), "size": len(config)},
		"layers":        []any{map[string]any{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": harness.Sha(layer), "size": len(layer)}},
	})
	return harness.Image{Repo: repo, Tag: tag, Config: config, Layer: layer, Manifest: m, ManifestDigest: harness.Sha(m)}
}

// TestQuotaWithCrane pushes images of random layers with crane into a
// namespace with a 100Ki quota until one is refused: 403 DENIED with a
// message naming the quota, and nothing of that push counted. The usage
// the admin API reports equals the deduplicated size of what the stored
// manifests reference, each digest's size as the blob store holds it;
// the same image under another repository of the namespace adds nothing
// and is accepted even when full; a delete makes room again; and after
// garbage collection the blob store holds exactly the usage.
func TestQuotaWithCrane(t *testing.T) {
	data := t.TempDir()
	reg := startRegistryEnv(t, data, "", []string{"BERTH_GC_UPLOADMAXAGE=1m"})
	crane, env := harness.Tool(t, "crane"), clientEnv(t)
	ctl := harness.Tool(t, "clusterctl")
	tokenFile := filepath.Join(data, "admin.token")
	cenv := []string{"BERTH_SERVER=http://" + reg.addr, "BERTH_TOKEN="}
	g := func(args ...string) string {
		return harness.Run(t, cenv, ctl, append([]string{"--token-file", tokenFile}, args...)...)
	}
	g("apply", "-f", writeFile(t, filepath.Join(t.TempDir(), "ns.yaml"), []byte(quotaNamespace)))

	c := func(args ...string) (string, error) {
		cmd := exec.Command(crane, append([]string{"--insecure"}, args...)...)
		cmd.Env = append(os.Environ(), env...)
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	dir := t.TempDir()
	var stored []string // references of the images the registry took
	var refusal string
	for i := range 20 {
		layer := make([]byte, 30<<10) // random: gzip cannot shrink it
		rand.Read(layer)
		tar := writeFile(t, filepath.Join(dir, fmt.Sprintf("l%d.tar", i)), harness.TarWithFile("data.bin", layer))
		ref := fmt.Sprintf("%s/quota/app:v%d", reg.addr, i)
		out, err := c("append", "-f", tar, "-t", ref)
		if err != nil {
			refusal = out
			break
		}
		stored = append(stored, ref)
	}
	if len(stored) < 2 || refusal == "" {
		t.Fatalf("%d images stored before a refusal (%q); want a few, then a refusal", len(stored), refusal)
	}
	for _, want := range []string{"DENIED", "namespace quota would exceed its storage quota (quota 100Ki (102400 bytes), usage ", "delete tags and run GC, or raise spec.quota.storage"} {
		if !strings.Contains(refusal, want) {
			t.Errorf("crane's refusal lacks %q:\n%s", want, refusal)
		}
	}

	// The same image in another repository of the namespace stores no new
	// bytes: accepted though the namespace is full.
	if out, err := c("copy", stored[0], reg.addr+"/quota/mirror:v0"); err != nil {
		t.Fatalf("copying a stored image within the full namespace: %v\n%s", err, out)
	}
	// A raw push shows the status and the error JSON.
	err := bigImage("quota/raw", "x", 40<<10).Push(t.Context(), reg.addr)
	if err == nil || !strings.Contains(err.Error(), "manifest put: 403") || !strings.Contains(err.Error(), `"code":"DENIED"`) {
		t.Errorf("raw push into the full namespace: %v", err)
	}

	checkUsage := func(refs []string) int64 {
		t.Helper()
		onDisk := blobSizes(t, data)
		sizes := map[string]int64{}
		for _, ref := range refs {
			out, err := c("manifest", ref)
			if err != nil {
				t.Fatalf("crane manifest %s: %v\n%s", ref, err, out)
			}
			sizes[fmt.Sprintf("sha256:%x", sha256.Sum256([]byte(out)))] = int64(len(out))
			var m struct {
				Config struct {
					Digest string
					Size   int64
				}
				Layers []struct {
					Digest string
					Size   int64
				}
			}
			if err := json.Unmarshal([]byte(out), &m); err != nil {
				t.Fatal(err)
			}
			sizes[m.Config.Digest] = m.Config.Size
			for _, l := range m.Layers {
				sizes[l.Digest] = l.Size
			}
		}
		var want int64
		for d, size := range sizes {
			if onDisk[d] != size {
				t.Errorf("%s: the manifest says %d bytes, the blob store holds %d", d, size, onDisk[d])
			}
			want += size
		}
		var ns struct {
			Status struct{ Usage, Quota int64 }
		}
		if err := json.Unmarshal([]byte(g("get", "namespace", "quota", "-o", "json")), &ns); err != nil {
			t.Fatal(err)
		}
		if ns.Status.Usage != want || ns.Status.Quota != 100<<10 {
			t.Errorf("status usage %d, quota %d; the %d stored digests hold %d bytes, the quota is %d", ns.Status.Usage, ns.Status.Quota, len(sizes), want, 100<<10)
		}
		return want
	}
	full := checkUsage(append(stored, reg.addr+"/quota/mirror:v0"))
	if full > 100<<10 {
		t.Errorf("usage %d is over the quota", full)
	}
	if table, pct := g("get", "namespaces"), fmt.Sprintf("(%d%%)", full*100/(100<<10)); !strings.Contains(table, "USAGE") || !strings.Contains(table, pct) {
		t.Errorf("clusterctl get namespaces, at %d of %d bytes, lacks USAGE or %s:\n%s", full, 100<<10, pct, table)
	}

	// Deleting the last image's manifest frees the bytes only it held.
	last := stored[len(stored)-1]
	digest, err := c("digest", last)
	if err != nil {
		t.Fatal(digest)
	}
	repo := last[:strings.LastIndex(last, ":")]
	if out, err := c("delete", repo+"@"+strings.TrimSpace(digest)); err != nil {
		t.Fatalf("delete: %v\n%s", err, out)
	}
	stored = stored[:len(stored)-1]
	garbageAt := time.Now() // the last write that leaves unreferenced blobs behind
	if after := checkUsage(append(stored, reg.addr+"/quota/mirror:v0")); after >= full {
		t.Errorf("usage %d after a delete, %d before", after, full)
	}
	layer := make([]byte, 30<<10)
	rand.Read(layer)
	tar := writeFile(t, filepath.Join(dir, "again.tar"), harness.TarWithFile("data.bin", layer))
	if out, err := c("append", "-f", tar, "-t", reg.addr+"/quota/app:again"); err != nil {
		t.Fatalf("a push after the delete made room: %v\n%s", err, out)
	}
	usage := checkUsage(append(stored, reg.addr+"/quota/mirror:v0", reg.addr+"/quota/app:again"))

	// The store still holds the deleted image's layer and the refused
	// pushes' blobs until GC: once they are older than gc.uploadmaxage,
	// a run removes them, and every byte on disk is counted usage.
	time.Sleep(time.Until(garbageAt.Add(62 * time.Second)))
	g("gc", "run", "--wait")
	var onDisk int64
	for _, size := range blobSizes(t, data) {
		onDisk += size
	}
	if onDisk != usage {
		t.Errorf("after GC the blob store holds %d bytes, the namespace's usage is %d", onDisk, usage)
		for d, size := range blobSizes(t, data) {
			t.Logf("on disk: %s %d", d, size)
		}
		t.Log(g("gc", "status"))
	}
}
