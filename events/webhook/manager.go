package webhook

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"reflect"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// ConsumerPrefix starts the name of every webhook's durable consumer on
// the events stream; Sync deletes consumers with this prefix whose webhook
// is gone.
const ConsumerPrefix = "berth-webhook-"

// Default stream names.
const (
	DefaultEventsStream     = "BERTH_EVENTS"
	DefaultDeliveriesStream = "BERTH_WEBHOOK_DELIVERIES"
	DefaultDeadLetterStream = "BERTH_WEBHOOK_DEADLETTERS"
)

// Options configures a Manager; zero fields take the documented defaults.
type Options struct {
	JetStream jetstream.JetStream
	// Stream is the events stream the outbox publishes to (BERTH_EVENTS).
	Stream string
	// DeliveriesStream keeps recent attempts (BERTH_WEBHOOK_DELIVERIES),
	// at most DeliveriesPerWebhook (100) per webhook.
	DeliveriesStream     string
	DeliveriesPerWebhook int64
	// DeadLetterStream keeps dead letters (BERTH_WEBHOOK_DEADLETTERS), at
	// most DeadLettersPerWebhook (10000) per webhook; beyond that the
	// oldest are dropped, so the list cannot grow without bound.
	DeadLetterStream      string
	DeadLettersPerWebhook int64
	// Replicas of the two streams above (1).
	Replicas int
	// ClusterID names the source of ping events.
	ClusterID string
	// Source fills the Distribution format's source and target URL.
	Source Source
	// Concurrency bounds simultaneous HTTP requests per webhook (8).
	Concurrency int
	// MaxPending bounds the un-acknowledged events per webhook held in
	// memory (1000): the consumer's MaxAckPending.
	MaxPending int
	// AckWait is the consumer's ack wait (30s). Events being retried are
	// kept alive with InProgress; after a crash they come back after AckWait.
	AckWait time.Duration
	// Transport sends the requests (a clone of http.DefaultTransport).
	Transport http.RoundTripper
	Metrics   Metrics
	Logger    *slog.Logger
	Now       func() time.Time
}

// Manager keeps one durable consumer per webhook and, while Run runs,
// delivers from each. The node runs Run on the leader only, in a
// leader-term context; a new leader resumes from the durable consumers.
// Deliveries and DeadLetters read replicated streams and work on any node.
type Manager struct {
	opts    Options
	js      jetstream.JetStream
	client  *http.Client
	metrics Metrics
	log     *slog.Logger

	// opMu serializes Sync and RedeliverFrom, which both shape consumers.
	opMu sync.Mutex

	mu      sync.Mutex
	hooks   map[string]Webhook
	runCtx  context.Context // nil while Run is not running
	workers map[string]*workerHandle
}

type workerHandle struct {
	cfg    Webhook
	cancel context.CancelFunc
	done   chan struct{}
}

// NewManager checks opts and creates (or updates) the deliveries and
// dead-letter streams.
func NewManager(ctx context.Context, opts Options) (*Manager, error) {
	if opts.JetStream == nil {
		return nil, errors.New("webhook manager: no JetStream handle")
	}
	setDefault(&opts.Stream, DefaultEventsStream)
	setDefault(&opts.DeliveriesStream, DefaultDeliveriesStream)
	setDefault(&opts.DeadLetterStream, DefaultDeadLetterStream)
	setDefault(&opts.DeliveriesPerWebhook, 100)
	setDefault(&opts.DeadLettersPerWebhook, 10000)
	setDefault(&opts.Replicas, 1)
	setDefault(&opts.Concurrency, 8)
	setDefault(&opts.MaxPending, 1000)
	setDefault(&opts.AckWait, 30*time.Second)
	if opts.Transport == nil {
		opts.Transport = http.DefaultTransport.(*http.Transport).Clone()
	}
	if opts.Metrics == nil {
		opts.Metrics = nopMetrics{}
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	m := &Manager{
		opts: opts, js: opts.JetStream, client: newHTTPClient(opts.Transport),
		metrics: opts.Metrics, log: opts.Logger,
		hooks: map[string]Webhook{}, workers: map[string]*workerHandle{},
	}
	if err := m.ensureStreams(ctx); err != nil {
		return nil, err
	}
	return m, nil
}

func setDefault[T comparable](v *T, def T) {
	var zero T
	if *v == zero {
		*v = def
	}
}

func consumerName(webhook string) string { return ConsumerPrefix + webhook }

// Sync makes the consumers match hooks: it creates or updates one per
// webhook, deletes those of webhooks that are gone (with their delivery
// records and dead letters), and, while Run runs, starts, restarts or stops
// delivery. A webhook with a bad configuration is reported in the error
// and its existing consumer is kept, so no event is lost while it is fixed.
func (m *Manager) Sync(ctx context.Context, hooks []Webhook) error {
	m.opMu.Lock()
	defer m.opMu.Unlock()
	var errs []error
	keep := map[string]bool{}
	valid := map[string]Webhook{}
	for _, h := range hooks {
		keep[h.Name] = true
		n, err := h.Normalize()
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if _, dup := valid[n.Name]; dup {
			errs = append(errs, fmt.Errorf("webhook %s: defined twice", n.Name))
			continue
		}
		if err := m.ensureConsumer(ctx, n); err != nil {
			errs = append(errs, err)
			continue
		}
		valid[n.Name] = n
	}
	stream, err := m.js.Stream(ctx, m.opts.Stream)
	if err != nil {
		return errors.Join(append(errs, fmt.Errorf("open events stream %s: %w", m.opts.Stream, err))...)
	}
	var stale []string
	names := stream.ConsumerNames(ctx)
	for c := range names.Name() {
		if name, ok := strings.CutPrefix(c, ConsumerPrefix); ok && !keep[name] {
			stale = append(stale, name)
		}
	}
	if err := names.Err(); err != nil {
		errs = append(errs, fmt.Errorf("list consumers of %s: %w", m.opts.Stream, err))
	}

	m.mu.Lock()
	defer m.mu.Unlock()
	for name, h := range m.hooks {
		if _, ok := valid[name]; !ok && keep[name] {
			valid[name] = h // keep delivering with the last good configuration
		}
	}
	m.hooks = valid
	for _, name := range stale {
		m.stopWorkerLocked(name)
		if err := stream.DeleteConsumer(ctx, consumerName(name)); err != nil && !errors.Is(err, jetstream.ErrConsumerNotFound) {
			errs = append(errs, fmt.Errorf("delete consumer of removed webhook %s: %w", name, err))
		}
		m.purgeRecords(ctx, name)
	}
	m.reconcileLocked()
	return errors.Join(errs...)
}

func (m *Manager) purgeRecords(ctx context.Context, name string) {
	for stream, subj := range map[string]string{
		m.opts.DeliveriesStream: deliveriesSubjectRoot + name,
		m.opts.DeadLetterStream: deadLettersSubjectRoot + name,
	} {
		s, err := m.js.Stream(ctx, stream)
		if err == nil {
			err = s.Purge(ctx, jetstream.WithPurgeSubject(subj))
		}
		if err != nil {
			m.log.Warn("webhook: purging records of a removed webhook failed", "webhook", name, "stream", stream, "err", err)
		}
	}
}

// ensureConsumer creates the webhook's durable consumer or updates its
// mutable settings; where it starts is fixed when it is created.
func (m *Manager) ensureConsumer(ctx context.Context, wh Webhook) error {
	stream, err := m.js.Stream(ctx, m.opts.Stream)
	if err != nil {
		return fmt.Errorf("webhook %s: open events stream %s: %w", wh.Name, m.opts.Stream, err)
	}
	cfg := m.consumerConfig(wh.Name)
	existing, err := stream.Consumer(ctx, cfg.Durable)
	switch {
	case err == nil:
		old := existing.CachedInfo().Config
		cfg.DeliverPolicy, cfg.OptStartSeq, cfg.OptStartTime = old.DeliverPolicy, old.OptStartSeq, old.OptStartTime
	case errors.Is(err, jetstream.ErrConsumerNotFound):
		if wh.StartIndex > 0 {
			seq, err := m.seqForIndex(ctx, stream, wh.StartIndex)
			if err != nil {
				return fmt.Errorf("webhook %s: %w", wh.Name, err)
			}
			cfg.DeliverPolicy, cfg.OptStartSeq = jetstream.DeliverByStartSequencePolicy, seq
		}
	default:
		return fmt.Errorf("webhook %s: look up consumer %s: %w", wh.Name, cfg.Durable, err)
	}
	if _, err := stream.CreateOrUpdateConsumer(ctx, cfg); err != nil {
		return fmt.Errorf("webhook %s: create or update consumer %s: %w", wh.Name, cfg.Durable, err)
	}
	return nil
}

func (m *Manager) consumerConfig(name string) jetstream.ConsumerConfig {
	return jetstream.ConsumerConfig{
		Durable:       consumerName(name),
		Description:   "Berth webhook " + name,
		DeliverPolicy: jetstream.DeliverNewPolicy,
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       m.opts.AckWait,
		MaxDeliver:    -1, // retries are counted here, against MaxDeliveries
		MaxAckPending: m.opts.MaxPending,
	}
}

// Run delivers for every enabled webhook until ctx ends, then stops all
// delivery, handing un-delivered events back to the consumer in log order.
func (m *Manager) Run(ctx context.Context) error {
	m.mu.Lock()
	if m.runCtx != nil {
		m.mu.Unlock()
		return errors.New("webhook manager: Run is already running")
	}
	m.runCtx = ctx
	m.reconcileLocked()
	m.mu.Unlock()

	<-ctx.Done()

	m.mu.Lock()
	defer m.mu.Unlock()
	for name := range m.workers {
		m.stopWorkerLocked(name)
	}
	m.runCtx = nil
	return nil
}

// reconcileLocked makes the running workers match m.hooks.
func (m *Manager) reconcileLocked() {
	for name, h := range m.workers {
		if cfg, ok := m.hooks[name]; !ok || !cfg.Enabled || !reflect.DeepEqual(cfg, h.cfg) {
			m.stopWorkerLocked(name)
		}
	}
	if m.runCtx == nil || m.runCtx.Err() != nil {
		return
	}
	for name, cfg := range m.hooks {
		if _, running := m.workers[name]; running || !cfg.Enabled {
			continue
		}
		ctx, cancel := context.WithCancel(m.runCtx)
		h := &workerHandle{cfg: cfg, cancel: cancel, done: make(chan struct{})}
		m.workers[name] = h
		w := newWorker(m, cfg)
		go func() {
			defer close(h.done)
			w.run(ctx)
		}()
	}
}

func (m *Manager) stopWorkerLocked(name string) {
	if h, ok := m.workers[name]; ok {
		h.cancel()
		<-h.done
		delete(m.workers, name)
	}
}

func (m *Manager) webhook(name string) (Webhook, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	h, ok := m.hooks[name]
	if !ok {
		return Webhook{}, fmt.Errorf("webhook %q is not configured", name)
	}
	return h, nil
}
