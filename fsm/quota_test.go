package fsm

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"

	"github.com/berth-registry/berth/events"
)

const manifestType = "application/vnd.oci.image.manifest.v1+json"

// nsDoc is a Namespace resource with a storage quota ("" for none).
func nsDoc(name, storage string) events.ResourceApplied {
	spec := `{}`
	if storage != "" {
		spec = fmt.Sprintf(`{"quota":{"storage":%q}}`, storage)
	}
	return events.ResourceApplied{Kind: KindNamespace, Name: name, Document: []byte(fmt.Sprintf(
		`{"apiVersion":"berth.dev/v1","kind":"Namespace","metadata":{"name":%q},"spec":%s}`, name, spec))}
}

// image links blobs (name: size) into repo and puts a manifest of size
// msize over them, as a push does.
func image(repo, manifest string, msize int64, blobs map[string]int64) []events.Payload {
	var out []events.Payload
	var ds []digest.Digest
	for _, b := range slices.Sorted(maps.Keys(blobs)) {
		out = append(out, events.BlobLinked{Repo: repo, Digest: dg(b), Size: blobs[b]})
		ds = append(ds, dg(b))
	}
	return append(out, events.ManifestPut{Repo: repo, Digest: dg(manifest), MediaType: manifestType, Size: msize, Blobs: ds, Tags: []string{"latest"}})
}

func steps(groups ...[]events.Payload) []events.Payload { return slices.Concat(groups...) }

// recount computes every namespace's usage from scratch, as the
// definition says: the distinct digests the manifest rows reach, sized by
// a link (or the manifest row itself).
func recount(v *View) map[string]int64 {
	sizes := map[string]map[digest.Digest]int64{}
	add := func(ns string, d digest.Digest, size int64) {
		if sizes[ns] == nil {
			sizes[ns] = map[digest.Digest]int64{}
		}
		if l, ok := v.FindBlobLink(d); ok {
			size = l.Size
		}
		if _, seen := sizes[ns][d]; !seen || size > 0 {
			sizes[ns][d] = size
		}
	}
	v.EachManifest(func(m Manifest) bool {
		ns := NamespaceOf(m.Repo)
		add(ns, m.Digest, m.Size)
		for _, b := range m.Blobs {
			add(ns, b, 0)
		}
		return true
	})
	out := map[string]int64{}
	for ns, ds := range sizes {
		for _, s := range ds {
			out[ns] += s
		}
		if out[ns] == 0 {
			delete(out, ns)
		}
	}
	return out
}

// usages is the FSM's own numbers, namespaces with no usage left out.
func usages(v *View) map[string]int64 {
	out := map[string]int64{}
	for _, u := range v.NamespaceUsages() {
		if u.Bytes != 0 {
			out[u.Namespace] = u.Bytes
		}
	}
	return out
}

func TestNamespaceUsage(t *testing.T) {
	shared := map[string]int64{"config": 10, "layer": 1000}
	cases := []struct {
		name  string
		steps []events.Payload
		want  map[string]int64
	}{
		{"one image: manifest, config and layer", image("team-a/app", "m1", 100, shared),
			map[string]int64{"team-a": 1110}},
		{"a blob shared by two repositories of a namespace counts once",
			steps(image("team-a/app", "m1", 100, shared), image("team-a/web", "m2", 200, shared)),
			map[string]int64{"team-a": 1310}},
		{"the same manifest in two repositories counts once",
			steps(image("team-a/app", "m1", 100, shared), image("team-a/web", "m1", 100, shared)),
			map[string]int64{"team-a": 1110}},
		{"a blob shared across namespaces counts in each",
			steps(image("team-a/app", "m1", 100, shared), image("team-b/app", "m2", 200, shared)),
			map[string]int64{"team-a": 1110, "team-b": 1210}},
		{"a repository without a slash is its own namespace",
			image("alpine", "m1", 100, shared), map[string]int64{"alpine": 1110}},
		{"linked blobs no manifest references count nothing",
			[]events.Payload{events.BlobLinked{Repo: "team-a/app", Digest: dg("layer"), Size: 1000}}, map[string]int64{}},
		{"an index counts its own bytes; its children count as manifests",
			steps(image("team-a/app", "m1", 100, shared), image("team-a/app", "m2", 200, map[string]int64{"config": 10, "arm": 500}),
				[]events.Payload{events.ManifestPut{Repo: "team-a/app", Digest: dg("idx"), MediaType: "application/vnd.oci.image.index.v1+json", Size: 70,
					Manifests: []digest.Digest{dg("m1"), dg("m2")}}}),
			map[string]int64{"team-a": 100 + 200 + 70 + 10 + 1000 + 500}},
		{"deleting a manifest lowers usage by what only it held",
			steps(image("team-a/app", "m1", 100, shared), image("team-a/app", "m2", 200, map[string]int64{"config": 10, "other": 300}),
				[]events.Payload{events.ManifestDeleted{Repo: "team-a/app", Digest: dg("m2")}}),
			map[string]int64{"team-a": 1110}},
		{"deleting a repository lowers usage, shared blobs stay counted",
			steps(image("team-a/app", "m1", 100, shared), image("team-a/web", "m2", 200, shared),
				[]events.Payload{events.RepositoryDeleted{Repo: "team-a/app"}}),
			map[string]int64{"team-a": 1210}},
		{"deleting everything leaves nothing",
			steps(image("team-a/app", "m1", 100, shared), []events.Payload{events.RepositoryDeleted{Repo: "team-a/app"}}),
			map[string]int64{}},
		{"putting the same manifest again changes nothing",
			steps(image("team-a/app", "m1", 100, shared), image("team-a/app", "m1", 100, shared)),
			map[string]int64{"team-a": 1110}},
		{"a referenced blob unlinked everywhere counts 0",
			steps(image("team-a/app", "m1", 100, shared), []events.Payload{events.BlobUnlinked{Repo: "team-a/app", Digest: dg("layer")}}),
			map[string]int64{"team-a": 110}},
		{"a referenced blob linked again counts its size again",
			steps(image("team-a/app", "m1", 100, shared), []events.Payload{
				events.BlobUnlinked{Repo: "team-a/app", Digest: dg("layer")},
				events.BlobLinked{Repo: "team-b/x", Digest: dg("layer"), Size: 1000},
			}),
			map[string]int64{"team-a": 1110}},
		{"a referenced blob unlinked here but linked elsewhere keeps its size",
			steps(image("team-a/app", "m1", 100, shared), []events.Payload{
				events.BlobLinked{Repo: "team-b/x", Digest: dg("layer"), Size: 1000},
				events.BlobUnlinked{Repo: "team-a/app", Digest: dg("layer")},
			}),
			map[string]int64{"team-a": 1110}},
		{"GC's sweep of an untagged manifest lowers usage",
			steps(image("team-a/app", "m1", 100, shared), image("team-a/app", "m2", 200, map[string]int64{"config": 10, "other": 300}),
				[]events.Payload{
					events.TagDeleted{Repo: "team-a/app", Tag: "latest"},
					events.GCStarted{Run: "r1", DeleteUntagged: true},
					events.GCMarked{Run: "r1", Blobs: []digest.Digest{dg("other")}, Manifests: []events.ManifestRef{{Repo: "team-a/app", Digest: dg("m2")}}},
					events.GCSweepStarted{Run: "r1"},
					events.GCSwept{Run: "r1", Deleted: 2},
				}),
			map[string]int64{"team-a": 1110}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			h := newHarness(t)
			for i, p := range c.steps {
				h.must(p)
				if got, want := usages(h.f.View()), recount(h.f.View()); !maps.Equal(got, want) {
					t.Fatalf("after step %d (%T): usage %v, recounted from the state %v", i, p, got, want)
				}
			}
			if got := usages(h.f.View()); !maps.Equal(got, c.want) {
				t.Fatalf("usage = %v, want %v", got, c.want)
			}
			// A restored node holds the same numbers.
			r := newHarness(t)
			if err := r.f.Restore(io.NopCloser(bytes.NewReader(h.snapshot()))); err != nil {
				t.Fatal(err)
			}
			if got := usages(r.f.View()); !maps.Equal(got, c.want) {
				t.Fatalf("restored usage = %v, want %v", got, c.want)
			}
		})
	}
}

func TestQuotaRefusals(t *testing.T) {
	small := map[string]int64{"config": 10, "layer": 1000} // with a 100-byte manifest: 1110
	cases := []struct {
		name    string
		setup   []events.Payload
		push    []events.Payload // the last is the manifest put under test
		refused string           // substring of the refusal; "" for accepted
	}{
		{"under the quota", []events.Payload{nsDoc("team-a", "2000")}, image("team-a/app", "m1", 100, small), ""},
		{"exactly at the quota", []events.Payload{nsDoc("team-a", "1110")}, image("team-a/app", "m1", 100, small), ""},
		{"one byte over", []events.Payload{nsDoc("team-a", "1109")}, image("team-a/app", "m1", 100, small),
			"namespace team-a would exceed its storage quota (quota 1109 bytes, usage 0 bytes, this push adds 1110 bytes); delete tags and run GC, or raise spec.quota.storage of Namespace team-a"},
		{"a second image over, the shared layer not counted twice",
			steps([]events.Payload{nsDoc("team-a", "1Ki")}, image("team-a/app", "m1", 10, map[string]int64{"layer": 1000})),
			image("team-a/web", "m2", 10, map[string]int64{"layer": 1000, "extra": 5}),
			"(quota 1Ki (1024 bytes), usage 1010 bytes, this push adds 15 bytes)"},
		{"the same image in another repository adds nothing and fits",
			steps([]events.Payload{nsDoc("team-a", "1110")}, image("team-a/app", "m1", 100, small)),
			image("team-a/web", "m1", 100, small), ""},
		{"other namespaces do not count",
			steps([]events.Payload{nsDoc("team-a", "1200")}, image("team-b/app", "m1", 100, small)),
			image("team-a/app", "m2", 100, small), ""},
		{"no Namespace resource: unlimited", nil, image("team-a/app", "m1", 1<<40, small), ""},
		{"a Namespace without quota: unlimited", []events.Payload{nsDoc("team-a", "")}, image("team-a/app", "m1", 1<<40, small), ""},
		{"a quota lowered below usage refuses a push that adds bytes",
			steps(image("team-a/app", "m1", 100, small), []events.Payload{nsDoc("team-a", "500")}),
			image("team-a/app", "m2", 1, map[string]int64{"config": 10}), "usage 1110 bytes, this push adds 1 bytes)"},
		{"a quota lowered below usage accepts a push that adds none (a tag of an existing image)",
			steps(image("team-a/app", "m1", 100, small), []events.Payload{nsDoc("team-a", "500")}),
			image("team-a/web", "m1", 100, small), ""},
		{"a deleted Namespace resource lifts the quota",
			steps([]events.Payload{nsDoc("team-a", "10"), events.ResourceDeleted{Kind: KindNamespace, Name: "team-a"}}),
			image("team-a/app", "m1", 100, small), ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			h := newHarness(t)
			h.must(events.QuotasEnabled{})
			h.must(c.setup...)
			h.must(c.push[:len(c.push)-1]...)
			before := h.snapshot()
			usageBefore := usages(h.f.View())
			err := h.apply(c.push[len(c.push)-1])
			if c.refused == "" {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			var ref *Refusal
			if !errors.As(err, &ref) || ref.Code != CodeQuotaExceeded {
				t.Fatalf("err = %v, want a %s refusal", err, CodeQuotaExceeded)
			}
			if !strings.Contains(ref.Message, c.refused) {
				t.Fatalf("message %q\n lacks %q", ref.Message, c.refused)
			}
			// Atomic: no manifest, no tag, no usage, no GC or outbox row.
			if after := h.snapshot(); !bytes.Equal(snapshotRows(before), snapshotRows(after)) {
				t.Fatalf("a refused push changed the state:\n%s\n---\n%s", before, after)
			}
			if got := usages(h.f.View()); !maps.Equal(got, usageBefore) {
				t.Fatalf("usage after refusal %v, before %v", got, usageBefore)
			}
		})
	}
}

// A restored node decides the next push exactly as the node it came
// from: both refuse, or both accept.
func TestQuotaDecisionsAfterRestore(t *testing.T) {
	h := newHarness(t)
	h.must(events.QuotasEnabled{}, nsDoc("team-a", "2000"))
	h.must(image("team-a/app", "m1", 100, map[string]int64{"config": 10, "layer": 1000})...)
	h.must(events.BlobUnlinked{Repo: "team-a/app", Digest: dg("layer")}) // referenced, now unsized
	h.must(image("team-a/web", "m2", 100, map[string]int64{"config": 10, "big": 800})...)
	r := newHarness(t)
	if err := r.f.Restore(io.NopCloser(bytes.NewReader(h.snapshot()))); err != nil {
		t.Fatal(err)
	}
	r.idx = h.idx
	for _, p := range image("team-a/app", "m3", 50, map[string]int64{"layer": 1000}) {
		e1, e2 := h.apply(p), r.apply(p)
		if (e1 == nil) != (e2 == nil) {
			t.Fatalf("%T: the live node says %v, the restored node %v", p, e1, e2)
		}
	}
	if a, b := usages(h.f.View()), usages(r.f.View()); !maps.Equal(a, b) {
		t.Fatalf("live %v, restored %v", a, b)
	}
	if !bytes.Equal(snapshotRows(h.snapshot()), snapshotRows(r.snapshot())) {
		t.Fatal("the two nodes' states differ")
	}
}

func warningsOf(v *View) []events.QuotaWarning {
	var out []events.QuotaWarning
	for _, r := range v.Pending(0, 1000) {
		out = append(out, r.Warnings...)
	}
	return out
}

func TestQuotaWarningAt85Percent(t *testing.T) {
	type step struct {
		p    []events.Payload
		want []events.QuotaWarning // warnings this step adds
	}
	warn := func(repo string, usage, quota int64) []events.QuotaWarning {
		return []events.QuotaWarning{{Namespace: "team-a", Repo: repo, Usage: usage, Quota: quota}}
	}
	cases := []struct {
		name  string
		steps []step
	}{
		{"once when crossing, not again above, again after falling below", []step{
			{[]events.Payload{nsDoc("team-a", "1000")}, nil},
			{image("team-a/app", "m1", 100, map[string]int64{"l1": 700}), nil},                         // 800: 80%
			{image("team-a/app", "m2", 10, map[string]int64{"l2": 40}), warn("team-a/app", 850, 1000)}, // 85%
			{image("team-a/web", "m3", 10, map[string]int64{"l3": 40}), nil},                           // 90%
			{[]events.Payload{events.ManifestDeleted{Repo: "team-a/app", Digest: dg("m1")}}, nil},      // 100: 10%
			{image("team-a/app", "m4", 100, map[string]int64{"l1": 700}), warn("team-a/app", 900, 1000)},
		}},
		{"lowering the quota warns without a push", []step{
			{image("team-a/app", "m1", 100, map[string]int64{"l1": 700}), nil},
			{[]events.Payload{nsDoc("team-a", "10Ki")}, nil},
			{[]events.Payload{nsDoc("team-a", "900")}, warn("", 800, 900)},
			{[]events.Payload{nsDoc("team-a", "850")}, nil},
		}},
		{"other namespaces' pushes do not warn team-a", []step{
			{[]events.Payload{nsDoc("team-a", "1000")}, nil},
			{image("team-b/app", "m1", 100, map[string]int64{"l1": 900}), nil},
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			h := newHarness(t)
			h.must(events.OutboxCursor{Index: 0}, events.QuotasEnabled{})
			var want []events.QuotaWarning
			for i, s := range c.steps {
				h.must(s.p...)
				want = append(want, s.want...)
				if got := warningsOf(h.f.View()); !slices.Equal(got, want) {
					t.Fatalf("after step %d: warnings %+v, want %+v", i, got, want)
				}
			}
			// The warnings ride in the outbox rows, so they survive a
			// snapshot like the rows do.
			r := newHarness(t)
			if err := r.f.Restore(io.NopCloser(bytes.NewReader(h.snapshot()))); err != nil {
				t.Fatal(err)
			}
			if got := warningsOf(r.f.View()); !slices.Equal(got, want) {
				t.Fatalf("restored warnings %+v, want %+v", got, want)
			}
		})
	}
}

// Until QuotasEnabled is committed (every voter runs a binary that
// enforces quotas), usage is counted but nothing is refused or warned
// about: an older node applying the same log accepts every push.
func TestQuotasNotEnforcedBeforeEnabled(t *testing.T) {
	h := newHarness(t)
	h.must(events.OutboxCursor{Index: 0}, nsDoc("team-a", "1000"))
	h.must(image("team-a/app", "m1", 100, map[string]int64{"l1": 2000})...)
	if got := usages(h.f.View())["team-a"]; got != 2100 {
		t.Fatalf("usage %d before enforcement, want 2100", got)
	}
	if w := warningsOf(h.f.View()); len(w) != 0 || h.f.View().QuotasEnforced() {
		t.Fatalf("warnings %v before enforcement", w)
	}
	h.must(events.QuotasEnabled{}, events.QuotasEnabled{}) // a racing leader's second one is harmless
	if !h.f.View().QuotasEnforced() {
		t.Fatal("QuotasEnabled applied, but quotas are not enforced")
	}
	var ref *Refusal
	if err := h.apply(image("team-a/app", "m2", 1, nil)[0]); !errors.As(err, &ref) || ref.Code != CodeQuotaExceeded {
		t.Fatalf("a push over the quota after QuotasEnabled: %v", err)
	}
	// The switch survives a snapshot.
	r := newHarness(t)
	if err := r.f.Restore(io.NopCloser(bytes.NewReader(h.snapshot()))); err != nil {
		t.Fatal(err)
	}
	if !r.f.View().QuotasEnforced() {
		t.Fatal("restored node does not enforce quotas")
	}
}

// Without the outbox there is nowhere to publish, and nothing is kept.
func TestQuotaWarningNeedsTheOutbox(t *testing.T) {
	h := newHarness(t)
	h.must(events.QuotasEnabled{}, nsDoc("team-a", "100"))
	h.must(image("team-a/app", "m1", 90, nil)...)
	if got := h.f.View().PendingCount(); got != 0 {
		t.Fatalf("outbox off, but %d rows kept", got)
	}
}

func TestWarnLevel(t *testing.T) {
	cases := []struct {
		usage, quota int64
		want         bool
	}{
		{0, 100, false}, {84, 100, false}, {85, 100, true}, {100, 100, true}, {200, 100, true},
		{1, 0, false}, {0, 1, false}, {1, 1, true},
		{1<<62 - 1, 1<<63 - 1, false}, {(1<<63 - 1) / 100 * 85, 1<<63 - 1, false}, {1<<63 - 1, 1<<63 - 1, true},
	}
	for _, c := range cases {
		if got := warnLevel(c.usage, c.quota); got != c.want {
			t.Errorf("warnLevel(%d, %d) = %v, want %v", c.usage, c.quota, got, c.want)
		}
	}
}
