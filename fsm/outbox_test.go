package fsm

import (
	"bytes"
	"io"
	"slices"
	"testing"

	"github.com/opencontainers/go-digest"

	"github.com/berth-registry/berth/events"
)

func pendingIndexes(v *View) []uint64 {
	var out []uint64
	for _, r := range v.Pending(0, 1000) {
		out = append(out, r.Index)
	}
	return out
}

// The outbox keeps exactly the accepted, published entries after the first
// cursor, and a cursor drops what it passed.
func TestOutboxKeepsOnlyAcceptedPublishedEntries(t *testing.T) {
	h := newHarness(t)
	// Before the outbox is on nothing is kept.
	h.must(events.BlobLinked{Repo: "app", Digest: dg("c"), Size: 1}) // 1
	h.must(events.ManifestPut{Repo: "app", Digest: dg("m0"), Blobs: []digest.Digest{dg("c")}})
	if got := pendingIndexes(h.f.View()); len(got) != 0 {
		t.Fatalf("outbox off, but rows %v are kept", got)
	}
	h.must(events.OutboxCursor{Index: 0})                                                      // 3: turns it on
	h.must(events.ManifestPut{Repo: "app", Digest: dg("m1"), Blobs: []digest.Digest{dg("c")}}) // 4
	h.must(events.BlobLinked{Repo: "app", Digest: dg("d"), Size: 1})                           // 5: bookkeeping
	if err := h.apply(events.ManifestPut{Repo: "app", Digest: dg("m2"), Blobs: []digest.Digest{dg("missing")}}); err == nil {
		t.Fatal("a manifest with a missing blob was accepted") // 6: refused
	}
	h.must(events.TagSet{Repo: "app", Tag: "t", Digest: dg("m1")}) // 7
	h.must(events.ClusterIdentified{ID: "c0ffee"})                 // 8: bookkeeping
	h.must(events.TagDeleted{Repo: "app", Tag: "t"})               // 9
	if got, want := pendingIndexes(h.f.View()), []uint64{4, 7, 9}; !slices.Equal(got, want) {
		t.Fatalf("pending = %v, want %v", got, want)
	}
	if rows := h.f.View().Pending(4, 1); len(rows) != 1 || rows[0].Index != 7 {
		t.Fatalf("Pending(4, 1) = %v, want the row of index 7", rows)
	}
	h.must(events.OutboxCursor{Index: 7}) // 10
	v := h.f.View()
	if got, want := pendingIndexes(v), []uint64{9}; !slices.Equal(got, want) {
		t.Fatalf("after cursor 7: pending = %v, want %v", got, want)
	}
	if c, on := v.OutboxCursor(); c != 7 || !on {
		t.Fatalf("cursor = %d, %v; want 7, true", c, on)
	}
	if v.ClusterID() != "c0ffee" {
		t.Fatalf("cluster id = %q", v.ClusterID())
	}
	// The kept bytes are the entry: it decodes to the event applied.
	ev, err := events.Decode(v.Pending(0, 1)[0].Entry)
	if err != nil || ev.Type() != events.TypeTagDeleted {
		t.Fatalf("row 9 decodes to %v, %v", ev.Payload, err)
	}
}

func TestOutboxCursorAndClusterIDRefusals(t *testing.T) {
	h := newHarness(t)
	h.must(events.ClusterIdentified{ID: "first"}, events.OutboxCursor{Index: 1})
	for _, tc := range []struct {
		name string
		p    events.Payload
	}{
		{"second cluster id", events.ClusterIdentified{ID: "second"}},
		{"cursor moving back", events.OutboxCursor{Index: 0}},
		{"cursor in the future", events.OutboxCursor{Index: 1000}},
	} {
		if err := h.apply(tc.p); err == nil {
			t.Errorf("%s: accepted", tc.name)
		}
	}
	if id := h.f.View().ClusterID(); id != "first" {
		t.Errorf("cluster id = %q, want the first one", id)
	}
	h2 := newHarness(t)
	if err := h2.apply(events.ClusterIdentified{ID: "has a space"}); err == nil {
		t.Error("an invalid cluster id was accepted")
	}
}

// Pending rows survive a snapshot and restore, so log compaction never
// loses an unpublished event.
func TestOutboxRowsSurviveSnapshotRestore(t *testing.T) {
	h := newHarness(t)
	h.must(events.ClusterIdentified{ID: "abc"}, events.OutboxCursor{Index: 0})
	h.seed()
	want := pendingIndexes(h.f.View())
	if len(want) == 0 {
		t.Fatal("seed left no pending rows")
	}
	snap := h.snapshot()
	if _, err := CheckSnapshot(bytes.NewReader(snap)); err != nil {
		t.Fatalf("CheckSnapshot: %v", err)
	}
	h2 := newHarness(t)
	if err := h2.f.Restore(io.NopCloser(bytes.NewReader(snap))); err != nil {
		t.Fatal(err)
	}
	v := h2.f.View()
	if got := pendingIndexes(v); !slices.Equal(got, want) {
		t.Errorf("restored pending = %v, want %v", got, want)
	}
	if v.ClusterID() != "abc" {
		t.Errorf("restored cluster id = %q", v.ClusterID())
	}
	if !bytes.Equal(h2.snapshot(), snap) {
		t.Error("a restored state snapshots differently")
	}
}

func TestRestoreRefusesBadOutboxRows(t *testing.T) {
	h := newHarness(t)
	h.must(events.ClusterIdentified{ID: "abc"}, events.OutboxCursor{Index: 0})
	h.seed()
	snap := h.snapshot()
	// An entry that is bookkeeping, a row at the cursor, a row past the
	// snapshot, and a cluster row that claims the outbox is off.
	linked, _ := events.Encode(events.Event{Time: t0, Payload: events.BlobLinked{Repo: "app", Digest: dg("x")}})
	firstRow := lineWith(t, snap, `"t":"outbox"`)
	for _, tc := range []struct {
		name, old, new, want string
	}{
		{"bookkeeping entry", firstRow, `{"t":"outbox","v":{"Index":5,"Entry":` + string(linked) + `}}`, "never published"},
		{"row at the cursor", `"Index":5,`, `"Index":0,`, "at or before the cursor"},
		{"row past the snapshot", `"Index":5,`, `"Index":999,`, "past the snapshot"},
		{"outbox off", `"OutboxEnabled":true`, `"OutboxEnabled":false`, "outbox is off"},
		{"bad cluster id", `"ID":"abc"`, `"ID":"a b"`, "not a valid cluster ID"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			expectRefused(t, reseal(replaceOnce(t, snap, tc.old, tc.new)), tc.want)
		})
	}
}

func lineWith(t *testing.T, b []byte, sub string) string {
	t.Helper()
	for _, l := range bytes.Split(b, []byte("\n")) {
		if bytes.Contains(l, []byte(sub)) {
			return string(l)
		}
	}
	t.Fatalf("no line with %s", sub)
	return ""
}
