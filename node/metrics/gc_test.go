package metrics

import (
	"log/slog"
	"testing"
	"time"

	"github.com/hashicorp/raft"
	"github.com/opencontainers/go-digest"

	"github.com/berth-registry/berth/events"
	"github.com/berth-registry/berth/fsm"
)

func TestWatchGC(t *testing.T) {
	f := fsm.New(slog.New(slog.DiscardHandler))
	m := New("test")
	m.WatchGC(f.View)
	t0 := time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)
	idx := uint64(0)
	apply := func(at time.Time, p events.Payload) {
		t.Helper()
		b, err := events.Encode(events.Event{Time: at, Payload: p})
		if err != nil {
			t.Fatal(err)
		}
		idx++
		if res := f.Apply(&raft.Log{Index: idx, Type: raft.LogCommand, Data: b}); res != nil {
			t.Fatalf("%T: %v", p, res)
		}
	}
	check := func(when string, want map[string]float64) {
		t.Helper()
		for name, v := range want {
			if got, ok := sample(t, m, name); !ok || got != v {
				t.Errorf("%s: %s = %v (present %v), want %v", when, name, got, ok, v)
			}
		}
	}
	check("never ran", map[string]float64{"berth_gc_run_open": 0, "berth_gc_run_candidates": 0})
	garbage := digest.FromString("garbage")
	apply(t0, events.BlobLinked{Repo: "a", Digest: garbage, Size: 700})
	apply(t0, events.BlobUnlinked{Repo: "a", Digest: garbage})
	apply(t0.Add(time.Hour), events.GCStarted{Run: "r1", GraceSeconds: 60})
	apply(t0.Add(time.Hour), events.GCMarked{Run: "r1", Blobs: []digest.Digest{garbage}})
	check("marked", map[string]float64{"berth_gc_run_open": 1, "berth_gc_run_candidates": 1})
	apply(t0.Add(time.Hour), events.GCSweepStarted{Run: "r1"})
	apply(t0.Add(time.Hour+3*time.Second), events.GCSwept{Run: "r1", Deleted: 1, Bytes: 700})
	check("swept", map[string]float64{
		"berth_gc_run_open": 0, "berth_gc_last_run_deleted": 1, "berth_gc_last_run_reclaimed_bytes": 700,
		"berth_gc_last_run_swept": 1, "berth_gc_last_run_duration_seconds": 3,
		"berth_gc_last_run_start_timestamp_seconds": float64(t0.Add(time.Hour).Unix()),
	})
}
