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

func TestWatchStorage(t *testing.T) {
	f := fsm.New(slog.New(slog.DiscardHandler))
	m := New("test")
	m.WatchStorage(f.View)
	layer := digest.FromString("layer")
	apply := func(i int, p events.Payload) {
		b, err := events.Encode(events.Event{Time: time.Unix(0, 0), Payload: p})
		if err != nil {
			t.Fatal(err)
		}
		if res := f.Apply(&raft.Log{Index: uint64(i), Type: raft.LogCommand, Data: b}); res != nil {
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
	check("empty", map[string]float64{"berth_storage_logical_bytes": 0, "berth_storage_deduplicated_bytes": 0, "berth_storage_referenced_digests": 0})
	for i, p := range []events.Payload{
		events.BlobLinked{Repo: "a", Digest: layer, Size: 500},
		events.ManifestPut{Repo: "a", Digest: digest.FromString("m1"), Size: 10, Blobs: []digest.Digest{layer}},
		events.BlobLinked{Repo: "b", Digest: layer, Size: 500},
		events.ManifestPut{Repo: "b", Digest: digest.FromString("m2"), Size: 20, Blobs: []digest.Digest{layer}},
	} {
		apply(i+1, p)
	}
	check("two images sharing a layer", map[string]float64{"berth_storage_logical_bytes": 1030, "berth_storage_deduplicated_bytes": 530, "berth_storage_referenced_digests": 3})
}
