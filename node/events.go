package node

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/berth-registry/berth/events"
	"github.com/berth-registry/berth/events/broker"
	"github.com/berth-registry/berth/events/outbox"
	"github.com/berth-registry/berth/events/pulls"
	"github.com/berth-registry/berth/fsm"
)

// nodeEvents is this node's part in publishing events: the NATS
// connection (and embedded server), and the outbox while it leads.
type nodeEvents struct {
	broker *broker.Broker
	cur    atomic.Pointer[outbox.Outbox] // the outbox of the current term, if leading
	pulls  *pulls.Publisher              // nil unless events.pulls (pulls.go)
}

// EventsStatus is what a node shows of the event outbox (clusterctl
// status). Lag is the applied index minus the cursor acknowledged by
// JetStream, in log entries.
type EventsStatus struct {
	State     string `json:"state"` // off, publishing, unavailable, standby
	Cursor    uint64 `json:"cursor"`
	Published uint64 `json:"published"`
	Lag       uint64 `json:"lag"`
	Error     string `json:"error,omitempty"`
	// Pulls counts pull events when events.pulls is on.
	Pulls *pulls.Stats `json:"pulls,omitempty"`
}

// openEvents connects to NATS (starting the embedded server on a single
// node). A stream with incompatible settings stops the start; NATS not
// answering does not: the outbox keeps trying and the status shows it.
func openEvents(cfg Config, logger *slog.Logger) (*nodeEvents, error) {
	if !cfg.EventsEnabled() {
		return nil, nil
	}
	n := cfg.Events.NATS
	b, err := broker.Open(broker.Config{
		URLs: n.URLs, Credentials: n.Credentials, CAFile: n.TLS.CAFile, CertFile: n.TLS.CertFile, KeyFile: n.TLS.KeyFile,
		StoreDir: broker.StoreDir(cfg.Storage.DataDir), Listen: n.Listen, Token: n.Token,
		Stream: cfg.Events.Stream, DuplicateWindow: cfg.Events.DuplicateWindow, Replicas: cfg.Events.Replicas,
	}, logger)
	if err != nil {
		return nil, fmt.Errorf("events: %w", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := b.Ensure(ctx); err != nil {
		if errors.Is(err, broker.ErrIncompatibleStream) {
			b.Close()
			return nil, fmt.Errorf("events: %w", err)
		}
		logger.Warn("NATS not reachable at start: events queue in the log until it is", "urls", n.URLs, "err", err)
	}
	return &nodeEvents{broker: b}, nil
}

func (e *nodeEvents) close() {
	if e != nil {
		e.broker.Close()
	}
}

// runOutbox names the cluster and turns the outbox on (once, through the
// log), then publishes until the term ends. It runs only on the leader,
// in the term's context (rule 9).
func (n *Node) runOutbox(ctx context.Context) {
	if n.fsm.View().ClusterID() == "" {
		id := make([]byte, 8)
		rand.Read(id)
		// Another leader may win the race; the FSM keeps the first.
		n.proposeUntilDone(ctx, events.ClusterIdentified{ID: hex.EncodeToString(id)}, func(v *fsm.View) bool { return v.ClusterID() != "" })
	}
	if _, on := n.fsm.View().OutboxCursor(); !on {
		n.proposeUntilDone(ctx, events.OutboxCursor{Index: 0}, func(v *fsm.View) bool { _, on := v.OutboxCursor(); return on })
	}
	if ctx.Err() != nil {
		return
	}
	cfg := outbox.Config{}
	if len(n.cfg.Events.NATS.URLs) > 0 {
		cfg.Window = 1 // index order across NATS leader changes (outbox.Config.Window)
	}
	o := outbox.New(cfg, fsmOutboxSource{n.fsm}, cursorCommitter{n}, n.events.broker, n.logger)
	n.events.cur.Store(o)
	defer n.events.cur.CompareAndSwap(o, nil)
	o.Run(ctx)
}

// proposeUntilDone proposes p until done holds (a refusal may mean a
// racing proposal did the job) or the term ends. A failure is logged
// once: during a rolling upgrade the generation gate refuses p until
// every voter decodes it.
func (n *Node) proposeUntilDone(ctx context.Context, p events.Payload, done func(*fsm.View) bool) {
	logged := false
	for ctx.Err() == nil && !done(n.fsm.View()) {
		_, err := n.Propose(ctx, p)
		if err == nil || done(n.fsm.View()) {
			return
		}
		if !logged && ctx.Err() == nil {
			n.logger.Warn("cannot commit "+string(p.EventType())+" yet; retrying", "err", err)
			logged = true
		}
		select {
		case <-ctx.Done():
		case <-time.After(2 * time.Second):
		}
	}
}

type cursorCommitter struct{ n *Node }

func (c cursorCommitter) CommitCursor(ctx context.Context, index uint64) error {
	_, err := c.n.Propose(ctx, events.OutboxCursor{Index: index})
	return err
}

// eventsStatus reports the outbox for NodeStatus.
func (n *Node) eventsStatus() *EventsStatus {
	if n.events == nil {
		return &EventsStatus{State: "off"}
	}
	applied := n.fsm.AppliedIndex()
	lag := func(cursor uint64) uint64 {
		if applied > cursor {
			return applied - cursor
		}
		return 0
	}
	if o := n.events.cur.Load(); o != nil {
		st := o.Status()
		es := &EventsStatus{State: "publishing", Cursor: st.Cursor, Published: st.Published, Lag: lag(st.Cursor), Error: st.Error}
		if st.Error != "" {
			es.State = "unavailable"
		}
		es.Pulls = n.pullStats()
		return es
	}
	cursor, _ := n.fsm.View().OutboxCursor()
	es := &EventsStatus{State: "standby", Cursor: cursor, Lag: lag(cursor)}
	if !n.events.broker.Connected() {
		es.Error = "not connected to NATS"
	}
	es.Pulls = n.pullStats()
	return es
}

// fsmOutboxSource reads the outbox's rows from the local FSM. The leader's
// FSM holds every committed entry of its term once it applied them.
type fsmOutboxSource struct{ f *fsm.FSM }

func (s fsmOutboxSource) ClusterID() string { return s.f.View().ClusterID() }

func (s fsmOutboxSource) Cursor() uint64 {
	c, _ := s.f.View().OutboxCursor()
	return c
}

func (s fsmOutboxSource) Pending(after uint64, limit int) []outbox.Row {
	rows := s.f.View().Pending(after, limit)
	out := make([]outbox.Row, len(rows))
	for i, r := range rows {
		out[i] = outbox.Row{Index: r.Index, Entry: r.Entry, Warnings: r.Warnings}
	}
	return out
}

func (s fsmOutboxSource) Changed() <-chan struct{} { return s.f.Changed() }
