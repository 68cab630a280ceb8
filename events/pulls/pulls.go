// Package pulls publishes pull events (dev.berth.manifest.pulled,
// dev.berth.blob.pulled) straight from the node that served the read,
// not through Raft: a read must stay a read. They are best effort: the
// request only offers its pull to a bounded queue (dropped and counted
// when full, never waited for), and a goroutine publishes the queue in
// batches with JetStream asynchronous publishes. Nothing replays a pull
// that was dropped or whose publish failed.
package pulls

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/berth-registry/berth/events"
)

// Defaults of Config's zero fields.
const (
	DefaultQueueSize = 8192
	DefaultBatchSize = 256
	DefaultBatchWait = 100 * time.Millisecond
)

// Stream is where events go (a *broker.Broker).
type Stream interface {
	PublishMsgAsync(m *nats.Msg) (jetstream.PubAckFuture, error)
}

// Config configures a Publisher.
type Config struct {
	// ClusterID returns the cluster's ID (the event ID's and source's
	// first part); it may be empty until the leader names the cluster.
	ClusterID func() string
	// NodeID is this node's ID, in every event's ID and data.node.
	NodeID string
	// QueueSize bounds the pulls waiting to be published; more are dropped.
	QueueSize int
	// BatchSize and BatchWait bound a batch: it goes out when it is full
	// or when its first pull has waited BatchWait.
	BatchSize int
	BatchWait time.Duration
}

// Stats counts pulls: Published were acknowledged by JetStream; Dropped
// found the queue full; Failed were sent but not acknowledged (NATS down
// or slow). Neither dropped nor failed pulls are retried.
type Stats struct {
	Published uint64 `json:"published"`
	Dropped   uint64 `json:"dropped"`
	Failed    uint64 `json:"failed"`
}

// Publisher queues pulls and publishes them. Pulled is safe for
// concurrent use; Run runs once.
type Publisher struct {
	cfg    Config
	stream Stream
	logger *slog.Logger
	q      chan events.Pull
	boot   string
	seq    uint64 // owned by Run

	published, dropped, failed atomic.Uint64
	down                       bool // owned by Run: the last batch failed
}

// New returns a Publisher; call Run to start publishing.
func New(cfg Config, stream Stream, logger *slog.Logger) *Publisher {
	if cfg.QueueSize <= 0 {
		cfg.QueueSize = DefaultQueueSize
	}
	if cfg.BatchSize <= 0 {
		cfg.BatchSize = DefaultBatchSize
	}
	if cfg.BatchWait <= 0 {
		cfg.BatchWait = DefaultBatchWait
	}
	if cfg.ClusterID == nil {
		cfg.ClusterID = func() string { return "" }
	}
	// The boot part keeps IDs unique across restarts: the sequence starts
	// again at 1, and JetStream would drop a repeated Nats-Msg-Id inside
	// its duplicate window.
	var b [8]byte
	rand.Read(b[:])
	return &Publisher{cfg: cfg, stream: stream, logger: logger, q: make(chan events.Pull, cfg.QueueSize), boot: hex.EncodeToString(b[:])}
}

// Pulled offers a pull to the queue. It never blocks: when the queue is
// full the pull is dropped and counted.
func (p *Publisher) Pulled(pl events.Pull) {
	select {
	case p.q <- pl:
	default:
		p.dropped.Add(1)
	}
}

// Stats returns the counters.
func (p *Publisher) Stats() Stats {
	return Stats{Published: p.published.Load(), Dropped: p.dropped.Load(), Failed: p.failed.Load()}
}

// Run publishes batches until ctx ends. Pulls still queued then are lost.
func (p *Publisher) Run(ctx context.Context) {
	batch := make([]events.Pull, 0, p.cfg.BatchSize)
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	for {
		batch = batch[:0]
		select {
		case <-ctx.Done():
			return
		case pl := <-p.q:
			batch = append(batch, pl)
		}
		timer.Reset(p.cfg.BatchWait)
	fill:
		for len(batch) < p.cfg.BatchSize {
			select {
			case <-ctx.Done():
				timer.Stop()
				return
			case pl := <-p.q:
				batch = append(batch, pl)
			case <-timer.C:
				break fill
			}
		}
		timer.Stop()
		p.publish(ctx, batch)
	}
}

// publish sends one batch asynchronously and waits for its
// acknowledgements, so that at most one batch is in flight.
func (p *Publisher) publish(ctx context.Context, batch []events.Pull) {
	clusterID := p.cfg.ClusterID()
	futures := make([]jetstream.PubAckFuture, 0, len(batch))
	var firstErr error
	for i, pl := range batch {
		p.seq++
		id := events.PullEventID(clusterID, p.cfg.NodeID, p.boot, p.seq)
		m, err := message(events.PullCloudEvent(clusterID, p.cfg.NodeID, id, pl))
		if err == nil {
			var f jetstream.PubAckFuture
			if f, err = p.stream.PublishMsgAsync(m); err == nil {
				futures = append(futures, f)
				continue
			}
		}
		// NATS refuses at once while disconnected: the rest of the batch
		// would fail the same way.
		firstErr = err
		p.failed.Add(uint64(len(batch) - i))
		break
	}
	for _, f := range futures {
		select {
		case <-f.Ok():
			p.published.Add(1)
		case err := <-f.Err():
			p.failed.Add(1)
			if firstErr == nil {
				firstErr = err
			}
		case <-ctx.Done():
			return
		}
	}
	p.outage(firstErr)
}

// outage logs the start and end of a run of failing batches once each.
func (p *Publisher) outage(err error) {
	switch {
	case err != nil && !p.down:
		p.down = true
		p.logger.Warn("pull events are being dropped: NATS does not acknowledge them", "err", err)
	case err == nil && p.down:
		p.down = false
		p.logger.Info("pull events are published again", "stats", p.Stats())
	}
}

// message renders a pull event as the stream stores it.
func message(ce events.CloudEvent) (*nats.Msg, error) {
	body, err := json.Marshal(ce)
	if err != nil {
		return nil, err
	}
	m := nats.NewMsg(events.NATSSubject(ce))
	m.Data = body
	m.Header.Set(jetstream.MsgIDHeader, ce.ID)
	m.Header.Set("Content-Type", events.CEContentType)
	return m, nil
}
