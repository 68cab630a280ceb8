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

func TestWatchNamespaces(t *testing.T) {
	f := fsm.New(slog.New(slog.DiscardHandler))
	layer := digest.FromString("layer")
	for i, p := range []events.Payload{
		events.ResourceApplied{Kind: "Namespace", Name: "team-a", Document: []byte(`{"apiVersion":"berth.dev/v1","kind":"Namespace","metadata":{"name":"team-a"},"spec":{"quota":{"storage":"1Ki"}}}`)},
		events.ResourceApplied{Kind: "Namespace", Name: "team-b", Document: []byte(`{"apiVersion":"berth.dev/v1","kind":"Namespace","metadata":{"name":"team-b"},"spec":{}}`)},
		events.BlobLinked{Repo: "team-a/app", Digest: layer, Size: 500},
		events.ManifestPut{Repo: "team-a/app", Digest: digest.FromString("m"), Size: 12, Blobs: []digest.Digest{layer}},
		events.BlobLinked{Repo: "stray/app", Digest: layer, Size: 500},
		events.ManifestPut{Repo: "stray/app", Digest: digest.FromString("m"), Size: 12, Blobs: []digest.Digest{layer}},
	} {
		b, err := events.Encode(events.Event{Time: time.Unix(0, 0), Payload: p})
		if err != nil {
			t.Fatal(err)
		}
		if res := f.Apply(&raft.Log{Index: uint64(i + 1), Type: raft.LogCommand, Data: b}); res != nil {
			t.Fatalf("%T: %v", p, res)
		}
	}
	m := New("test")
	m.WatchNamespaces(f.View)
	for _, c := range []struct {
		name, ns string
		want     float64
		present  bool
	}{
		{"berth_namespace_usage_bytes", "team-a", 512, true},
		{"berth_namespace_quota_bytes", "team-a", 1024, true},
		{"berth_namespace_usage_bytes", "team-b", 0, true},
		{"berth_namespace_quota_bytes", "team-b", 0, false},
		{"berth_namespace_usage_bytes", "stray", 0, false}, // no Namespace resource: no series
	} {
		got, ok := sample(t, m, c.name, "namespace", c.ns)
		if ok != c.present || got != c.want {
			t.Errorf("%s{namespace=%q} = %v (present %v), want %v (present %v)", c.name, c.ns, got, ok, c.want, c.present)
		}
	}
}
