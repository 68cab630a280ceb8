package outbox

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/raft"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/opencontainers/go-digest"

	"github.com/berth-registry/berth/events"
	"github.com/berth-registry/berth/events/broker"
	"github.com/berth-registry/berth/fsm"
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// log plays Raft: it applies events to a real FSM with increasing
// indexes, and is the outbox's Committer.
type log struct {
	t   testing.TB
	mu  sync.Mutex
	f   *fsm.FSM
	idx uint64
}

func newLog(t testing.TB) *log { return &log{t: t, f: fsm.New(quiet)} }

// apply commits one event and reports its index and whether Apply
// accepted it.
func (l *log) apply(p events.Payload) (uint64, bool) {
	l.t.Helper()
	b, err := events.Encode(events.Event{Time: time.Date(2026, 11, 30, 10, 0, 0, 0, time.UTC), Payload: p})
	if err != nil {
		l.t.Fatal(err)
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.idx++
	res := l.f.Apply(&raft.Log{Index: l.idx, Type: raft.LogCommand, Data: b})
	return l.idx, res == nil
}

func (l *log) CommitCursor(_ context.Context, index uint64) error {
	if _, ok := l.apply(events.OutboxCursor{Index: index}); !ok {
		return fmt.Errorf("cursor %d refused", index)
	}
	return nil
}

// pushes applies n manifest pushes (each with its blob link) and one
// refused push, returning the indexes of the accepted pushes.
func (l *log) pushes(repo string, n int) []uint64 {
	var want []uint64
	for i := range n {
		blob := digest.FromString(fmt.Sprintf("%s-layer-%d", repo, i))
		l.apply(events.BlobLinked{Repo: repo, Digest: blob, Size: 1})
		if i == n/2 {
			if _, ok := l.apply(events.ManifestPut{Repo: repo, Digest: digest.FromString("refused"), Blobs: []digest.Digest{digest.FromString("nope")}}); ok {
				l.t.Fatal("a manifest with a missing blob was accepted")
			}
		}
		idx, ok := l.apply(events.ManifestPut{Repo: repo, Digest: digest.FromString(fmt.Sprintf("%s-m-%d", repo, i)), Blobs: []digest.Digest{blob}, Tags: []string{fmt.Sprintf("t%d", i)}})
		if !ok {
			l.t.Fatal("push refused")
		}
		want = append(want, idx)
	}
	return want
}

func embedded(t *testing.T) *broker.Broker {
	t.Helper()
	b, err := broker.Open(broker.Config{StoreDir: t.TempDir(), Stream: "BERTH_EVENTS", DuplicateWindow: 10 * time.Minute, Replicas: 1}, quiet)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Close)
	return b
}

// streamIndexes reads every message of the stream: the Berth-Index of
// each, in stream order, and checks the IDs match the indexes.
func streamIndexes(t *testing.T, js jetstream.JetStream) []uint64 {
	t.Helper()
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
	var out []uint64
	for seq := info.State.FirstSeq; seq <= info.State.LastSeq && info.State.Msgs > 0; seq++ {
		m, err := s.GetMsg(ctx, seq)
		if err != nil {
			t.Fatal(err)
		}
		idx, err := strconv.ParseUint(m.Header.Get(HeaderIndex), 10, 64)
		if err != nil {
			t.Fatal(err)
		}
		if id := m.Header.Get(HeaderMsgID); id != events.EventID("c1", idx) {
			t.Errorf("message %d: id %q, index %d", seq, id, idx)
		}
		out = append(out, idx)
	}
	return out
}

func connect(t *testing.T, url string) jetstream.JetStream {
	t.Helper()
	nc, err := nats.Connect(url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	return js
}

func waitUntil(t *testing.T, what string, timeout time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func start(t *testing.T, o *Outbox) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); o.Run(ctx) }()
	return func() { cancel(); <-done }
}

// A JetStream reachable over TCP, for tests that read the stream or stop
// the server.
func natsServer(t *testing.T, dir string, port int) *server.Server {
	t.Helper()
	srv, err := server.NewServer(&server.Options{Host: "127.0.0.1", Port: port, JetStream: true, StoreDir: dir, NoSigs: true, NoLog: true, SyncAlways: true})
	if err != nil {
		t.Fatal(err)
	}
	srv.Start()
	if !srv.ReadyForConnections(10 * time.Second) {
		t.Fatal("nats-server did not start")
	}
	return srv
}

func freePort(t *testing.T) int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func TestPublishesExactlyTheAcceptedEventsInOrder(t *testing.T) {
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
	want := l.pushes("app", 20)
	o := New(Config{CommitEvery: 50 * time.Millisecond}, FSMSource{l.f}, l, b, quiet)
	stop := start(t, o)
	defer stop()
	// Events applied while the outbox runs go out too.
	want = append(want, l.pushes("other/repo", 5)...)
	js := connect(t, url)
	waitUntil(t, "every event in the stream", 10*time.Second, func() bool { return len(streamIndexes(t, js)) >= len(want) })
	if got := streamIndexes(t, js); !slices.Equal(got, want) {
		t.Fatalf("stream holds indexes %v, want %v", got, want)
	}
	// The cursor is committed and the FSM drops the published rows.
	waitUntil(t, "the cursor to be committed", 5*time.Second, func() bool {
		c, _ := l.f.View().OutboxCursor()
		return c == want[len(want)-1]
	})
	if n := l.f.View().PendingCount(); n != 0 {
		t.Errorf("%d rows left after the cursor passed them all", n)
	}
	if st := o.Status(); st.Published != uint64(len(want)) || st.Error != "" {
		t.Errorf("status = %+v", st)
	}
}

// A new leader resumes from the committed cursor, which is behind what
// the old one published: JetStream drops the republished overlap.
func TestResumeRepublishesOverlapAndJetStreamDropsIt(t *testing.T) {
	dir, port := t.TempDir(), freePort(t)
	srv := natsServer(t, dir, port)
	defer srv.Shutdown()
	url := fmt.Sprintf("nats://127.0.0.1:%d", port)
	b, err := broker.Open(broker.Config{URLs: []string{url}, Stream: "BERTH_EVENTS", DuplicateWindow: 10 * time.Minute}, quiet)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	l := newLog(t)
	l.apply(events.ClusterIdentified{ID: "c1"})
	l.apply(events.OutboxCursor{Index: 0})
	want := l.pushes("app", 30)
	js := connect(t, url)

	// The first leader publishes all but never commits its cursor.
	first := New(Config{CommitEvery: time.Hour}, FSMSource{l.f}, l, b, quiet)
	stop := start(t, first)
	waitUntil(t, "the first leader's publishes", 10*time.Second, func() bool { return first.Status().Cursor == want[len(want)-1] })
	stop()
	if c, _ := l.f.View().OutboxCursor(); c != 0 {
		t.Fatalf("cursor committed at %d; the test needs it behind", c)
	}
	// Fenced: once its term's context is cancelled, the old leader's
	// outbox publishes nothing more.
	more := l.pushes("app2", 5)
	time.Sleep(300 * time.Millisecond)
	if n := len(streamIndexes(t, js)); n != len(want) {
		t.Fatalf("a stopped outbox published: %d messages, want %d", n, len(want))
	}
	// The second leader starts from cursor 0 and publishes everything again.
	want = append(want, more...)
	second := New(Config{CommitEvery: 20 * time.Millisecond}, FSMSource{l.f}, l, b, quiet)
	stop = start(t, second)
	defer stop()
	waitUntil(t, "the second leader's commit", 10*time.Second, func() bool {
		c, _ := l.f.View().OutboxCursor()
		return c == want[len(want)-1]
	})
	if second.Status().Published != uint64(len(want)) {
		t.Errorf("second leader published %d, want the whole overlap again (%d)", second.Status().Published, len(want))
	}
	got := streamIndexes(t, js)
	distinct := slices.Compact(slices.Sorted(slices.Values(got)))
	if len(got) != len(distinct) || !slices.Equal(got, want) {
		t.Fatalf("stream holds %d messages, %d distinct: %v; want %v", len(got), len(distinct), got, want)
	}
}

// While NATS is down writes go on; once it is back every event arrives.
func TestNATSDownThenBackDeliversEverything(t *testing.T) {
	dir, port := t.TempDir(), freePort(t)
	srv := natsServer(t, dir, port)
	url := fmt.Sprintf("nats://127.0.0.1:%d", port)
	b, err := broker.Open(broker.Config{URLs: []string{url}, Stream: "BERTH_EVENTS", DuplicateWindow: 10 * time.Minute, AckTimeout: time.Second}, quiet)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	l := newLog(t)
	l.apply(events.ClusterIdentified{ID: "c1"})
	l.apply(events.OutboxCursor{Index: 0})
	want := l.pushes("before", 5)
	o := New(Config{CommitEvery: 50 * time.Millisecond, MaxBackoff: 200 * time.Millisecond}, FSMSource{l.f}, l, b, quiet)
	stop := start(t, o)
	defer stop()
	waitUntil(t, "the first events", 10*time.Second, func() bool { return o.Status().Cursor == want[len(want)-1] })

	srv.Shutdown()
	srv.WaitForShutdown()
	want = append(want, l.pushes("during", 10)...)
	waitUntil(t, "the outage to show", 10*time.Second, func() bool { return o.Status().Error != "" })
	srv = natsServer(t, dir, port)
	defer srv.Shutdown()
	js := connect(t, url)
	waitUntil(t, "every event after NATS returned", 20*time.Second, func() bool { return o.Status().Cursor == want[len(want)-1] })
	if got := streamIndexes(t, js); !slices.Equal(got, want) {
		t.Fatalf("stream holds %v, want %v", got, want)
	}
	waitUntil(t, "the outage to clear", 5*time.Second, func() bool { return o.Status().Error == "" })
}

func TestEmbeddedServerPublishes(t *testing.T) {
	b := embedded(t)
	l := newLog(t)
	l.apply(events.ClusterIdentified{ID: "c1"})
	l.apply(events.OutboxCursor{Index: 0})
	want := l.pushes("app", 3)
	o := New(Config{CommitEvery: 20 * time.Millisecond}, FSMSource{l.f}, l, b, quiet)
	stop := start(t, o)
	defer stop()
	waitUntil(t, "the cursor", 10*time.Second, func() bool {
		c, _ := l.f.View().OutboxCursor()
		return c == want[len(want)-1]
	})
}

func TestIncompatibleStreamIsAClearError(t *testing.T) {
	want := jetstream.StreamConfig{Name: "S", Subjects: []string{"berth.>"}, Storage: jetstream.FileStorage, Duplicates: 10 * time.Minute}
	for _, tc := range []struct {
		name string
		got  jetstream.StreamConfig
		ok   bool
	}{
		{"same", want, true},
		{"longer window", jetstream.StreamConfig{Name: "S", Subjects: []string{"berth.>", "x"}, Storage: jetstream.FileStorage, Duplicates: time.Hour}, true},
		{"other subjects", jetstream.StreamConfig{Name: "S", Subjects: []string{"berth.manifest_pushed.>"}, Storage: jetstream.FileStorage, Duplicates: time.Hour}, false},
		{"short window", jetstream.StreamConfig{Name: "S", Subjects: []string{"berth.>"}, Storage: jetstream.FileStorage, Duplicates: 2 * time.Minute}, false},
		{"memory", jetstream.StreamConfig{Name: "S", Subjects: []string{"berth.>"}, Storage: jetstream.MemoryStorage, Duplicates: time.Hour}, false},
	} {
		err := broker.CheckStream(tc.got, want)
		if (err == nil) != tc.ok {
			t.Errorf("%s: err = %v, want ok=%v", tc.name, err, tc.ok)
		}
	}
}

// A snapshot restore under a running outbox moves the committed cursor
// back; the outbox follows it and republishes, and the stream keeps one
// copy of each event.
func TestRestoreUnderTheOutboxResumesFromItsCursor(t *testing.T) {
	dir, port := t.TempDir(), freePort(t)
	srv := natsServer(t, dir, port)
	defer srv.Shutdown()
	url := fmt.Sprintf("nats://127.0.0.1:%d", port)
	b, err := broker.Open(broker.Config{URLs: []string{url}, Stream: "BERTH_EVENTS", DuplicateWindow: 10 * time.Minute}, quiet)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	l := newLog(t)
	l.apply(events.ClusterIdentified{ID: "c1"})
	l.apply(events.OutboxCursor{Index: 0})
	want := l.pushes("app", 10)
	snap, _ := l.f.SnapshotAt()
	var buf bytes.Buffer
	if err := snap.Persist(&sink{Buffer: &buf}); err != nil {
		t.Fatal(err)
	}
	o := New(Config{CommitEvery: 20 * time.Millisecond}, FSMSource{l.f}, l, b, quiet)
	stop := start(t, o)
	defer stop()
	last := want[len(want)-1]
	waitUntil(t, "the first commit", 10*time.Second, func() bool { c, _ := l.f.View().OutboxCursor(); return c == last })
	published := o.Status().Published
	l.mu.Lock()
	err = l.f.Restore(io.NopCloser(&buf))
	l.mu.Unlock()
	if err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "the republish after the restore", 10*time.Second, func() bool { return o.Status().Published >= published+uint64(len(want)) })
	js := connect(t, url)
	if got := streamIndexes(t, js); !slices.Equal(got, want) {
		t.Fatalf("stream holds %v, want %v", got, want)
	}
}

// sink is a raft.SnapshotSink over a buffer.
type sink struct{ *bytes.Buffer }

func (sink) ID() string    { return "test" }
func (sink) Cancel() error { return nil }
func (sink) Close() error  { return nil }
