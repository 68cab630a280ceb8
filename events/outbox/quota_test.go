package outbox

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/berth-registry/berth/events"
	"github.com/berth-registry/berth/events/broker"
)

// A quota warning the FSM derived from a push goes out right after the
// push's own event, with the push's index and an ID of its own, and a
// republish of the row is dropped like any other.
func TestPublishesQuotaWarningsAfterTheirEntry(t *testing.T) {
	dir, port := t.TempDir(), freePort(t)
	srv := natsServer(t, dir, port)
	defer srv.Shutdown()
	url := fmt.Sprintf("nats://127.0.0.1:%d", port)
	b, err := broker.Open(broker.Config{URLs: []string{url}, Stream: "BERTH_EVENTS", DuplicateWindow: 10 * time.Minute}, quiet)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if err := b.Ensure(context.Background()); err != nil {
		t.Fatal(err)
	}
	l := newLog(t)
	l.apply(events.ClusterIdentified{ID: "c1"})
	l.apply(events.OutboxCursor{Index: 0})
	l.apply(events.QuotasEnabled{})
	l.apply(events.ResourceApplied{Kind: "Namespace", Name: "team-a", Document: []byte(
		`{"apiVersion":"berth.dev/v1","kind":"Namespace","metadata":{"name":"team-a"},"spec":{"quota":{"storage":"1000"}}}`)})
	layer := digest.FromString("layer")
	l.apply(events.BlobLinked{Repo: "team-a/app", Digest: layer, Size: 890})
	push, ok := l.apply(events.ManifestPut{Repo: "team-a/app", Digest: digest.FromString("m"), Size: 10, Blobs: []digest.Digest{layer}})
	if !ok {
		t.Fatal("push refused")
	}
	for range 2 { // the second outbox republishes everything: a new leader
		o := New(Config{CommitEvery: time.Hour}, FSMSource{l.f}, l, b, quiet)
		stop := start(t, o)
		waitUntil(t, "the outbox to publish the push", 10*time.Second, func() bool { return o.Status().Cursor >= push })
		stop()
	}

	js := connect(t, url)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	s, err := js.Stream(ctx, "BERTH_EVENTS")
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	var warning events.CloudEvent
	for seq := info.State.FirstSeq; seq <= info.State.LastSeq; seq++ {
		m, err := s.GetMsg(ctx, seq)
		if err != nil {
			t.Fatal(err)
		}
		var ce events.CloudEvent
		if err := json.Unmarshal(m.Data, &ce); err != nil {
			t.Fatal(err)
		}
		got = append(got, fmt.Sprintf("%s %s %s %s", ce.Type, m.Subject, m.Header.Get(HeaderMsgID), m.Header.Get(HeaderIndex)))
		if ce.Type == events.CETypeQuotaWarning {
			warning = ce
		}
	}
	want := []string{
		"dev.berth.resource.applied berth.resource_applied._ c1:4 4",
		fmt.Sprintf("dev.berth.manifest.pushed berth.manifest_pushed.team-a.app c1:%d %d", push, push),
		fmt.Sprintf("dev.berth.quota.warning berth.quota_warning.team-a.app c1:%d/quota.warning/team-a %d", push, push),
	}
	if !slices.Equal(got, want) {
		t.Fatalf("stream holds\n %q\nwant\n %q", got, want)
	}
	d := warning.Data
	if d.Namespace != "team-a" || d.Repository != "team-a/app" || d.Usage != 900 || d.Quota != 1000 || d.Index != push || warning.Subject != "team-a" {
		t.Fatalf("warning = %+v", warning)
	}
}
