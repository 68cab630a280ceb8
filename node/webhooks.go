package node

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"reflect"
	"sync"
	"time"

	"github.com/hashicorp/raft"

	"github.com/berth-registry/berth/events"
	"github.com/berth-registry/berth/events/webhook"
	"github.com/berth-registry/berth/fsm"
	"github.com/berth-registry/berth/fsm/resource"
	"github.com/berth-registry/berth/node/secrets"
)

// Timings of the webhook wiring. The debounce coalesces a burst of applied
// entries (every push changes the FSM) into one look at the resources;
// the resync catches secret files that changed on disk, which the FSM
// does not see.
const (
	webhookDebounce = 250 * time.Millisecond
	webhookResync   = 3 * time.Second
	webhookRetry    = 2 * time.Second
)

// nodeWebhooks is this node's webhook engine: one webhook.Manager on the
// node's JetStream connection, created on first use. Any node reads
// deliveries and dead letters through it; only the leader syncs and runs
// it (runWebhooks, in the term's context).
type nodeWebhooks struct {
	counters *webhook.Counters
	// published counts the outbox's publishes for /metrics.
	published publishedCounter

	mu  sync.Mutex
	mgr *webhook.Manager
	// firstSeen is the StartIndex of each webhook (by name and creation
	// time), fixed when this node first sees it (createdIndex).
	firstSeen map[webhookKey]uint64
	// secretErr is the last secret problem logged per webhook, so each
	// is logged once, not on every resync.
	secretErr map[string]string
}

type webhookKey struct {
	name    string
	created time.Time
}

func newNodeWebhooks() *nodeWebhooks {
	return &nodeWebhooks{counters: webhook.NewCounters(), firstSeen: map[webhookKey]uint64{}, secretErr: map[string]string{}}
}

// errEventsOff answers webhook and event requests on a node without NATS.
var errEventsOff = errors.New("events are off on this node (events.enabled is false): webhooks and the event stream need NATS")

// webhookManager returns the node's manager, creating it (and the
// deliveries and dead-letter streams) on first use.
func (n *Node) webhookManager(ctx context.Context) (*webhook.Manager, error) {
	if n.events == nil {
		return nil, errEventsOff
	}
	w := n.webhooks
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.mgr != nil {
		return w.mgr, nil
	}
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	m, err := webhook.NewManager(cctx, webhook.Options{
		JetStream: n.events.broker.JetStream(),
		Stream:    n.cfg.Events.Stream,
		Replicas:  max(n.cfg.Events.Replicas, 1),
		ClusterID: n.fsm.View().ClusterID(),
		Source:    webhook.Source{Addr: n.apiAdvertise(), InstanceID: n.cfg.Node.ID},
		Metrics:   w.counters,
		Logger:    n.logger.With("component", "webhooks"),
	})
	if err != nil {
		return nil, &UnavailableError{Err: fmt.Errorf("webhooks: %w", err)}
	}
	w.mgr = m
	return m, nil
}

// runWebhooks delivers webhooks while this node leads: it waits for the
// manager (NATS may be down), runs it, and keeps its configuration in line
// with the Webhook resources and their secret files until the term ends.
func (n *Node) runWebhooks(ctx context.Context) {
	// Ping events carry the cluster ID, which runOutbox commits first.
	for n.fsm.View().ClusterID() == "" {
		select {
		case <-ctx.Done():
			return
		case <-time.After(100 * time.Millisecond):
		}
	}
	var m *webhook.Manager
	logged := false
	for m == nil {
		var err error
		if m, err = n.webhookManager(ctx); err != nil {
			if !logged {
				n.logger.Warn("webhooks: cannot start delivery yet; retrying", "err", err)
				logged = true
			}
			select {
			case <-ctx.Done():
				return
			case <-time.After(webhookRetry):
			}
		}
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = m.Run(ctx)
	}()
	defer func() { <-done }()

	resolver := secrets.New(n.cfg.SecretsDir())
	var last []webhook.Webhook
	synced := false
	resync := time.NewTicker(webhookResync)
	defer resync.Stop()
	for {
		changed := n.fsm.Changed()
		hooks := n.desiredWebhooks(ctx, resolver)
		if !synced || !sameWebhooks(hooks, last) {
			err := m.Sync(ctx, hooks)
			if ctx.Err() != nil {
				return
			}
			synced = err == nil
			if err != nil {
				n.logger.Warn("webhooks: sync failed; retrying", "err", err)
			}
			last = hooks
		}
		select {
		case <-ctx.Done():
			return
		case <-resync.C:
		case <-changed:
			select {
			case <-ctx.Done():
				return
			case <-time.After(webhookDebounce):
			}
		}
	}
}

// desiredWebhooks maps the Webhook resources to the engine's
// configuration. A webhook whose secret cannot be read is kept disabled
// (its consumer, and so its backlog, stays) until the secret appears; its
// resource's SecretResolved condition says why.
func (n *Node) desiredWebhooks(ctx context.Context, resolver *secrets.Resolver) []webhook.Webhook {
	v := n.fsm.View()
	rs := v.Resources("Webhook")
	w := n.webhooks
	w.mu.Lock()
	defer w.mu.Unlock()
	seen := map[webhookKey]bool{}
	names := map[string]bool{}
	var out []webhook.Webhook
	for _, r := range rs {
		key := webhookKey{r.Name, r.Created}
		seen[key], names[r.Name] = true, true
		if _, ok := w.firstSeen[key]; !ok {
			w.firstSeen[key] = createdIndex(v, r.Name)
		}
		out = append(out, n.mapWebhook(ctx, r, resolver, w.firstSeen[key]))
	}
	for k := range w.firstSeen {
		if !seen[k] {
			delete(w.firstSeen, k)
		}
	}
	for name := range w.secretErr {
		if !names[name] {
			delete(w.secretErr, name)
		}
	}
	return out
}

// mapWebhook turns one resource into the engine's Webhook; w.mu is held.
func (n *Node) mapWebhook(ctx context.Context, r fsm.Resource, resolver *secrets.Resolver, start uint64) webhook.Webhook {
	d, err := resource.DecodeWebhook(r.Document)
	if err != nil {
		// Normalize refuses the empty URL; the engine keeps the consumer
		// and the last good configuration, and reports the error.
		n.logger.Warn("webhooks: stored webhook cannot be decoded", "webhook", r.Name, "err", err)
		return webhook.Webhook{Name: r.Name}
	}
	s := d.Spec
	wh := webhook.Webhook{
		Name: r.Name, URL: s.URL, Events: s.Events, Repositories: s.Repositories, Format: s.Format,
		Headers: http.Header(s.Headers), Timeout: s.Timeout,
		InitialBackoff: s.Retry.InitialBackoff, MaxBackoff: s.Retry.MaxBackoff, MaxDeliveries: s.Retry.MaxDeliveries,
		Enabled: s.Enabled, StartIndex: start,
	}
	if s.Signing != nil {
		secret, err := resolver.Resolve(ctx, s.Signing.SecretRef)
		if err != nil {
			msg := err.Error()
			if n.webhooks.secretErr[r.Name] != msg {
				n.logger.Warn("webhooks: signing secret not readable; not delivering until it is", "webhook", r.Name, "err", msg)
				n.webhooks.secretErr[r.Name] = msg
			}
			wh.Enabled = false
			return wh
		}
		if _, had := n.webhooks.secretErr[r.Name]; had {
			n.logger.Info("webhooks: signing secret readable again; delivering", "webhook", r.Name)
			delete(n.webhooks.secretErr, r.Name)
		}
		wh.Secret = secret
	}
	return wh
}

func sameWebhooks(a, b []webhook.Webhook) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		x, y := a[i], b[i]
		x.StartIndex, y.StartIndex = 0, 0 // only read when a consumer is created
		if !reflect.DeepEqual(x, y) {
			return false
		}
	}
	return true
}

// leaderWebhookManager returns the manager on the leader, once it runs
// with the current configuration; errNotSent on a follower, so the
// caller forwards.
func (n *Node) leaderWebhookManager(ctx context.Context) (*webhook.Manager, error) {
	if n.raft.raft.State() != raft.Leader {
		return nil, fmt.Errorf("%w: this node is not the leader", errNotSent)
	}
	return n.webhookManager(ctx)
}

// maxCreationScan bounds the unpublished entries createdIndex decodes.
const maxCreationScan = 100000

// createdIndex is where a webhook first seen now starts: the index of the
// entry that applied it. The FSM does not record that index for a
// resource, but it keeps every entry the outbox has not published yet, and
// the apply is normally among them (the engine looks a debounce after the
// apply; the cursor is committed about once a second). If it is not (the
// webhook was applied long before, and its consumer is gone), delivery
// starts after the cursor: events published between the apply and then
// are not delivered to it.
func createdIndex(v *fsm.View, name string) uint64 {
	cursor, _ := v.OutboxCursor()
	for _, row := range v.Pending(cursor, maxCreationScan) {
		ev, err := events.Decode(row.Entry)
		if err != nil {
			continue
		}
		switch p := ev.Payload.(type) {
		case events.ResourceApplied:
			if p.Kind == "Webhook" && p.Name == name {
				return row.Index
			}
		case events.ResourcesApplied:
			for _, r := range p.Resources {
				if r.Kind == "Webhook" && r.Name == name {
					return row.Index
				}
			}
		}
	}
	return cursor + 1
}
