package single

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/berth-registry/berth/e2e/harness"
)

// repoAccounting is one row of `clusterctl get repositories -o json`.
type repoAccounting struct {
	Name         string
	Tags         int
	Manifests    int
	Blobs        int
	Bytes        int64
	LogicalBytes int64
}

// TestStorageAccountingWithCrane pushes with crane images that share a
// base layer, within a repository and across two, and checks what
// clusterctl get repositories and /metrics report against the files the
// blob store holds: per repository, each distinct digest its manifests
// reach once (SIZE) and each manifest with its config and layers
// (LOGICAL); for the registry, the sum of every blob file on disk. A
// manifest delete takes away what only it reached, though its bytes stay
// on disk until GC.
func TestStorageAccountingWithCrane(t *testing.T) {
	data := t.TempDir()
	reg := startRegistry(t, data, "")
	crane, env := harness.Tool(t, "crane"), clientEnv(t)
	c := func(args ...string) string {
		return harness.Run(t, env, crane, append([]string{"--insecure"}, args...)...)
	}
	ctl := harness.Tool(t, "clusterctl")
	cenv := []string{"BERTH_SERVER=http://" + reg.addr, "BERTH_TOKEN="}
	g := func(args ...string) string {
		return harness.Run(t, cenv, ctl, append([]string{"--token-file", filepath.Join(data, "admin.token")}, args...)...)
	}
	dir := t.TempDir()
	tarOf := func(name string, size int) string {
		b := make([]byte, size)
		rand.Read(b) // random: gzip cannot shrink it
		return writeFile(t, filepath.Join(dir, name+".tar"), harness.TarWithFile(name+".bin", b))
	}
	a, b := reg.addr+"/acct/a", reg.addr+"/acct/b"
	c("append", "-f", tarOf("base", 60<<10), "-t", a+":base")
	c("append", "-b", a+":base", "-f", tarOf("app", 20<<10), "-t", a+":app") // base + app
	c("copy", a+":app", b+":app")                                            // the same manifest
	c("append", "-b", a+":base", "-f", tarOf("web", 10<<10), "-t", b+":web") // base + web

	// reach reads the manifests of refs and returns, from the sizes of the
	// files in the store, each digest's size and the logical bytes.
	onDisk := blobSizes(t, data)
	reach := func(refs ...string) (map[string]int64, int64) {
		t.Helper()
		sizes := map[string]int64{}
		var logical int64
		for _, ref := range refs {
			raw := c("manifest", ref)
			var m struct {
				Config struct{ Digest string }
				Layers []struct{ Digest string }
			}
			if err := json.Unmarshal([]byte(raw), &m); err != nil {
				t.Fatalf("manifest of %s: %v", ref, err)
			}
			digests := map[string]bool{fmt.Sprintf("sha256:%x", sha256.Sum256([]byte(raw))): true, m.Config.Digest: true}
			for _, l := range m.Layers {
				digests[l.Digest] = true
			}
			for d := range digests {
				size, ok := onDisk[d]
				if !ok {
					t.Fatalf("%s reaches %s, which is not in the blob store", ref, d)
				}
				sizes[d] = size
				logical += size
			}
		}
		return sizes, logical
	}
	sum := func(sizes map[string]int64) (n int64) {
		for _, s := range sizes {
			n += s
		}
		return n
	}
	list := func() (map[string]repoAccounting, struct{ Bytes, LogicalBytes int64 }) {
		t.Helper()
		var doc struct {
			Repositories []repoAccounting
			Totals       struct{ Bytes, LogicalBytes int64 }
		}
		if err := json.Unmarshal([]byte(g("get", "repositories", "-o", "json")), &doc); err != nil {
			t.Fatal(err)
		}
		out := map[string]repoAccounting{}
		for _, r := range doc.Repositories {
			out[r.Name] = r
		}
		return out, doc.Totals
	}
	check := func(when string, repos map[string][]string) {
		t.Helper()
		got, totals := list()
		all := map[string]int64{}
		var logical int64
		for name, refs := range repos {
			sizes, l := reach(refs...)
			if r := got[name]; r.Bytes != sum(sizes) || r.LogicalBytes != l || r.Tags != len(refs) || r.Manifests != len(refs) {
				t.Errorf("%s: %s is %+v; its %d tagged manifests reach %d bytes, %d logical", when, name, r, len(refs), sum(sizes), l)
			}
			for d, s := range sizes {
				all[d] = s
			}
			logical += l
		}
		if totals.Bytes != sum(all) || totals.LogicalBytes != logical {
			t.Errorf("%s: totals %+v, want %d bytes (%d digests reached), %d logical", when, totals, sum(all), len(all), logical)
		}
	}

	imagesA, imagesB := []string{a + ":base", a + ":app"}, []string{b + ":app", b + ":web"}
	check("after the pushes", map[string][]string{"acct/a": imagesA, "acct/b": imagesB})
	// Every blob in the store is reached by some manifest: the registry's
	// deduplicated bytes are the store's.
	if _, totals := list(); totals.Bytes != sum(onDisk) {
		t.Errorf("the registry counts %d bytes; the blob store holds %d in %d files", totals.Bytes, sum(onDisk), len(onDisk))
	}
	// The shared base layer counts once in SIZE, once per manifest in
	// LOGICAL: acct/a's logical bytes exceed its size by at least it.
	if repos, _ := list(); repos["acct/a"].LogicalBytes-repos["acct/a"].Bytes < 60<<10 {
		t.Errorf("acct/a: %+v; the base layer is counted once in logical bytes", repos["acct/a"])
	}

	wide := g("get", "repos", "-o", "wide")
	t.Logf("clusterctl get repos -o wide:\n%s", wide)
	for _, want := range []string{"NAME", "SIZE", "LOGICAL", "BLOBS", "acct/a", "acct/b", "TOTAL (2 repositories)", "Ki"} {
		if !strings.Contains(wide, want) {
			t.Errorf("clusterctl get repos -o wide lacks %q:\n%s", want, wide)
		}
	}

	token, err := os.ReadFile(filepath.Join(data, "admin.token"))
	if err != nil {
		t.Fatal(err)
	}
	m := scrape(t, "http://"+reg.addr+"/metrics", map[string]string{"Authorization": "Bearer " + strings.TrimSpace(string(token))})
	if _, totals := list(); m["berth_storage_deduplicated_bytes"] != float64(totals.Bytes) || m["berth_storage_logical_bytes"] != float64(totals.LogicalBytes) {
		t.Errorf("metrics say %v deduplicated, %v logical; clusterctl %+v", m["berth_storage_deduplicated_bytes"], m["berth_storage_logical_bytes"], totals)
	}

	// Deleting b:web's manifest: its own layer, config and manifest leave
	// acct/b and the totals, the shared base stays.
	c("delete", b+"@"+strings.TrimSpace(c("digest", b+":web")))
	check("after deleting acct/b:web", map[string][]string{"acct/a": imagesA, "acct/b": imagesB[:1]})
	if _, totals := list(); sum(onDisk)-totals.Bytes < 10<<10 {
		t.Errorf("after the delete the registry counts %d bytes of the %d on disk; the deleted image's layer alone held 10Ki", totals.Bytes, sum(onDisk))
	}
}
