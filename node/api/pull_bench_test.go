package api

import (
	"context"
	"io"
	"log/slog"
	"net/http/httptest"
	"testing"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/opencontainers/go-digest"

	"github.com/berth-registry/berth/events/pulls"
	"github.com/berth-registry/berth/fsm"
)

// ackedStream acknowledges every publish at once.
type ackedStream struct{}

type ackedFuture struct{ ok chan *jetstream.PubAck }

func (f ackedFuture) Ok() <-chan *jetstream.PubAck { return f.ok }
func (ackedFuture) Err() <-chan error              { return nil }
func (ackedFuture) Msg() *nats.Msg                 { return nil }

func (ackedStream) PublishMsgAsync(*nats.Msg) (jetstream.PubAckFuture, error) {
	ok := make(chan *jetstream.PubAck, 1)
	ok <- &jetstream.PubAck{}
	return ackedFuture{ok}, nil
}

// BenchmarkManifestPulledHook is what pull events add to a manifest GET:
// the nil check, building the Pull and offering it to a running
// publisher's queue (when the publisher falls behind, offers are drops,
// which are cheaper still).
func BenchmarkManifestPulledHook(b *testing.B) {
	p := pulls.New(pulls.Config{NodeID: "n"}, ackedStream{}, slog.New(slog.NewTextHandler(io.Discard, nil)))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go p.Run(ctx)
	h := &handler{cfg: Config{Pulls: p}}
	r := httptest.NewRequest("GET", "/v2/team-a/app/manifests/v1", nil)
	r.Header.Set("User-Agent", "crane/0.20")
	m := fsm.Manifest{Digest: digest.FromString("m"), MediaType: ociIndexOrManifest, Size: 1234}
	ref := reference{tag: "v1"}
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		if h.cfg.Pulls != nil {
			h.manifestPulled(r, "team-a/app", ref, m)
		}
	}
}

const ociIndexOrManifest = "application/vnd.oci.image.manifest.v1+json"
