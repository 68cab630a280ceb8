package webhook

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/berth-registry/berth/events"
)

// worker delivers one webhook's events. Events of one repository go
// through one queue, one at a time, in stream (= log) order; different
// repositories drain in parallel, with at most Concurrency requests in
// flight. Every event it holds stays un-acked until delivered or
// dead-lettered, so a crash hands it to the next leader.
type worker struct {
	m   *Manager
	wh  Webhook
	sem chan struct{}

	// gate holds every delivery back until the events a previous worker
	// of this webhook still held (gateWant of them, all at or below
	// gateFrom) have been redelivered here: a worker that crashed cannot
	// hand them back, and the server does not redeliver strictly in order,
	// so they must all be queued (sorted) before anything goes out.
	gate        chan struct{}
	gateOnce    sync.Once
	gateFrom    uint64
	gateWant    int
	oldSeen     map[uint64]struct{} // events at or below gateFrom received so far
	gateWatched bool

	mu      sync.Mutex
	pending map[uint64]jetstream.Msg // stream sequence → held message
	queues  map[string][]item        // repository → its events in order; present while draining
	wg      sync.WaitGroup
}

type item struct {
	seq uint64
	msg jetstream.Msg
	ce  events.CloudEvent
}

func newWorker(m *Manager, wh Webhook) *worker {
	return &worker{
		m: m, wh: wh, sem: make(chan struct{}, m.opts.Concurrency), gate: make(chan struct{}),
		oldSeen: map[uint64]struct{}{},
		pending: map[uint64]jetstream.Msg{}, queues: map[string][]item{},
	}
}

// run consumes until ctx ends, reopening the consumer after errors (NATS
// down, consumer reset by RedeliverFrom).
func (w *worker) run(ctx context.Context) {
	go w.keepAlive(ctx)
	for ctx.Err() == nil {
		if err := w.consume(ctx); err != nil && ctx.Err() == nil {
			w.m.log.Warn("webhook: consuming events failed; retrying", "webhook", w.wh.Name, "err", err)
			select {
			case <-ctx.Done():
			case <-time.After(time.Second):
			}
		}
	}
	w.wg.Wait()
	w.release()
}

func (w *worker) consume(ctx context.Context) error {
	cons, err := w.m.js.Consumer(ctx, w.m.opts.Stream, consumerName(w.wh.Name))
	if err != nil {
		return fmt.Errorf("open consumer %s: %w", consumerName(w.wh.Name), err)
	}
	if !w.gateWatched {
		w.gateWatched = true
		info := cons.CachedInfo()
		w.gateFrom, w.gateWant = info.Delivered.Stream, info.NumAckPending
		if w.gateWant == 0 {
			w.openGate() // nothing was outstanding
		} else {
			go w.watchGate(ctx, cons)
		}
	}
	it, err := cons.Messages(jetstream.PullMaxMessages(min(w.m.opts.MaxPending, 256)))
	if err != nil {
		return fmt.Errorf("pull from consumer %s: %w", consumerName(w.wh.Name), err)
	}
	defer it.Stop()
	stop := context.AfterFunc(ctx, it.Stop)
	defer stop()
	for {
		msg, err := it.Next()
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			if errors.Is(err, jetstream.ErrMsgIteratorClosed) || errors.Is(err, jetstream.ErrConsumerDeleted) ||
				errors.Is(err, jetstream.ErrConsumerNotFound) {
				return fmt.Errorf("consumer %s closed: %w", consumerName(w.wh.Name), err)
			}
			w.m.log.Debug("webhook: pull", "webhook", w.wh.Name, "err", err)
			continue
		}
		w.handle(ctx, msg)
	}
}

// handle filters one message and queues it behind its repository.
func (w *worker) handle(ctx context.Context, msg jetstream.Msg) {
	md, err := msg.Metadata()
	if err != nil {
		w.m.log.Warn("webhook: message without metadata", "webhook", w.wh.Name, "err", err)
		return
	}
	seq := md.Sequence.Stream
	w.mu.Lock()
	_, held := w.pending[seq]
	if seq <= w.gateFrom {
		w.oldSeen[seq] = struct{}{}
		if len(w.oldSeen) >= w.gateWant {
			w.openGate()
		}
	}
	w.mu.Unlock()
	if held {
		return // a redelivery of what is being delivered: the first copy acks it
	}
	var ce events.CloudEvent
	if err := json.Unmarshal(msg.Data(), &ce); err != nil {
		// Never drop silently: an undecodable message goes to the dead letters.
		dl := DeadLetter{Webhook: w.wh.Name, EventID: msg.Headers().Get("Nats-Msg-Id"),
			LastError: fmt.Sprintf("undecodable event at stream sequence %d: %v", seq, err),
			Time:      w.m.opts.Now().UTC(), Event: rawJSON(msg.Data())}
		if err := w.m.deadLetter(ctx, dl); err != nil {
			w.m.log.Warn("webhook: dead-lettering an undecodable event failed", "webhook", w.wh.Name, "err", err)
			return
		}
		w.ack(msg)
		return
	}
	if !w.wh.Matches(ce) {
		// A lost ack only brings the message back to be filtered again,
		// so this ack need not wait for the server.
		if err := msg.Ack(); err != nil {
			w.m.log.Debug("webhook: ack of a filtered event failed", "webhook", w.wh.Name, "err", err)
		}
		return
	}
	repo := ce.Data.Repository
	w.mu.Lock()
	defer w.mu.Unlock()
	w.pending[seq] = msg
	q, draining := w.queues[repo]
	q = append(q, item{seq: seq, msg: msg, ce: ce})
	slices.SortStableFunc(q, func(a, b item) int { return compareSeq(a.seq, b.seq) })
	w.queues[repo] = q
	if !draining {
		w.wg.Add(1)
		go w.drain(ctx, repo)
	}
}

func compareSeq(a, b uint64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// drain delivers a repository's queue, head first; an event is acked only
// once delivered or dead-lettered, and only then does the next one go.
func (w *worker) drain(ctx context.Context, repo string) {
	defer w.wg.Done()
	for {
		w.mu.Lock()
		q := w.queues[repo]
		if len(q) == 0 {
			delete(w.queues, repo)
			w.mu.Unlock()
			return
		}
		it := q[0]
		w.mu.Unlock()
		if !w.gateOpen() {
			select {
			case <-w.gate:
			case <-ctx.Done():
				return
			}
			continue // a redelivered, older event may now head the queue
		}

		rec, skip := w.m.deliver(ctx, w.wh, it.ce, w.sem)
		if ctx.Err() != nil {
			return // left un-acked: release hands it back in order
		}
		if !skip && !rec.OK() {
			raw, _ := json.Marshal(it.ce)
			dl := DeadLetter{Webhook: w.wh.Name, EventID: it.ce.ID, Index: it.ce.Data.Index,
				Attempts: rec.Attempt, LastError: rec.Error, Time: w.m.opts.Now().UTC(), Event: raw}
			for err := w.m.deadLetter(ctx, dl); err != nil; err = w.m.deadLetter(ctx, dl) {
				w.m.log.Warn("webhook: storing a dead letter failed; retrying", "webhook", w.wh.Name, "event", it.ce.ID, "err", err)
				select {
				case <-ctx.Done():
					return
				case <-time.After(time.Second):
				}
			}
		}
		w.ack(it.msg)
		w.mu.Lock()
		// By sequence, not position: a redelivered older event may have
		// been queued ahead of this one meanwhile.
		w.queues[repo] = slices.DeleteFunc(w.queues[repo], func(x item) bool { return x.seq == it.seq })
		delete(w.pending, it.seq)
		w.mu.Unlock()
	}
}

func (w *worker) gateOpen() bool {
	select {
	case <-w.gate:
		return true
	default:
		return false
	}
}

func (w *worker) openGate() {
	w.gateOnce.Do(func() { close(w.gate) })
}

// watchGate is the fallback for when some of the events counted at the
// start never come back here (the previous worker acked them after all):
// once AckWait has passed, every event it held has expired and come back,
// so when the server counts no un-acked event beyond those this worker
// holds, nothing older is missing.
func (w *worker) watchGate(ctx context.Context, cons jetstream.Consumer) {
	start := time.Now()
	poll := min(max(w.m.opts.AckWait/10, 10*time.Millisecond), 500*time.Millisecond)
	for !w.gateOpen() {
		select {
		case <-ctx.Done():
			return
		case <-w.gate:
			return
		case <-time.After(poll):
		}
		if time.Since(start) < w.m.opts.AckWait+poll {
			continue
		}
		info, err := cons.Info(ctx)
		if err != nil {
			if ctx.Err() == nil {
				w.m.log.Debug("webhook: reading consumer state", "webhook", w.wh.Name, "err", err)
			}
			continue
		}
		w.mu.Lock()
		held := len(w.pending)
		w.mu.Unlock()
		if info.NumAckPending <= held {
			w.openGate()
		}
	}
}

// ack waits for the server to confirm, so that a lost ack does not
// redeliver an event behind later ones of its repository. It runs even
// after ctx ended: the event was delivered.
func (w *worker) ack(msg jetstream.Msg) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := msg.DoubleAck(ctx); err != nil {
		w.m.log.Warn("webhook: ack failed; the event may be delivered again", "webhook", w.wh.Name, "err", err)
	}
}

// keepAlive extends the ack deadline of every held event, so events that
// wait behind a retrying one are not redelivered while this worker lives.
func (w *worker) keepAlive(ctx context.Context) {
	t := time.NewTicker(max(w.m.opts.AckWait/3, 10*time.Millisecond))
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		w.mu.Lock()
		msgs := make([]jetstream.Msg, 0, len(w.pending))
		for _, msg := range w.pending {
			msgs = append(msgs, msg)
		}
		w.mu.Unlock()
		for _, msg := range msgs {
			_ = msg.InProgress()
		}
	}
}

// release hands held events back (Nak) in stream order, so the next
// consumer of this webhook gets them at once and in log order.
func (w *worker) release() {
	w.mu.Lock()
	seqs := make([]uint64, 0, len(w.pending))
	for seq := range w.pending {
		seqs = append(seqs, seq)
	}
	slices.Sort(seqs)
	msgs := make([]jetstream.Msg, 0, len(seqs))
	for _, seq := range seqs {
		msgs = append(msgs, w.pending[seq])
	}
	w.pending = map[uint64]jetstream.Msg{}
	w.queues = map[string][]item{}
	w.oldSeen = map[uint64]struct{}{}
	w.mu.Unlock()
	for _, msg := range msgs {
		_ = msg.Nak()
	}
}

func rawJSON(b []byte) json.RawMessage {
	if json.Valid(b) {
		return b
	}
	q, _ := json.Marshal(string(b))
	return q
}
