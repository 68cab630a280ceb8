package webhook

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/opencontainers/go-digest"

	"github.com/berth-registry/berth/events"
)

const testCluster = "c1"

// startJetStream runs an embedded nats-server with JetStream in a temp dir
// and creates the events stream the outbox would.
func startJetStream(t *testing.T) jetstream.JetStream {
	t.Helper()
	_, js := startJetStreamServer(t)
	return js
}

// connect opens another client connection, as another node would.
func connect(t *testing.T, s *server.Server) (*nats.Conn, jetstream.JetStream) {
	t.Helper()
	nc, err := nats.Connect(s.ClientURL())
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	return nc, js
}

func startJetStreamServer(t *testing.T) (*server.Server, jetstream.JetStream) {
	t.Helper()
	s, err := server.NewServer(&server.Options{
		Host: "127.0.0.1", Port: -1, JetStream: true, StoreDir: t.TempDir(), NoLog: true, NoSigs: true,
	})
	if err != nil {
		t.Fatalf("nats-server: %v", err)
	}
	go s.Start()
	if !s.ReadyForConnections(10 * time.Second) {
		t.Fatal("nats-server did not start")
	}
	t.Cleanup(s.Shutdown)
	_, js := connect(t, s)
	ctx := context.Background()
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{
		Name: DefaultEventsStream, Subjects: []string{"berth.>"}, Storage: jetstream.FileStorage,
	}); err != nil {
		t.Fatalf("create events stream: %v", err)
	}
	return s, js
}

// publisher publishes events the way the outbox does (the contract in
// events/cloudevent.go), with increasing Raft indexes.
type publisher struct {
	t     *testing.T
	js    jetstream.JetStream
	index uint64
}

func (p *publisher) publish(typ, repo string) events.CloudEvent {
	p.t.Helper()
	p.index += 3 // indexes are not dense: other entries sit between events
	ce := events.CloudEvent{
		SpecVersion: "1.0", ID: events.EventID(testCluster, p.index), Source: "berth://" + testCluster,
		Type: typ, Time: time.Date(2026, 11, 30, 10, 0, 0, 0, time.UTC).Add(time.Duration(p.index) * time.Second),
		DataContentType: "application/json",
		Data: events.CloudEventData{
			Repository: repo, Digest: digest.FromString(fmt.Sprint(p.index)), Tag: "v" + strconv.FormatUint(p.index, 10),
			MediaType: "application/vnd.oci.image.manifest.v1+json", Size: 1234, Actor: "alice",
			UserAgent: "crane/0.20", RequestID: "req-" + strconv.FormatUint(p.index, 10), Index: p.index,
		},
	}
	if repo != "" {
		ce.Subject = repo + ":" + ce.Data.Tag
	}
	body, err := json.Marshal(ce)
	if err != nil {
		p.t.Fatal(err)
	}
	msg := nats.NewMsg(events.NATSSubject(ce))
	msg.Data = body
	msg.Header.Set(jetstream.MsgIDHeader, ce.ID)
	msg.Header.Set(IndexHeader, strconv.FormatUint(p.index, 10))
	if _, err := p.js.PublishMsg(context.Background(), msg); err != nil {
		p.t.Fatalf("publish %s: %v", ce.ID, err)
	}
	return ce
}

// received is one request a receiver got.
type received struct {
	Status  int
	Header  http.Header
	Body    []byte
	Event   events.CloudEvent // decoded when the body is a CloudEvent
	Arrival time.Time
}

// receiver is an httptest server that records every request and answers
// with what respond says (200 when nil).
type receiver struct {
	*httptest.Server
	mu      sync.Mutex
	got     []received
	respond func(n int, r *http.Request) int
}

func newReceiver(t *testing.T, respond func(n int, r *http.Request) int) *receiver {
	rc := &receiver{respond: respond}
	rc.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		rc.mu.Lock()
		n := len(rc.got)
		rc.mu.Unlock()
		status := http.StatusOK
		if rc.respond != nil {
			status = rc.respond(n, r)
		}
		rec := received{Status: status, Header: r.Header.Clone(), Body: body, Arrival: time.Now()}
		_ = json.Unmarshal(body, &rec.Event)
		rc.mu.Lock()
		rc.got = append(rc.got, rec)
		rc.mu.Unlock()
		w.WriteHeader(status)
	}))
	t.Cleanup(rc.Close)
	return rc
}

func (rc *receiver) requests() []received {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return append([]received(nil), rc.got...)
}

// deliveredIDs are the ids of events answered with a 2xx, in arrival order.
func (rc *receiver) delivered() []events.CloudEvent {
	var out []events.CloudEvent
	for _, r := range rc.requests() {
		if r.Status >= 200 && r.Status < 300 {
			out = append(out, r.Event)
		}
	}
	return out
}

func newTestManager(t *testing.T, js jetstream.JetStream, mod func(*Options)) *Manager {
	t.Helper()
	opts := Options{
		JetStream: js, ClusterID: testCluster, AckWait: 2 * time.Second,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	}
	if mod != nil {
		mod(&opts)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	m, err := NewManager(ctx, opts)
	if err != nil {
		t.Fatalf("NewManager: %v", err)
	}
	return m
}

// runManager runs m.Run until the returned stop is called (or the test ends).
func runManager(t *testing.T, m *Manager) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := m.Run(ctx); err != nil {
			t.Errorf("Run: %v", err)
		}
	}()
	var once sync.Once
	stop = func() { once.Do(func() { cancel(); <-done }) }
	t.Cleanup(stop)
	return stop
}

func testHook(name, url string) Webhook {
	return Webhook{
		Name: name, URL: url, Enabled: true, Timeout: 2 * time.Second,
		InitialBackoff: 20 * time.Millisecond, MaxBackoff: 200 * time.Millisecond, MaxDeliveries: 1000,
	}
}

func mustSync(t *testing.T, m *Manager, hooks ...Webhook) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := m.Sync(ctx, hooks); err != nil {
		t.Fatalf("Sync: %v", err)
	}
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", d, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// uniqueIDs dedups by id, as a receiver does.
func uniqueIDs(evs []events.CloudEvent) map[string]int {
	ids := map[string]int{}
	for _, e := range evs {
		ids[e.ID]++
	}
	return ids
}
