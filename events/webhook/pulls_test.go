package webhook

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/opencontainers/go-digest"

	"github.com/berth-registry/berth/events"
)

// TestSeqForIndexSkipsPullEvents: pull events (events/pulls) sit in the
// stream between logged events with no index; finding where an index
// starts must look past them, not take them for index 0.
func TestSeqForIndexSkipsPullEvents(t *testing.T) {
	js := startJetStream(t)
	m := newTestManager(t, js, nil)
	pub := &publisher{t: t, js: js}
	pullN := 0
	pulls := func(n int) {
		for range n {
			pullN++
			ce := events.PullCloudEvent(testCluster, "node-1", events.PullEventID(testCluster, "node-1", "b00t", uint64(pullN)),
				events.Pull{Kind: events.PullBlob, Repository: "r/one", Digest: digest.FromString(fmt.Sprint(pullN))})
			body, _ := json.Marshal(ce)
			msg := nats.NewMsg(events.NATSSubject(ce))
			msg.Data = body
			msg.Header.Set(jetstream.MsgIDHeader, ce.ID)
			if _, err := js.PublishMsg(context.Background(), msg); err != nil {
				t.Fatal(err)
			}
		}
	}
	// seq 1 P1, 2-4 pulls, 5 P2, 6-8 pulls, ... 21 P6, 22-24 pulls.
	var pushes []events.CloudEvent
	for range 6 {
		pushes = append(pushes, pub.publish(events.CETypeManifestPushed, "r/one"))
		pulls(3)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	stream, err := js.Stream(ctx, DefaultEventsStream)
	if err != nil {
		t.Fatal(err)
	}
	for i, p := range pushes {
		want := uint64(1 + 4*i)
		for _, index := range []uint64{p.Data.Index, p.Data.Index - 1} {
			got, err := m.seqForIndex(ctx, stream, index)
			if err != nil {
				t.Fatal(err)
			}
			if got != want {
				t.Errorf("seqForIndex(%d) = %d, want %d (push %d)", index, got, want, i+1)
			}
		}
	}
	if got, _ := m.seqForIndex(ctx, stream, pushes[5].Data.Index+1); got < 22 {
		t.Errorf("past the last push: sequence %d, want after 21", got)
	}
}

// Pull events in the Distribution format are its "pull" action, with the
// client's address and the blob or manifest URL.
func TestDistributionFormatOfPulls(t *testing.T) {
	src := Source{BaseURL: "https://registry.example.com"}
	d := digest.FromString("x")
	for _, tc := range []struct {
		kind events.PullKind
		url  string
	}{
		{events.PullManifest, "https://registry.example.com/v2/team-a/app/manifests/" + d.String()},
		{events.PullBlob, "https://registry.example.com/v2/team-a/app/blobs/" + d.String()},
	} {
		ce := events.PullCloudEvent("c1", "node-1", "c1:node-1:b:1", events.Pull{
			Kind: tc.kind, Repository: "team-a/app", Digest: d, UserAgent: "crane", RemoteAddr: "10.0.0.1:4000",
		})
		ev, ok := toDistribution(ce, src)
		if !ok || ev.Action != "pull" || ev.Request.Method != "GET" || ev.Request.Addr != "10.0.0.1:4000" ||
			ev.Request.UserAgent != "crane" || ev.Target.URL != tc.url || ev.ID != ce.ID {
			t.Errorf("%s: ok %v, %+v", ce.Type, ok, ev)
		}
	}
}
