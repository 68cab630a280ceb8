package pulls

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/opencontainers/go-digest"

	"github.com/berth-registry/berth/events"
	"github.com/berth-registry/berth/events/broker"
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// natsServer runs a JetStream server on a loopback port, so that a test
// can read the stream and stop the server.
func natsServer(t *testing.T) (*server.Server, string) {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	srv, err := server.NewServer(&server.Options{Host: "127.0.0.1", Port: port, JetStream: true, StoreDir: t.TempDir(), NoSigs: true, NoLog: true})
	if err != nil {
		t.Fatal(err)
	}
	srv.Start()
	if !srv.ReadyForConnections(10 * time.Second) {
		t.Fatal("nats-server did not start")
	}
	t.Cleanup(srv.Shutdown)
	return srv, fmt.Sprintf("nats://127.0.0.1:%d", port)
}

func openBroker(t *testing.T, url string) *broker.Broker {
	t.Helper()
	b, err := broker.Open(broker.Config{URLs: []string{url}, Stream: "BERTH_EVENTS", DuplicateWindow: 10 * time.Minute, AckTimeout: time.Second}, quiet)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Close)
	if err := b.Ensure(context.Background()); err != nil {
		t.Fatal(err)
	}
	return b
}

func run(t *testing.T, p *Publisher) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); p.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
}

func waitUntil(t *testing.T, what string, timeout time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func pull(i int) events.Pull {
	p := events.Pull{
		Kind: events.PullBlob, Time: time.Date(2026, 11, 30, 11, 0, 0, 0, time.UTC), Repository: "team-a/app",
		Digest: digest.FromString(fmt.Sprint(i)), Size: int64(i), UserAgent: "crane/0.20", RemoteAddr: "127.0.0.1:5555",
	}
	if i%2 == 0 {
		p.Kind, p.Tag, p.MediaType = events.PullManifest, "v1", "application/vnd.oci.image.manifest.v1+json"
	}
	return p
}

// readStream returns every CloudEvent in the stream, checking that each
// message's Nats-Msg-Id is the event's ID and its subject the event's.
func readStream(t *testing.T, url string) []events.CloudEvent {
	t.Helper()
	nc, err := nats.Connect(url)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
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
	info, err := s.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var out []events.CloudEvent
	for seq := info.State.FirstSeq; info.State.Msgs > 0 && seq <= info.State.LastSeq; seq++ {
		m, err := s.GetMsg(ctx, seq)
		if err != nil {
			t.Fatal(err)
		}
		var ce events.CloudEvent
		if err := json.Unmarshal(m.Data, &ce); err != nil {
			t.Fatal(err)
		}
		if id := m.Header.Get(jetstream.MsgIDHeader); id != ce.ID {
			t.Errorf("seq %d: Nats-Msg-Id %q, event id %q", seq, id, ce.ID)
		}
		if m.Subject != events.NATSSubject(ce) {
			t.Errorf("seq %d: subject %q, want %q", seq, m.Subject, events.NATSSubject(ce))
		}
		out = append(out, ce)
	}
	return out
}

func TestPullsArePublishedWithUniqueIDs(t *testing.T) {
	_, url := natsServer(t)
	b := openBroker(t, url)
	const n = 1000
	// Two publishers of one node ID stand for two starts of the node: the
	// boot part keeps their IDs apart (JetStream would drop a repeat).
	for range 2 {
		p := New(Config{ClusterID: func() string { return "c1" }, NodeID: "node-1", BatchWait: 20 * time.Millisecond}, b, quiet)
		run(t, p)
		for i := range n / 2 {
			p.Pulled(pull(i))
		}
		waitUntil(t, "pulls published", 10*time.Second, func() bool { return p.Stats().Published == n/2 })
		if st := p.Stats(); st.Dropped != 0 || st.Failed != 0 {
			t.Fatalf("stats %+v, want nothing dropped or failed", st)
		}
	}
	got := readStream(t, url)
	if len(got) != n {
		t.Fatalf("stream holds %d events, want %d", len(got), n)
	}
	ids := map[string]bool{}
	types := map[string]int{}
	for _, ce := range got {
		if ids[ce.ID] {
			t.Errorf("duplicate id %q", ce.ID)
		}
		ids[ce.ID] = true
		types[ce.Type]++
		// Never a logged event's "<cluster id>:<index>".
		if parts := strings.Split(ce.ID, ":"); len(parts) != 4 || parts[0] != "c1" || parts[1] != "node-1" {
			t.Errorf("id %q is not <cluster>:<node>:<boot>:<seq>", ce.ID)
		}
		if ce.Source != "berth://c1" || ce.Data.Node != "node-1" || ce.Data.Index != 0 || ce.Data.Repository != "team-a/app" ||
			ce.Data.UserAgent != "crane/0.20" || ce.Data.RemoteAddr != "127.0.0.1:5555" {
			t.Errorf("event %+v", ce)
		}
	}
	if types[events.CETypeManifestPulled] != n/2 || types[events.CETypeBlobPulled] != n/2 {
		t.Errorf("types %v", types)
	}
	wantSubj := map[string]string{
		events.CETypeManifestPulled: "berth.manifest_pulled.team-a.app",
		events.CETypeBlobPulled:     "berth.blob_pulled.team-a.app",
	}
	for _, ce := range got[:2] {
		if s := events.NATSSubject(ce); s != wantSubj[ce.Type] {
			t.Errorf("%s on %q, want %q", ce.Type, s, wantSubj[ce.Type])
		}
	}
}

// heldStream plays a JetStream that takes publishes but acknowledges
// nothing until released: a slow NATS.
type heldStream struct {
	mu      sync.Mutex
	calls   int
	release chan struct{}
}

type heldFuture struct {
	ok  chan *jetstream.PubAck
	msg *nats.Msg
}

func (f heldFuture) Ok() <-chan *jetstream.PubAck { return f.ok }
func (f heldFuture) Err() <-chan error            { return nil }
func (f heldFuture) Msg() *nats.Msg               { return f.msg }

func (s *heldStream) PublishMsgAsync(m *nats.Msg) (jetstream.PubAckFuture, error) {
	s.mu.Lock()
	s.calls++
	s.mu.Unlock()
	ok := make(chan *jetstream.PubAck, 1)
	go func() { <-s.release; ok <- &jetstream.PubAck{} }()
	return heldFuture{ok: ok, msg: m}, nil
}

func (s *heldStream) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.calls
}

func TestBatchesAreBoundedAndOneIsInFlight(t *testing.T) {
	s := &heldStream{release: make(chan struct{})}
	p := New(Config{NodeID: "n", BatchSize: 8, BatchWait: time.Hour, QueueSize: 100}, s, quiet)
	run(t, p)
	for i := range 20 {
		p.Pulled(pull(i))
	}
	// A full batch goes out at once (BatchWait is an hour); the next waits
	// for its acknowledgements.
	waitUntil(t, "first batch", 5*time.Second, func() bool { return s.count() == 8 })
	time.Sleep(100 * time.Millisecond)
	if c := s.count(); c != 8 {
		t.Fatalf("%d publishes before the first batch was acknowledged, want 8", c)
	}
	close(s.release)
	waitUntil(t, "second batch", 5*time.Second, func() bool { return s.count() == 16 })
	waitUntil(t, "acks", 5*time.Second, func() bool { return p.Stats().Published == 16 })
}

func TestBatchWaitSendsAPartialBatch(t *testing.T) {
	s := &heldStream{release: make(chan struct{})}
	close(s.release)
	p := New(Config{NodeID: "n", BatchSize: 256, BatchWait: 50 * time.Millisecond}, s, quiet)
	run(t, p)
	start := time.Now()
	p.Pulled(pull(1))
	waitUntil(t, "the lone pull", 5*time.Second, func() bool { return p.Stats().Published == 1 })
	if d := time.Since(start); d < 40*time.Millisecond {
		t.Errorf("published after %s, before the batch wait of 50ms", d)
	}
}

func TestSlowNATSDropsInsteadOfBlocking(t *testing.T) {
	s := &heldStream{release: make(chan struct{})}
	defer close(s.release)
	p := New(Config{NodeID: "n", BatchSize: 4, BatchWait: time.Millisecond, QueueSize: 16}, s, quiet)
	run(t, p)
	// The stream never acknowledges: a Pulled that waited for it would
	// never return. The bound is for a loaded CI machine under -race,
	// not a speed target (that is the benchmark's job).
	const n = 10000
	offered := make(chan struct{})
	go func() {
		defer close(offered)
		for i := range n {
			p.Pulled(pull(i))
		}
	}()
	select {
	case <-offered:
	case <-time.After(30 * time.Second):
		t.Fatalf("%d pulls not offered in 30s: the request path blocks on a stream that never acknowledges", n)
	}
	// At most one batch in flight plus a full queue were taken.
	st := p.Stats()
	if st.Dropped < n-16-4 || st.Published != 0 {
		t.Fatalf("stats %+v: want at least %d dropped, none published", st, n-20)
	}
}

func TestNATSDownCountsFailuresAndNeverBlocks(t *testing.T) {
	srv, url := natsServer(t)
	b := openBroker(t, url)
	p := New(Config{ClusterID: func() string { return "c1" }, NodeID: "n", BatchWait: 10 * time.Millisecond, QueueSize: 64}, b, quiet)
	run(t, p)
	p.Pulled(pull(0))
	waitUntil(t, "publish while up", 5*time.Second, func() bool { return p.Stats().Published == 1 })
	srv.Shutdown()
	srv.WaitForShutdown()
	waitUntil(t, "client notices", 5*time.Second, func() bool { return !b.Connected() })
	start := time.Now()
	for i := range 1000 {
		p.Pulled(pull(i))
	}
	// With NATS down each publish waits for its timeout; a request path
	// that waited for them would take minutes for 1000 pulls.
	if d := time.Since(start); d > 15*time.Second {
		t.Fatalf("offering pulls with NATS down took %s", d)
	}
	waitUntil(t, "every pull counted as failed or dropped", 10*time.Second, func() bool {
		st := p.Stats()
		return st.Failed+st.Dropped == 1000
	})
	if st := p.Stats(); st.Published != 1 || st.Failed == 0 {
		t.Fatalf("stats %+v: want 1 published and failures counted", st)
	}
}

// BenchmarkPulled is the cost a request pays: building the Pull and
// offering it to the queue (a drain goroutine keeps it from filling).
func BenchmarkPulled(b *testing.B) {
	p := New(Config{NodeID: "n"}, nil, quiet)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for range p.q {
		}
	}()
	pl := pull(1)
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		pl.Time = time.Now()
		p.Pulled(pl)
	}
	b.StopTimer()
	close(p.q)
	<-done
}

// BenchmarkPulledQueueFull is the cost when the queue is full (drop).
func BenchmarkPulledQueueFull(b *testing.B) {
	p := New(Config{NodeID: "n", QueueSize: 1}, nil, quiet)
	pl := pull(1)
	p.Pulled(pl)
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		p.Pulled(pl)
	}
}
