package gc

import (
	"io"
	"log/slog"
	"slices"
	"testing"
	"time"

	"github.com/hashicorp/raft"
	"github.com/opencontainers/go-digest"

	"github.com/berth-registry/berth/events"
	"github.com/berth-registry/berth/fsm"
)

var t0 = time.Date(2026, 3, 4, 5, 0, 0, 0, time.UTC)

func dg(s string) digest.Digest { return digest.FromString(s) }

const (
	img = "application/vnd.oci.image.manifest.v1+json"
	ix  = "application/vnd.oci.image.index.v1+json"
)

// state applies events to a fresh FSM, the i-th at t0 + i minutes.
type state struct {
	t   testing.TB
	f   *fsm.FSM
	idx uint64
}

func newState(t testing.TB) *state {
	return &state{t: t, f: fsm.New(slog.New(slog.NewTextHandler(io.Discard, nil)))}
}

func (s *state) at(when time.Time, ps ...events.Payload) {
	s.t.Helper()
	for _, p := range ps {
		b, err := events.Encode(events.Event{Time: when, Payload: p})
		if err != nil {
			s.t.Fatal(err)
		}
		s.idx++
		if res := s.f.Apply(&raft.Log{Index: s.idx, Type: raft.LogCommand, Data: b}); res != nil {
			s.t.Fatalf("%T: %v", p, res)
		}
	}
}

func link(repo, d string, size int64) events.BlobLinked {
	return events.BlobLinked{Repo: repo, Digest: dg(d), Size: size}
}

// registry: "app" has a tagged image (cfg, l1) with a signature, a
// multi-arch index "idx" (tagged) over two children, an old untagged image
// (cfg, l2) and an old stray layer; "other" shares l1 and l2 and has a
// young stray layer.
func registry(t testing.TB) *state {
	s := newState(t)
	old := t0
	s.at(old,
		link("app", "cfg", 1), link("app", "l1", 10), link("app", "l2", 20), link("app", "ca", 30), link("app", "cb", 40),
		link("app", "stray", 50), link("other", "l1", 10), link("other", "l2", 20),
		events.ManifestPut{Repo: "app", Digest: dg("img"), MediaType: img, Size: 100, Blobs: []digest.Digest{dg("cfg"), dg("l1")}, Tags: []string{"v1"}},
		events.ManifestPut{Repo: "app", Digest: dg("sig"), MediaType: img, Size: 101, Subject: dg("img"), Blobs: []digest.Digest{dg("cfg")}},
		events.ManifestPut{Repo: "app", Digest: dg("arm"), MediaType: img, Size: 102, Blobs: []digest.Digest{dg("cfg"), dg("ca")}},
		events.ManifestPut{Repo: "app", Digest: dg("amd"), MediaType: img, Size: 103, Blobs: []digest.Digest{dg("cfg"), dg("cb")}},
		events.ManifestPut{Repo: "app", Digest: dg("idx"), MediaType: ix, Size: 104, Manifests: []digest.Digest{dg("arm"), dg("amd")}, Tags: []string{"multi"}},
		events.ManifestPut{Repo: "app", Digest: dg("untagged"), MediaType: img, Size: 105, Blobs: []digest.Digest{dg("cfg"), dg("l2")}},
	)
	s.at(t0.Add(150*time.Minute), link("other", "young", 60))
	return s
}

func TestComputeMark(t *testing.T) {
	now := t0.Add(3 * time.Hour)
	for _, tc := range []struct {
		name      string
		opt       Options
		blobs     []string
		manifests []string // in app
	}{
		{"keep untagged", Options{Grace: time.Hour}, []string{"stray"}, nil},
		// l2 is shared with "other", but no repository keeps it: its
		// only manifest is untagged and old, and its links are old.
		{"delete untagged", Options{DeleteUntagged: true, Grace: time.Hour}, []string{"l2", "stray", "untagged"}, []string{"untagged"}},
		// Within the grace period nothing unreferenced is garbage.
		{"all young", Options{DeleteUntagged: true, Grace: 4 * time.Hour}, nil, nil},
		// The young stray in "other" is kept; with a grace of 20 minutes
		// it is old too.
		{"short grace", Options{Grace: 20 * time.Minute}, []string{"stray", "young"}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := registry(t)
			m := ComputeMark(s.f.View(), tc.opt, now)
			var want []digest.Digest
			for _, b := range tc.blobs {
				want = append(want, dg(b))
			}
			slices.Sort(want)
			if !slices.Equal(m.Blobs, want) {
				t.Errorf("blobs = %v, want %v", m.Blobs, want)
			}
			var wantM []events.ManifestRef
			for _, d := range tc.manifests {
				wantM = append(wantM, events.ManifestRef{Repo: "app", Digest: dg(d)})
			}
			if !slices.Equal(m.Manifests, wantM) {
				t.Errorf("manifests = %v, want %v", m.Manifests, wantM)
			}
			if m.Index != s.idx {
				t.Errorf("index = %d, want %d", m.Index, s.idx)
			}
		})
	}
}

// A multi-arch index's children and a kept image's referrers survive
// deleteUntagged; once the index's tag goes, so do they.
func TestComputeMarkIndexAndReferrers(t *testing.T) {
	s := registry(t)
	now := t0.Add(3 * time.Hour)
	s.at(now, events.TagDeleted{Repo: "app", Tag: "multi"}, events.TagDeleted{Repo: "app", Tag: "v1"})
	m := ComputeMark(s.f.View(), Options{DeleteUntagged: true, Grace: time.Hour}, now)
	var got []string
	for _, r := range m.Manifests {
		got = append(got, r.Digest.String())
	}
	want := []string{dg("amd").String(), dg("arm").String(), dg("idx").String(), dg("img").String(), dg("sig").String(), dg("untagged").String()}
	slices.Sort(want)
	slices.Sort(got)
	if !slices.Equal(got, want) {
		t.Errorf("untagged after tags deleted = %v, want %v", got, want)
	}
	// l1 is still linked (old) in "other", but nothing keeps it.
	if !slices.Contains(m.Blobs, dg("l1")) || !slices.Contains(m.Blobs, dg("cfg")) {
		t.Errorf("blobs %v lack l1 or cfg", m.Blobs)
	}
}

func TestChunksAreBounded(t *testing.T) {
	m := Mark{}
	for i := range events.MaxGCChunk + 5 {
		m.Blobs = append(m.Blobs, dg(string(rune(i))))
	}
	m.Manifests = []events.ManifestRef{{Repo: "a", Digest: dg("m")}}
	cs := m.Chunks("r")
	if len(cs) != 2 || len(cs[0].Blobs) != events.MaxGCChunk || len(cs[1].Blobs) != 5 || len(cs[1].Manifests) != 1 {
		t.Errorf("chunks: %d, sizes wrong", len(cs))
	}
	if len(Mark{}.Chunks("r")) != 0 {
		t.Error("an empty mark has chunks")
	}
}

// Bytes the state no longer names are garbage: a deleted manifest's, a
// deleted repository's, an unlinked blob's; unless another repository
// still keeps the digest.
func TestComputeMarkOrphans(t *testing.T) {
	s := registry(t)
	now := t0.Add(3 * time.Hour)
	s.at(now,
		events.ManifestDeleted{Repo: "app", Digest: dg("untagged")},
		events.BlobUnlinked{Repo: "app", Digest: dg("stray")},
		events.RepositoryDeleted{Repo: "other"},
	)
	if m := ComputeMark(s.f.View(), Options{Grace: time.Hour}, now); slices.Contains(m.Blobs, dg("untagged")) {
		t.Error("a manifest deleted just now is garbage within the grace period")
	}
	m := ComputeMark(s.f.View(), Options{Grace: time.Hour}, now.Add(2*time.Hour))
	// l1 (deleted with "other") is kept by the tagged image in app; l2 now
	// only by an old link in app, which no manifest references.
	want := []digest.Digest{dg("l2"), dg("stray"), dg("untagged"), dg("young")}
	slices.Sort(want)
	if !slices.Equal(m.Blobs, want) {
		t.Errorf("blobs = %v, want %v", m.Blobs, want)
	}
}
