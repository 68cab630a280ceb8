package api_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/opencontainers/go-digest"

	"github.com/berth-registry/berth/events"
	"github.com/berth-registry/berth/node"
)

// startNodeWithNATS runs a node whose embedded NATS listens on loopback,
// with pull events on or off, and returns the API's base URL and a
// JetStream client for the event stream.
func startNodeWithNATS(t *testing.T, pulls bool) (string, jetstream.Stream) {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	natsAddr := l.Addr().String()
	l.Close()
	base := startNodeWith(t, func(c *node.Config) {
		c.Events.Enabled = "true"
		c.Events.Pulls = pulls
		c.Events.NATS.Listen, c.Events.NATS.Token = natsAddr, "s3cret"
	})
	nc, err := nats.Connect("nats://"+natsAddr, nats.Token("s3cret"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	s, err := js.Stream(ctx, "BERTH_EVENTS")
	if err != nil {
		t.Fatal(err)
	}
	return base, s
}

// pulledEvents waits until the stream's pull events stop growing and
// returns them as "type subject", sorted.
func pulledEvents(t *testing.T, s jetstream.Stream, atLeast int) []string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	read := func() []string {
		info, err := s.Info(ctx)
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for seq := info.State.FirstSeq; info.State.Msgs > 0 && seq <= info.State.LastSeq; seq++ {
			m, err := s.GetMsg(ctx, seq)
			if err != nil {
				t.Fatal(err)
			}
			var ce events.CloudEvent
			if err := json.Unmarshal(m.Data, &ce); err != nil {
				t.Fatal(err)
			}
			if !strings.HasSuffix(ce.Type, ".pulled") {
				continue
			}
			if ce.Data.Node == "" || ce.Data.Index != 0 || ce.Data.UserAgent != "pull-test" || ce.Data.RemoteAddr == "" {
				t.Errorf("pull event %+v: want node, index 0, user agent and remote address", ce)
			}
			out = append(out, events.ShortType(ce.Type)+" "+ce.Subject)
		}
		sort.Strings(out)
		return out
	}
	deadline := time.Now().Add(3 * time.Second)
	got := read()
	for len(got) < atLeast && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
		got = read()
	}
	time.Sleep(300 * time.Millisecond) // more than a batch wait: nothing else may come
	return read()
}

// TestPullEvents checks which reads are pulls: a manifest GET (by tag it
// names the tag), a whole-blob GET and a range from byte 0; not HEAD, not
// 304, not a later range.
func TestPullEvents(t *testing.T) {
	for _, on := range []bool{true, false} {
		t.Run(fmt.Sprintf("pulls=%v", on), func(t *testing.T) {
			base, s := startNodeWithNATS(t, on)
			c := client{t, base}
			m := c.image("team-a/app", nil)
			c.expect(c.do("PUT", "/v2/team-a/app/manifests/v1", ct(ociManifest), m), 201, "")
			md := digest.FromBytes(m)
			var man struct{ Layers []struct{ Digest string } }
			json.Unmarshal(m, &man)
			layer := man.Layers[0].Digest
			ua := map[string]string{"User-Agent": "pull-test"}
			with := func(k, v string) map[string]string { return map[string]string{"User-Agent": "pull-test", k: v} }

			c.expect(c.do("GET", "/v2/team-a/app/manifests/v1", ua, nil), 200, "")
			c.expect(c.do("GET", "/v2/team-a/app/manifests/"+md.String(), ua, nil), 200, "")
			c.expect(c.do("HEAD", "/v2/team-a/app/manifests/v1", ua, nil), 200, "")
			c.expect(c.do("GET", "/v2/team-a/app/manifests/v1", with("If-None-Match", `"`+md.String()+`"`), nil), 304, "")
			c.expect(c.do("GET", "/v2/team-a/app/manifests/nope", ua, nil), 404, "")
			c.expect(c.do("GET", "/v2/team-a/app/blobs/"+layer, ua, nil), 200, "")
			c.expect(c.do("HEAD", "/v2/team-a/app/blobs/"+layer, ua, nil), 200, "")
			c.expect(c.do("GET", "/v2/team-a/app/blobs/"+layer, with("Range", "bytes=0-99"), nil), 206, "")
			c.expect(c.do("GET", "/v2/team-a/app/blobs/"+layer, with("Range", "bytes=100-"), nil), 206, "")
			c.expect(c.do("GET", "/v2/team-a/app/blobs/"+layer, with("If-None-Match", `"`+layer+`"`), nil), 304, "")

			var want []string
			if on {
				want = []string{
					"blob.pulled team-a/app@" + layer,
					"blob.pulled team-a/app@" + layer,
					"manifest.pulled team-a/app:v1",
					"manifest.pulled team-a/app@" + md.String(),
				}
				sort.Strings(want)
			}
			got := pulledEvents(t, s, len(want))
			if strings.Join(got, "\n") != strings.Join(want, "\n") {
				t.Fatalf("pull events:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
			}
		})
	}
}
