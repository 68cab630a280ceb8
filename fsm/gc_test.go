package fsm

import (
	"bytes"
	"errors"
	"io"
	"slices"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/berth-registry/berth/events"
)

// gcSeed: repo "a" holds an untagged manifest "m" over "cfg" and "lay",
// and a stray layer "x"; repo "b" links "x" too.
func gcSeed(h *harness) {
	h.must(
		events.BlobLinked{Repo: "a", Digest: dg("cfg"), Size: 1},
		events.BlobLinked{Repo: "a", Digest: dg("lay"), Size: 2},
		events.BlobLinked{Repo: "a", Digest: dg("x"), Size: 3},
		events.BlobLinked{Repo: "b", Digest: dg("x"), Size: 3},
		events.ManifestPut{Repo: "a", Digest: dg("m"), MediaType: "application/vnd.oci.image.manifest.v1+json", Size: 9,
			Blobs: []digest.Digest{dg("cfg"), dg("lay")}},
	)
}

func candidates(f *FSM) []digest.Digest {
	ds, _ := f.View().GCBlobCandidates()
	return ds
}

func sorted(ds ...digest.Digest) []digest.Digest {
	slices.Sort(ds)
	return ds
}

// TestGCReferencesTakeCandidatesOut: whatever references a candidate
// between GCStarted and GCSweepStarted keeps it (and what it reaches),
// also when the reference came before the candidate's GCMarked chunk.
func TestGCReferencesTakeCandidatesOut(t *testing.T) {
	all := []digest.Digest{dg("cfg"), dg("lay"), dg("x"), dg("m")}
	allM := []events.ManifestRef{{Repo: "a", Digest: dg("m")}}
	for _, tc := range []struct {
		name   string
		before []events.Payload // after GCStarted, before GCMarked
		after  []events.Payload // after GCMarked, before GCSweepStarted
		want   []digest.Digest  // candidates left at sweep start
	}{
		{"nothing references", nil, nil, sorted(all...)},
		{"link in another repo", nil, []events.Payload{events.BlobLinked{Repo: "c", Digest: dg("x"), Size: 3}}, sorted(dg("cfg"), dg("lay"), dg("m"))},
		{"link before the chunk", []events.Payload{events.BlobLinked{Repo: "a", Digest: dg("x"), Size: 3}}, nil, sorted(dg("cfg"), dg("lay"), dg("m"))},
		{"tag keeps manifest and layers", nil, []events.Payload{events.TagSet{Repo: "a", Tag: "v1", Digest: dg("m")}}, []digest.Digest{dg("x")}},
		{"tag before the chunk", []events.Payload{events.TagSet{Repo: "a", Tag: "v1", Digest: dg("m")}}, nil, []digest.Digest{dg("x")}},
		{"index over the manifest", nil, []events.Payload{events.ManifestPut{Repo: "a", Digest: dg("idx"), MediaType: "application/vnd.oci.image.index.v1+json", Size: 5,
			Manifests: []digest.Digest{dg("m")}, Tags: []string{"multi"}}}, []digest.Digest{dg("x")}},
		{"manifest put of a layer", nil, []events.Payload{events.ManifestPut{Repo: "a", Digest: dg("m2"), MediaType: "application/vnd.oci.image.manifest.v1+json", Size: 5,
			Blobs: []digest.Digest{dg("lay")}}}, sorted(dg("cfg"), dg("x"), dg("m"))},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t)
			gcSeed(h)
			h.must(events.GCStarted{Run: "r", DeleteUntagged: true})
			h.must(tc.before...)
			h.must(events.GCMarked{Run: "r", Blobs: all, Manifests: allM})
			h.must(tc.after...)
			h.must(events.GCSweepStarted{Run: "r"})
			if got := candidates(h.f); !slices.Equal(got, tc.want) {
				t.Errorf("candidates at sweep start = %v, want %v", got, tc.want)
			}
			v := h.f.View()
			for _, d := range all {
				gone := slices.Contains(tc.want, d)
				_, linked := v.FindBlobLink(d)
				if d != dg("m") && linked == gone {
					t.Errorf("%s: linked = %v after sweep start, want %v", d, linked, !gone)
				}
			}
			if _, ok := v.Manifest("a", dg("m")); ok == slices.Contains(tc.want, dg("m")) {
				t.Errorf("manifest a@m present = %v after sweep start", ok)
			}
		})
	}
}

// TestGCSweepRefusesFrozenDigests: from GCSweepStarted a link or manifest
// put of a candidate is refused; after GCSwept a link is refused unless its
// bytes were written after the sweep ended (Since).
func TestGCSweepRefusesFrozenDigests(t *testing.T) {
	h := newHarness(t)
	gcSeed(h)
	h.must(events.GCStarted{Run: "r"}, events.GCMarked{Run: "r", Blobs: []digest.Digest{dg("x")}}, events.GCSweepStarted{Run: "r"})
	var ref *Refusal
	if err := h.apply(events.BlobLinked{Repo: "a", Digest: dg("x"), Size: 3}); !errors.As(err, &ref) || ref.Code != CodeBlobSweeping {
		t.Fatalf("link during sweep: %v, want %s", err, CodeBlobSweeping)
	}
	if err := h.apply(events.ManifestPut{Repo: "a", Digest: dg("x"), MediaType: "application/vnd.oci.image.manifest.v1+json", Size: 3}); !errors.As(err, &ref) || ref.Code != CodeBlobSweeping {
		t.Fatalf("manifest put of a swept digest: %v, want %s", err, CodeBlobSweeping)
	}
	h.must(events.GCSwept{Run: "r", Deleted: 1, Bytes: 3})
	sweptAt := h.idx
	if err := h.apply(events.BlobLinked{Repo: "a", Digest: dg("x"), Size: 3, Since: sweptAt - 1}); !errors.As(err, &ref) || ref.Code != CodeBlobSweeping {
		t.Fatalf("link of bytes written before the sweep ended: %v, want %s", err, CodeBlobSweeping)
	}
	h.must(events.BlobLinked{Repo: "a", Digest: dg("x"), Size: 3, Since: sweptAt})
	hist := h.f.View().GCHistory()
	if len(hist) != 1 || hist[0].Outcome != "swept" || hist[0].Deleted != 1 || hist[0].Bytes != 3 || hist[0].Candidates != 1 {
		t.Errorf("history = %+v", hist)
	}
	if _, open := h.f.View().GCRun(); open {
		t.Error("run still open after GCSwept")
	}
}

func TestGCRunLifecycleRefusals(t *testing.T) {
	h := newHarness(t)
	for _, p := range []events.Payload{
		events.GCMarked{Run: "r"}, events.GCSweepStarted{Run: "r"}, events.GCSwept{Run: "r"}, events.GCCancelled{Run: "r"},
	} {
		if err := h.apply(p); err == nil {
			t.Errorf("%T without an open run was accepted", p)
		}
	}
	h.must(events.GCStarted{Run: "r"})
	if err := h.apply(events.GCStarted{Run: "s"}); err == nil {
		t.Error("a second run opened while one is open")
	}
	if err := h.apply(events.GCSwept{Run: "r"}); err == nil {
		t.Error("GCSwept before the sweep started was accepted")
	}
	big := make([]digest.Digest, events.MaxGCChunk+1)
	for i := range big {
		big[i] = dg(string(rune(i)))
	}
	if err := h.apply(events.GCMarked{Run: "r", Blobs: big}); err == nil {
		t.Error("an oversized GCMarked was accepted")
	}
	h.must(events.GCCancelled{Run: "r", Reason: "test"}, events.GCStarted{Run: "s"})
}

// TestGCSnapshotKeepsTheRun: every phase of a run survives snapshot and
// restore byte for byte, and CheckSnapshot refuses a candidate without a
// run.
func TestGCSnapshotKeepsTheRun(t *testing.T) {
	h := newHarness(t)
	gcSeed(h)
	steps := []events.Payload{
		events.BlobUnlinked{Repo: "b", Digest: dg("x")}, // an orphan row
		events.GCStarted{Run: "r", DeleteUntagged: true, GraceSeconds: 5},
		events.BlobLinked{Repo: "a", Digest: dg("cfg"), Size: 1},
		events.GCMarked{Run: "r", Blobs: []digest.Digest{dg("x"), dg("m")}, Manifests: []events.ManifestRef{{Repo: "a", Digest: dg("m")}}},
		events.GCSweepStarted{Run: "r"},
		events.GCSwept{Run: "r", Deleted: 2, Bytes: 12},
	}
	for _, p := range steps {
		h.must(p)
		snap := h.snapshot()
		r := newHarness(t)
		if err := r.f.Restore(io.NopCloser(bytes.NewReader(snap))); err != nil {
			t.Fatalf("after %T: restore: %v", p, err)
		}
		if again := r.snapshot(); !bytes.Equal(snap, again) {
			t.Errorf("after %T: restored state snapshots differently", p)
		}
		if _, err := CheckSnapshot(bytes.NewReader(snap)); err != nil {
			t.Errorf("after %T: CheckSnapshot: %v", p, err)
		}
	}
	orphans := 0
	h.f.View().EachGCOrphan(func(digest.Digest, int64, time.Time) bool { orphans++; return true })
	if orphans != 0 {
		t.Errorf("%d orphan rows left after the sweep deleted them", orphans)
	}
	bad := newHarness(t)
	gcSeed(bad)
	bad.must(events.GCStarted{Run: "r"}, events.GCMarked{Run: "r", Blobs: []digest.Digest{dg("x")}})
	snap := bad.snapshot()
	expectRefused(t, reseal(dropLine(t, snap, `"t":"gcrun"`)), "without an open run")
}
