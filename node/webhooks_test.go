package node

import (
	"encoding/json"
	"log/slog"
	"testing"
	"time"

	"github.com/hashicorp/raft"
	"github.com/opencontainers/go-digest"

	"github.com/berth-registry/berth/events"
	"github.com/berth-registry/berth/fsm"
)

// A webhook first seen while its apply is still unpublished starts at that
// apply, not at the index the leader happens to have reached (which would
// skip the pushes in between); once the apply is published, it starts
// after the cursor.
func TestCreatedIndex(t *testing.T) {
	f := fsm.New(slog.New(slog.DiscardHandler))
	index := uint64(0)
	apply := func(p events.Payload) uint64 {
		t.Helper()
		b, err := events.Encode(events.Event{Time: time.Now().UTC(), Payload: p})
		if err != nil {
			t.Fatal(err)
		}
		index++
		if err, ok := f.Apply(&raft.Log{Index: index, Type: raft.LogCommand, Data: b}).(error); ok && err != nil {
			t.Fatalf("apply %T: %v", p, err)
		}
		return index
	}
	doc := func(name string) json.RawMessage {
		return json.RawMessage(`{"apiVersion":"berth.dev/v1","kind":"Webhook","metadata":{"name":"` + name + `"},"spec":{"url":"http://127.0.0.1:1/hook"}}`)
	}
	apply(events.ClusterIdentified{ID: "0123456789abcdef"})
	apply(events.OutboxCursor{Index: 0})
	apply(events.BlobLinked{Repo: "a", Digest: digest.FromString("a"), Size: 1})
	created := apply(events.ResourceApplied{Kind: "Webhook", Name: "ci", Document: doc("ci")})
	batch := apply(events.ResourcesApplied{Resources: []events.ResourceApplied{{Kind: "Webhook", Name: "other", Document: doc("other")}}})
	apply(events.BlobLinked{Repo: "a", Digest: digest.FromString("b"), Size: 1})

	if got := createdIndex(f.View(), "ci"); got != created {
		t.Errorf("createdIndex(ci) = %d, want its apply %d", got, created)
	}
	if got := createdIndex(f.View(), "other"); got != batch {
		t.Errorf("createdIndex(other) = %d, want the multi-document apply %d", got, batch)
	}
	apply(events.OutboxCursor{Index: batch})
	if got := createdIndex(f.View(), "ci"); got != batch+1 {
		t.Errorf("createdIndex(ci) after the cursor passed it = %d, want %d", got, batch+1)
	}
}
