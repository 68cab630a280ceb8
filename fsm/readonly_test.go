package fsm

import (
	"bytes"
	"errors"
	"io"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/raft"
	"github.com/opencontainers/go-digest"

	"github.com/berth-registry/berth/events"
	"github.com/berth-registry/berth/internal/golden"
)

// applyAs applies p as the next entry with actor as its origin, as the
// node's proposer stamps it.
func (h *harness) applyAs(actor string, p events.Payload) error {
	h.t.Helper()
	b, err := events.Encode(events.Event{Time: t0.Add(time.Duration(h.idx) * time.Second), Origin: events.Origin{Actor: actor}, Payload: p})
	if err != nil {
		h.t.Fatal(err)
	}
	h.idx++
	if res := h.f.Apply(&raft.Log{Index: h.idx, Type: raft.LogCommand, Data: b}); res != nil {
		return res.(error)
	}
	return nil
}

const migration = "migrating the bucket"

// readOnlyHarness is the seeded registry with a GC run open (so GC events
// have something to act on), then put in read-only mode by alice.
func readOnlyHarness(t *testing.T) *harness {
	h := newHarness(t)
	h.seed()
	h.must(events.GCStarted{Run: "r"})
	if err := h.applyAs("alice", events.ReadOnlySet{On: true, Reason: migration}); err != nil {
		t.Fatal(err)
	}
	return h
}

func TestReadOnlyRefusesRegistryWrites(t *testing.T) {
	tests := []struct {
		name string
		ev   events.Payload
	}{
		{"manifest put", events.ManifestPut{Repo: "app", Digest: dg("m2"), Blobs: []digest.Digest{dg("config")}, Tags: []string{"v2"}}},
		{"manifest put of one that exists", events.ManifestPut{Repo: "app", Digest: dg("m1"), Blobs: []digest.Digest{dg("config"), dg("layer")}}},
		{"manifest delete", events.ManifestDeleted{Repo: "app", Digest: dg("m1")}},
		{"tag set", events.TagSet{Repo: "app", Tag: "stable", Digest: dg("m1")}},
		{"tag delete", events.TagDeleted{Repo: "app", Tag: "v1"}},
		{"blob link", events.BlobLinked{Repo: "app", Digest: dg("new"), Size: 3}},
		{"blob link that exists", events.BlobLinked{Repo: "app", Digest: dg("layer"), Size: 20}},
		{"blob unlink", events.BlobUnlinked{Repo: "app", Digest: dg("layer")}},
		{"repository delete", events.RepositoryDeleted{Repo: "other"}},
		{"gc sweep start", events.GCSweepStarted{Run: "r"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := readOnlyHarness(t)
			before := h.snapshot()
			at := t0.Add(time.Duration(h.idx-1) * time.Second).Format(time.RFC3339) // the ReadOnlySet's time
			err := h.apply(tt.ev)
			var r *Refusal
			if !errors.As(err, &r) || r.Code != CodeReadOnly {
				t.Fatalf("err = %v, want refusal %s", err, CodeReadOnly)
			}
			want := "registry is in read-only mode (set by alice at " + at + ": " + migration + "); clusterctl readonly off lifts it"
			if r.Message != want {
				t.Errorf("message = %q\nwant      %q", r.Message, want)
			}
			if !bytes.Equal(snapshotRows(before), snapshotRows(h.snapshot())) {
				t.Error("a refused write changed the state")
			}
		})
	}
	t.Run("gc start", func(t *testing.T) {
		h := newHarness(t)
		h.must(events.ReadOnlySet{On: true})
		var r *Refusal
		if err := h.apply(events.GCStarted{Run: "s"}); !errors.As(err, &r) || r.Code != CodeReadOnly {
			t.Fatalf("GCStarted while read-only: %v", err)
		}
		if _, open := h.f.View().GCRun(); open {
			t.Error("a GC run opened while read-only")
		}
	})
}

// What is not a registry write goes on, and lifting the mode lets writes
// in again.
func TestReadOnlyLetsTheRestThrough(t *testing.T) {
	h := readOnlyHarness(t)
	for _, p := range []events.Payload{
		events.ResourceApplied{Kind: "Registry", Name: "quay", Document: []byte(`{"apiVersion":"berth.dev/v1","kind":"Registry","metadata":{"name":"quay"},"spec":{}}`)},
		events.ResourcesApplied{Resources: []events.ResourceApplied{{Kind: "Registry", Name: "ghcr", Document: []byte(`{"apiVersion":"berth.dev/v1","kind":"Registry","metadata":{"name":"ghcr"},"spec":{}}`)}}},
		events.ResourceDeleted{Kind: "Registry", Name: "quay"},
		events.ClusterIdentified{ID: "c1"},
		events.OutboxCursor{Index: 1},
		events.GCMarked{Run: "r", Blobs: []digest.Digest{dg("layer")}},
		events.GCCancelled{Run: "r", Reason: "maintenance"},
		events.ReadOnlySet{On: true, Reason: "still migrating"},
	} {
		if err := h.apply(p); err != nil {
			t.Errorf("%T while read-only: %v", p, err)
		}
	}
	if ro := h.f.View().ReadOnly(); !ro.On || ro.Reason != "still migrating" || ro.Actor != "" || ro.Index != h.idx {
		t.Errorf("setting it again: %+v", ro)
	}
	if err := h.applyAs("bob", events.ReadOnlySet{On: false, Reason: "done"}); err != nil {
		t.Fatal(err)
	}
	ro := h.f.View().ReadOnly()
	if want := (ReadOnly{Actor: "bob", Since: t0.Add(time.Duration(h.idx-1) * time.Second), Index: h.idx}); ro != want {
		t.Errorf("after off: %+v, want %+v", ro, want)
	}
	h.must(events.TagSet{Repo: "app", Tag: "after", Digest: dg("m1")}, events.RepositoryDeleted{Repo: "other"})
}

func TestReadOnlySetChecks(t *testing.T) {
	h := newHarness(t)
	h.seed()
	before := h.snapshot()
	// Off while never on changes nothing, so the snapshot gains no row.
	h.must(events.ReadOnlySet{On: false})
	if !bytes.Equal(snapshotRows(before), snapshotRows(h.snapshot())) {
		t.Error("turning off a mode that was never on wrote a row")
	}
	for _, reason := range []string{strings.Repeat("x", events.MaxReadOnlyReason+1), "two\nlines", "tab\there"} {
		var r *Refusal
		if err := h.apply(events.ReadOnlySet{On: true, Reason: reason}); !errors.As(err, &r) || r.Code != CodeInvalid {
			t.Errorf("reason %q: err = %v, want %s", reason, err, CodeInvalid)
		}
	}
	if h.f.View().ReadOnly().On {
		t.Error("a refused ReadOnlySet turned the mode on")
	}
}

func TestReadOnlyMessage(t *testing.T) {
	at := time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		ro   ReadOnly
		want string
	}{
		{ReadOnly{On: true}, "registry is in read-only mode; clusterctl readonly off lifts it"},
		{ReadOnly{On: true, Actor: "admin", Since: at}, "registry is in read-only mode (set by admin at 2026-11-30T12:00:00Z); clusterctl readonly off lifts it"},
		{ReadOnly{On: true, Since: at, Reason: "backup"}, "registry is in read-only mode (set at 2026-11-30T12:00:00Z: backup); clusterctl readonly off lifts it"},
	} {
		if got := tc.ro.Message(); got != tc.want {
			t.Errorf("Message(%+v) = %q, want %q", tc.ro, got, tc.want)
		}
	}
}

// The mode survives snapshot and restore, byte for byte, and still refuses
// writes after it; a snapshot from before read-only mode existed restores
// with it off.
func TestReadOnlySnapshotRoundTrip(t *testing.T) {
	h := readOnlyHarness(t)
	snap := h.snapshot()
	if !bytes.Contains(snap, []byte(`"t":"readonly"`)) {
		t.Fatalf("the snapshot holds no read-only row:\n%s", snap)
	}
	h2 := newHarness(t)
	if err := h2.f.Restore(io.NopCloser(bytes.NewReader(snap))); err != nil {
		t.Fatal(err)
	}
	if got, want := h2.f.View().ReadOnly(), h.f.View().ReadOnly(); got != want || !got.On {
		t.Errorf("restored mode %+v, want %+v", got, want)
	}
	if !bytes.Equal(h2.snapshot(), snap) {
		t.Error("a restored state snapshots differently")
	}
	h2.idx = h.idx
	var r *Refusal
	if err := h2.apply(events.TagDeleted{Repo: "app", Tag: "v1"}); !errors.As(err, &r) || r.Code != CodeReadOnly {
		t.Errorf("write after restore: %v, want a read-only refusal", err)
	}

	for _, name := range []string{"snapshot.v1.ndjson", "snapshot.v2.ndjson"} {
		old := newHarness(t)
		if err := old.f.Restore(io.NopCloser(bytes.NewReader(golden.Released(t, filepath.Join("testdata", name))))); err != nil {
			t.Fatal(err)
		}
		if ro := old.f.View().ReadOnly(); ro != (ReadOnly{}) {
			t.Errorf("%s restored with read-only mode %+v, want off", name, ro)
		}
	}
}

func TestRestoreRefusesBadReadOnlyRows(t *testing.T) {
	h := readOnlyHarness(t)
	snap := h.snapshot()
	row := lineWith(t, snap, `"t":"readonly"`)
	for _, tc := range []struct {
		name, old, new, want string
	}{
		{"wrong key", `"Key":"readonly"`, `"Key":"other"`, "want \"readonly\""},
		{"index past the snapshot", `,"index":10}}`, `,"index":99}}`, "past the snapshot"},
		{"control character", migration, `two\nlines`, "control character"},
		{"unknown field", row, strings.Replace(row, `"on":true`, `"on":true,"until":"never"`, 1), "unknown field"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			expectRefused(t, reseal(replaceOnce(t, snap, tc.old, tc.new)), tc.want)
		})
	}
}
