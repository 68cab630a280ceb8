package fsm

import (
	"bytes"
	"fmt"
	"io"
	"maps"
	"reflect"
	"testing"

	"github.com/opencontainers/go-digest"

	"github.com/berth-registry/berth/events"
)

// bytesOf is a repository's (or the registry's) logical and deduplicated
// bytes.
type bytesOf struct{ Logical, Bytes int64 }

// storages is the FSM's per-repository numbers and its totals.
func storages(v *View) (map[string]bytesOf, StorageTotals) {
	out := map[string]bytesOf{}
	list, _ := v.RepositoryStorages("", -1)
	for _, s := range list {
		out[s.Repository] = bytesOf{s.Logical, s.Bytes}
	}
	return out, v.StorageTotals()
}

// recountStorage computes the same numbers from scratch, as docs/design.md
// defines them: a digest's size is that of any link of it, else of a
// manifest row of it in the owner, else 0; deduplicated bytes sum the
// distinct digests an owner's manifest rows reach; logical bytes sum, per
// manifest row, its own size and its distinct blobs' sizes.
func recountStorage(v *View) (map[string]bytesOf, StorageTotals) {
	manifests := map[string]map[digest.Digest]int64{} // owner: manifest rows' sizes
	var all []Manifest
	v.EachManifest(func(m Manifest) bool {
		all = append(all, m)
		for _, owner := range []string{m.Repo, regOwner} {
			if manifests[owner] == nil {
				manifests[owner] = map[digest.Digest]int64{}
			}
			manifests[owner][m.Digest] = m.Size
		}
		return true
	})
	size := func(owner string, d digest.Digest) int64 {
		if l, ok := v.FindBlobLink(d); ok {
			return l.Size
		}
		return manifests[owner][d]
	}
	logical := map[string]int64{}
	reached := map[string]map[digest.Digest]bool{}
	for _, m := range all {
		for _, owner := range []string{m.Repo, regOwner} {
			if reached[owner] == nil {
				reached[owner] = map[digest.Digest]bool{}
			}
			distinct := map[digest.Digest]bool{m.Digest: true}
			for _, b := range m.Blobs {
				distinct[b] = true
			}
			for d := range distinct {
				logical[owner] += size(owner, d)
				reached[owner][d] = true
			}
		}
	}
	out := map[string]bytesOf{}
	var totals StorageTotals
	for owner, ds := range reached {
		var dedup int64
		for d := range ds {
			dedup += size(owner, d)
		}
		if owner == regOwner {
			totals = StorageTotals{Logical: logical[owner], Bytes: dedup, Digests: len(ds)}
			continue
		}
		out[owner] = bytesOf{logical[owner], dedup}
	}
	// Repositories that hold only links or tags count zero bytes.
	names, _ := v.Repositories("", -1)
	for _, n := range names {
		if _, ok := out[n]; !ok {
			out[n] = bytesOf{}
		}
	}
	return out, totals
}

// derivedRows dumps the accounting tables, to compare two nodes row for
// row and to see that nothing outlives its repository.
func derivedRows(t *testing.T, f *FSM) string {
	t.Helper()
	v := f.View()
	var b bytes.Buffer
	for _, table := range []string{tRepoUsage, tRepoStorage, tRegUsage, tRegStorage} {
		v.each(table, func(o any) bool {
			fmt.Fprintf(&b, "%s %+v\n", table, o)
			owner := reflect.ValueOf(o).Elem().FieldByName("Owner").String()
			if (table == tRepoUsage || table == tRepoStorage) && !v.RepositoryExists(owner) {
				t.Errorf("%s row %+v outlives its repository", table, o)
			}
			return true
		})
	}
	return b.String()
}

func TestStorageAccounting(t *testing.T) {
	shared := map[string]int64{"config": 10, "layer": 1000}
	other := map[string]int64{"config": 10, "other": 300}
	index := events.ManifestPut{Repo: "a", Digest: dg("idx"), MediaType: "application/vnd.oci.image.index.v1+json", Size: 70,
		Manifests: []digest.Digest{dg("m1"), dg("m2")}}
	cases := []struct {
		name   string
		steps  []events.Payload
		want   map[string]bytesOf
		totals StorageTotals
	}{
		{"one image: manifest, config and layer", image("a", "m1", 100, shared),
			map[string]bytesOf{"a": {1110, 1110}}, StorageTotals{1110, 1110, 3}},
		{"two manifests of a repository share a layer: logical twice, deduplicated once",
			steps(image("a", "m1", 100, shared), image("a", "m2", 200, shared)),
			map[string]bytesOf{"a": {1110 + 1210, 100 + 200 + 1010}}, StorageTotals{2320, 1310, 4}},
		{"repositories sharing a layer each count it; the registry once",
			steps(image("a", "m1", 100, shared), image("b", "m2", 200, shared)),
			map[string]bytesOf{"a": {1110, 1110}, "b": {1210, 1210}}, StorageTotals{2320, 1310, 4}},
		{"the same manifest in two repositories",
			steps(image("a", "m1", 100, shared), image("b/c", "m1", 100, shared)),
			map[string]bytesOf{"a": {1110, 1110}, "b/c": {1110, 1110}}, StorageTotals{2220, 1110, 3}},
		{"an index counts its own bytes; its children count as manifests",
			steps(image("a", "m1", 100, shared), image("a", "m2", 200, map[string]int64{"config": 10, "arm": 500}), []events.Payload{index}),
			map[string]bytesOf{"a": {1110 + 710 + 70, 100 + 200 + 70 + 10 + 1000 + 500}}, StorageTotals{1890, 1880, 6}},
		{"a blob a manifest lists twice counts once for it",
			[]events.Payload{events.BlobLinked{Repo: "a", Digest: dg("layer"), Size: 1000},
				events.ManifestPut{Repo: "a", Digest: dg("m1"), Size: 100, Blobs: []digest.Digest{dg("layer"), dg("layer")}}},
			map[string]bytesOf{"a": {1100, 1100}}, StorageTotals{1100, 1100, 2}},
		{"linked blobs no manifest references count nothing",
			[]events.Payload{events.BlobLinked{Repo: "a", Digest: dg("layer"), Size: 1000}},
			map[string]bytesOf{"a": {}}, StorageTotals{}},
		{"putting the same manifest again changes nothing",
			steps(image("a", "m1", 100, shared), image("a", "m1", 100, shared)),
			map[string]bytesOf{"a": {1110, 1110}}, StorageTotals{1110, 1110, 3}},
		{"deleting a manifest takes away what only it held",
			steps(image("a", "m1", 100, shared), image("a", "m2", 200, other),
				[]events.Payload{events.ManifestDeleted{Repo: "a", Digest: dg("m2")}}),
			map[string]bytesOf{"a": {1110, 1110}}, StorageTotals{1110, 1110, 3}},
		{"deleting a repository: its rows go, shared blobs stay counted elsewhere",
			steps(image("a", "m1", 100, shared), image("b", "m2", 200, shared),
				[]events.Payload{events.RepositoryDeleted{Repo: "a"}}),
			map[string]bytesOf{"b": {1210, 1210}}, StorageTotals{1210, 1210, 3}},
		{"deleting every repository leaves nothing",
			steps(image("a", "m1", 100, shared), image("b", "m2", 200, shared),
				[]events.Payload{events.RepositoryDeleted{Repo: "a"}, events.RepositoryDeleted{Repo: "b"}}),
			map[string]bytesOf{}, StorageTotals{}},
		{"a referenced blob unlinked everywhere counts 0, in logical bytes too",
			steps(image("a", "m1", 100, shared), image("a", "m2", 200, shared),
				[]events.Payload{events.BlobUnlinked{Repo: "a", Digest: dg("layer")}}),
			map[string]bytesOf{"a": {110 + 210, 310}}, StorageTotals{320, 310, 4}},
		{"linked again elsewhere, it counts again",
			steps(image("a", "m1", 100, shared), []events.Payload{
				events.BlobUnlinked{Repo: "a", Digest: dg("layer")},
				events.BlobLinked{Repo: "b", Digest: dg("layer"), Size: 1000},
			}),
			map[string]bytesOf{"a": {1110, 1110}, "b": {}}, StorageTotals{1110, 1110, 3}},
		{"a manifest of one repository listed as an unlinked blob by another counts only where it is a manifest",
			steps(image("a", "m1", 100, shared), []events.Payload{
				events.BlobLinked{Repo: "b", Digest: dg("m1"), Size: 100},
				events.ManifestPut{Repo: "b", Digest: dg("m2"), Size: 50, Blobs: []digest.Digest{dg("m1")}},
				events.BlobUnlinked{Repo: "b", Digest: dg("m1")},
			}),
			map[string]bytesOf{"a": {1110, 1110}, "b": {50, 50}}, StorageTotals{1260, 1160, 4}}, // the registry sizes m1 as a manifest: the corner where its logical bytes exceed the sum
		{"GC's sweep of an untagged manifest and its blob",
			steps(image("a", "m1", 100, shared), image("a", "m2", 200, other), []events.Payload{
				events.TagDeleted{Repo: "a", Tag: "latest"},
				events.GCStarted{Run: "r1", DeleteUntagged: true},
				events.GCMarked{Run: "r1", Blobs: []digest.Digest{dg("other")}, Manifests: []events.ManifestRef{{Repo: "a", Digest: dg("m2")}}},
				events.GCSweepStarted{Run: "r1"},
				events.GCSwept{Run: "r1", Deleted: 2},
			}),
			map[string]bytesOf{"a": {1110, 1110}}, StorageTotals{1110, 1110, 3}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			h := newHarness(t)
			for i, p := range c.steps {
				h.must(p)
				got, gotTotals := storages(h.f.View())
				want, wantTotals := recountStorage(h.f.View())
				if !maps.Equal(got, want) || gotTotals != wantTotals {
					t.Fatalf("after step %d (%T): %v %+v, recounted from the state %v %+v", i, p, got, gotTotals, want, wantTotals)
				}
				derivedRows(t, h.f)
			}
			if got, totals := storages(h.f.View()); !maps.Equal(got, c.want) || totals != c.totals {
				t.Fatalf("accounting = %v %+v, want %v %+v", got, totals, c.want, c.totals)
			}
			// A restored node rebuilds the very same rows.
			r := newHarness(t)
			if err := r.f.Restore(io.NopCloser(bytes.NewReader(h.snapshot()))); err != nil {
				t.Fatal(err)
			}
			if a, b := derivedRows(t, h.f), derivedRows(t, r.f); a != b {
				t.Fatalf("live node's rows:\n%s\nrestored node's rows:\n%s", a, b)
			}
		})
	}
}

// The per-repository numbers beside the counters clusterctl shows, and
// pagination in name order.
func TestRepositoryStoragesPage(t *testing.T) {
	h := newHarness(t)
	h.must(image("b", "m1", 100, map[string]int64{"layer": 1000})...)
	h.must(image("a", "m2", 200, map[string]int64{"layer": 1000})...)
	h.must(events.BlobLinked{Repo: "c", Digest: dg("stray"), Size: 5})
	v := h.f.View()
	page, more := v.RepositoryStorages("", 2)
	want := []RepositoryStorage{
		{Repository: "a", Tags: 1, Manifests: 1, Blobs: 1, Logical: 1200, Bytes: 1200},
		{Repository: "b", Tags: 1, Manifests: 1, Blobs: 1, Logical: 1100, Bytes: 1100},
	}
	if !reflect.DeepEqual(page, want) || !more {
		t.Fatalf("first page %+v (more %v), want %+v and more", page, more, want)
	}
	page, more = v.RepositoryStorages("b", 2)
	if want := []RepositoryStorage{{Repository: "c", Blobs: 1}}; !reflect.DeepEqual(page, want) || more {
		t.Fatalf("second page %+v (more %v), want %+v", page, more, want)
	}
	if s, ok := v.RepositoryStorage("a"); !ok || s != want[0] {
		t.Fatalf("RepositoryStorage(a) = %+v, %v", s, ok)
	}
	if _, ok := v.RepositoryStorage("nope"); ok {
		t.Fatal("a repository that does not exist has accounting")
	}
}

// BenchmarkLinkSharedLayer links a layer that 5000 repositories' manifests
// already reach into one more repository, as every push of an image on a
// popular base does (a mount): the sizes do not change, so Apply should
// not visit the 5000 rows of the layer.
func BenchmarkLinkSharedLayer(b *testing.B) {
	h := newHarness(b)
	for i := range 5000 {
		h.must(image(fmt.Sprintf("r%05d", i), "m", 100, map[string]int64{"base": 1 << 20})...)
	}
	i := 0
	for b.Loop() {
		h.must(events.BlobLinked{Repo: fmt.Sprintf("new%07d", i), Digest: dg("base"), Size: 1 << 20})
		i++
	}
}
