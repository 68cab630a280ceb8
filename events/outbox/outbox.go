// Package outbox publishes the cluster's accepted events to JetStream
// (ARCHITECTURE.md rule 8). It runs on the leader only, inside the
// leader's term context, so it stops the moment leadership is lost (rule
// 9).
//
// The FSM keeps every accepted, published entry after the committed
// cursor (fsm/outbox.go). The outbox publishes them in index order with
// asynchronous publishes in a bounded window, moves an in-memory cursor to
// the highest index JetStream acknowledged contiguously, and commits that
// cursor through the log about once a second. A new leader resumes after
// the committed cursor and republishes the overlap; JetStream's duplicate
// window drops it by the message ID ("<cluster id>:<index>").
package outbox

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/berth-registry/berth/events"
)

// Row is one accepted entry not yet published: its index and log bytes,
// and the quota warnings Apply derived from it.
type Row struct {
	Index    uint64
	Entry    []byte
	Warnings []events.QuotaWarning
}

// Source is the outbox's read of the FSM.
type Source interface {
	ClusterID() string
	// Cursor is the last committed publish cursor.
	Cursor() uint64
	// Pending lists up to limit rows after index after, in index order.
	Pending(after uint64, limit int) []Row
	// Changed is closed after the next entry is applied.
	Changed() <-chan struct{}
}

// Committer commits a publish cursor through the log.
type Committer interface {
	CommitCursor(ctx context.Context, index uint64) error
}

// Stream is the JetStream side: broker.Broker.
type Stream interface {
	// Ensure creates or checks the stream.
	Ensure(ctx context.Context) error
	PublishMsgAsync(m *nats.Msg) (jetstream.PubAckFuture, error)
}

// Config tunes the outbox; zero values take the defaults.
type Config struct {
	// Window bounds the publishes awaiting an acknowledgement. Above 1,
	// the stream keeps index order only while one server processes them
	// in order (the embedded server): on a NATS cluster, a stream leader
	// change can refuse message k and store k+1, and the retried k lands
	// after it. Nats-Expected-Last-Msg-Id would refuse k+1, but with
	// nats-server 2.15.3 it turned the R3 stream's followers into
	// "critical write error: last msgid mismatch" after such a change, so
	// a cluster publishes one message at a time (docs/design.md).
	Window int
	// CommitEvery is how often a moved cursor is committed.
	CommitEvery time.Duration
	// MaxBackoff bounds the wait between attempts while NATS is down.
	MaxBackoff time.Duration
}

// Headers of every published message.
const (
	HeaderMsgID = "Nats-Msg-Id" // JetStream deduplicates by it
	HeaderIndex = "Berth-Index" // the decimal Raft index
)

// Status is what the node shows of the outbox.
type Status struct {
	Running   bool   `json:"running"`
	Cursor    uint64 `json:"cursor"`    // highest index acknowledged, in order
	Committed uint64 `json:"committed"` // the cursor last committed through the log
	Published uint64 `json:"published"` // messages acknowledged in this term
	// Error is the current outage, empty while NATS answers.
	Error string    `json:"error,omitempty"`
	Since time.Time `json:"since,omitzero"`
}

// Outbox publishes; create one per leader term with New, then Run.
type Outbox struct {
	cfg    Config
	src    Source
	commit Committer
	stream Stream
	logger *slog.Logger

	mu       sync.Mutex
	st       Status
	failures int // attempts failed in the current outage
}

// New returns an outbox that has not started.
func New(cfg Config, src Source, commit Committer, stream Stream, logger *slog.Logger) *Outbox {
	if cfg.Window <= 0 {
		cfg.Window = 256
	}
	if cfg.CommitEvery <= 0 {
		cfg.CommitEvery = time.Second
	}
	if cfg.MaxBackoff <= 0 {
		cfg.MaxBackoff = 5 * time.Second
	}
	return &Outbox{cfg: cfg, src: src, commit: commit, stream: stream, logger: logger}
}

// Status returns a copy of the current status.
func (o *Outbox) Status() Status {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.st
}

// Run publishes until ctx ends (the leader's term is over).
func (o *Outbox) Run(ctx context.Context) {
	clusterID := o.waitClusterID(ctx)
	if clusterID == "" {
		return
	}
	acked := o.src.Cursor()
	committed := acked
	o.update(func(s *Status) { *s = Status{Running: true, Cursor: acked, Committed: committed} })
	defer o.update(func(s *Status) { s.Running = false })
	o.logger.Info("outbox publishing", "cursor", acked)

	ensured, commitFailing := false, false
	backoff := 250 * time.Millisecond
	lastCommit := time.Now()
	tick := time.NewTicker(o.cfg.CommitEvery)
	defer tick.Stop()
	for ctx.Err() == nil {
		changed := o.src.Changed()
		if c := o.src.Cursor(); c != committed {
			// Only this outbox commits cursors in its term, and a commit
			// returns once applied: a different cursor means the state
			// was restored from a snapshot. Resume from its cursor (and
			// its cluster ID); duplicates are dropped by the stream.
			o.logger.Info("outbox cursor changed under the outbox (state restored); resuming from it", "cursor", c, "was", committed)
			acked, committed = c, c
			if id := o.src.ClusterID(); id != "" {
				clusterID = id
			}
			o.update(func(s *Status) { s.Cursor, s.Committed = acked, committed })
		}
		var err error
		full := false
		if !ensured {
			if err = o.stream.Ensure(ctx); err == nil {
				ensured = true
			}
		}
		if ensured {
			rows := o.src.Pending(acked, o.cfg.Window)
			full = len(rows) == o.cfg.Window
			var n int
			n, err = o.publish(ctx, clusterID, rows)
			if n > 0 {
				acked = rows[n-1].Index
				o.update(func(s *Status) { s.Cursor, s.Published = acked, s.Published+uint64(n) })
			}
		}
		if acked > committed && time.Since(lastCommit) >= o.cfg.CommitEvery {
			if cerr := o.commit.CommitCursor(ctx, acked); cerr != nil {
				// Logged once until a commit succeeds (a full disk refuses
				// every write for a while); events still go out, and the
				// next leader republishes from the older cursor.
				if ctx.Err() == nil && !commitFailing {
					o.logger.Warn("cannot commit the outbox cursor; retrying", "cursor", acked, "err", cerr)
				}
				commitFailing = true
				lastCommit = time.Now()
			} else {
				commitFailing = false
				committed, lastCommit = acked, time.Now()
				o.update(func(s *Status) { s.Committed = committed })
			}
		}
		if err != nil {
			ensured = false // the stream may have gone too; check again
			o.down(err)
			select {
			case <-ctx.Done():
			case <-time.After(backoff):
			}
			backoff = min(2*backoff, o.cfg.MaxBackoff)
			continue
		}
		o.up()
		backoff = 250 * time.Millisecond
		if full {
			continue
		}
		select {
		case <-ctx.Done():
		case <-changed:
		case <-tick.C:
		}
	}
}

// waitClusterID waits until the cluster has its ID: every event ID
// starts with it.
func (o *Outbox) waitClusterID(ctx context.Context) string {
	for {
		ch := o.src.Changed()
		if id := o.src.ClusterID(); id != "" {
			return id
		}
		select {
		case <-ctx.Done():
			return ""
		case <-ch:
		}
	}
}

// publish sends rows asynchronously and waits for their acknowledgements
// in order. n is how many rows, from the first, JetStream acknowledged
// (every message of a row: its event and its quota warnings).
func (o *Outbox) publish(ctx context.Context, clusterID string, rows []Row) (n int, err error) {
	futures := make([][]jetstream.PubAckFuture, 0, len(rows))
publishing:
	for _, r := range rows {
		ms, merr := messages(clusterID, r)
		if merr != nil {
			return 0, merr
		}
		fs := make([]jetstream.PubAckFuture, 0, len(ms))
		for _, m := range ms {
			f, perr := o.stream.PublishMsgAsync(m)
			if perr != nil {
				err = fmt.Errorf("publish event %d: %w", r.Index, perr)
				break publishing // this row is not counted: it is sent again
			}
			fs = append(fs, f)
		}
		futures = append(futures, fs)
	}
	for i, fs := range futures {
		for _, f := range fs {
			select {
			case <-f.Ok():
			case ferr := <-f.Err():
				return i, fmt.Errorf("publish event %d: %w", rows[i].Index, ferr)
			case <-ctx.Done():
				return i, ctx.Err()
			}
		}
	}
	return len(futures), err
}

// messages renders a row as the messages the stream stores: the entry's
// event, if it is published, then its quota warnings.
func messages(clusterID string, r Row) ([]*nats.Msg, error) {
	ev, err := events.Decode(r.Entry)
	if err != nil {
		return nil, fmt.Errorf("outbox row %d: %w", r.Index, err)
	}
	var ces []events.CloudEvent
	if ce, ok := events.ToCloudEvent(clusterID, r.Index, ev); ok {
		ces = append(ces, ce)
	}
	for _, w := range r.Warnings {
		ces = append(ces, events.QuotaWarningEvent(clusterID, r.Index, ev, w))
	}
	if len(ces) == 0 {
		return nil, fmt.Errorf("outbox row %d holds a %s, which is never published", r.Index, ev.Type())
	}
	out := make([]*nats.Msg, len(ces))
	for i, ce := range ces {
		body, err := json.Marshal(ce)
		if err != nil {
			return nil, fmt.Errorf("outbox row %d: %w", r.Index, err)
		}
		m := nats.NewMsg(events.NATSSubject(ce))
		m.Data = body
		m.Header.Set(HeaderMsgID, ce.ID)
		m.Header.Set(HeaderIndex, strconv.FormatUint(r.Index, 10))
		m.Header.Set("Content-Type", events.CEContentType)
		out[i] = m
	}
	return out, nil
}

// down records a failed attempt; an outage is logged once when it starts.
func (o *Outbox) down(err error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.failures++
	if o.st.Error == "" {
		o.st.Since = time.Now()
		o.logger.Warn("NATS unavailable: events queue in the log and are published when it returns", "err", err)
	}
	o.st.Error = err.Error()
}

// up ends an outage with one summary line.
func (o *Outbox) up() {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.st.Error == "" {
		return
	}
	o.logger.Info("NATS available again: publishing the queued events", "outage", time.Since(o.st.Since).Round(time.Second), "failedAttempts", o.failures, "lastErr", o.st.Error)
	o.st.Error, o.st.Since, o.failures = "", time.Time{}, 0
}

func (o *Outbox) update(f func(*Status)) {
	o.mu.Lock()
	f(&o.st)
	o.mu.Unlock()
}
