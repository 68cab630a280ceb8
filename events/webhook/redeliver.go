package webhook

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/berth-registry/berth/events"
)

// IndexHeader carries the event's Raft index on every events-stream message.
const IndexHeader = "Berth-Index"

// seqForIndex finds the first stream sequence whose event has a Raft index
// ≥ index, by binary search: the outbox publishes in index order, so the
// index grows with the sequence. Pull events, which have no index, are
// looked past (firstLogged). Past the end it returns last+1.
func (m *Manager) seqForIndex(ctx context.Context, stream jetstream.Stream, index uint64) (uint64, error) {
	return SeqForIndex(ctx, stream, index)
}

// SeqForIndex is the first sequence of the events stream whose Raft index
// is at least index (the stream's next sequence if there is none), found
// by binary search: the outbox publishes in index order. clusterctl events
// --since starts there.
func SeqForIndex(ctx context.Context, stream jetstream.Stream, index uint64) (uint64, error) {
	name := stream.CachedInfo().Config.Name
	info, err := stream.Info(ctx)
	if err != nil {
		return 0, fmt.Errorf("read events stream %s: %w", name, err)
	}
	lo, hi := info.State.FirstSeq, info.State.LastSeq+1
	if info.State.Msgs == 0 {
		return hi, nil
	}
	for lo < hi {
		mid := lo + (hi-lo)/2
		// The first message at or after mid: sequences can have gaps.
		msg, err := firstLogged(ctx, stream, mid)
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			hi = mid
			continue
		}
		if err != nil {
			return 0, fmt.Errorf("read events stream %s at sequence %d: %w", name, mid, err)
		}
		idx, err := messageIndex(msg)
		if err != nil {
			return 0, fmt.Errorf("events stream %s sequence %d: %w", name, msg.Sequence, err)
		}
		if idx >= index {
			hi = mid
		} else {
			lo = msg.Sequence + 1
		}
	}
	// lo may be a pull event's sequence: start at the logged event after it.
	if lo <= info.State.LastSeq {
		msg, err := firstLogged(ctx, stream, lo)
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			return info.State.LastSeq + 1, nil
		}
		if err != nil {
			return 0, fmt.Errorf("read events stream %s at sequence %d: %w", name, lo, err)
		}
		return msg.Sequence, nil
	}
	return lo, nil
}

// firstLogged returns the first message at or after seq that came from
// the log. Pull events (events/pulls) sit between them with no index, so
// the bisection looks past them: it asks for the next message of each
// logged type and takes the earliest, a bounded number of requests however
// many pulls there are.
func firstLogged(ctx context.Context, stream jetstream.Stream, seq uint64) (*jetstream.RawStreamMsg, error) {
	msg, err := stream.GetMsg(ctx, seq, jetstream.WithGetMsgSubject(">"))
	if err != nil || !events.IsPullSubject(msg.Subject) {
		return msg, err
	}
	var first *jetstream.RawStreamMsg
	for _, typ := range events.LoggedTypes {
		m, err := stream.GetMsg(ctx, seq, jetstream.WithGetMsgSubject(events.TypeSubjects(typ)))
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			continue
		}
		if err != nil {
			return nil, err
		}
		if first == nil || m.Sequence < first.Sequence {
			first = m
		}
	}
	if first == nil {
		return nil, jetstream.ErrMsgNotFound
	}
	return first, nil
}

func messageIndex(msg *jetstream.RawStreamMsg) (uint64, error) {
	if h := msg.Header.Get(IndexHeader); h != "" {
		n, err := strconv.ParseUint(h, 10, 64)
		if err != nil {
			return 0, fmt.Errorf("header %s %q is not an index", IndexHeader, h)
		}
		return n, nil
	}
	var ce events.CloudEvent
	if err := json.Unmarshal(msg.Data, &ce); err != nil {
		return 0, fmt.Errorf("no %s header and the body is not a CloudEvent: %w", IndexHeader, err)
	}
	return ce.Data.Index, nil
}

// RedeliverFrom makes webhook name receive again every event from Raft
// index on (those before it that were not yet delivered are skipped): it
// recreates the durable consumer at the first stream sequence whose index
// is ≥ index and restarts delivery. It returns that sequence.
func (m *Manager) RedeliverFrom(ctx context.Context, name string, index uint64) (uint64, error) {
	m.opMu.Lock()
	defer m.opMu.Unlock()
	if _, err := m.webhook(name); err != nil {
		return 0, err
	}
	stream, err := m.js.Stream(ctx, m.opts.Stream)
	if err != nil {
		return 0, fmt.Errorf("open events stream %s: %w", m.opts.Stream, err)
	}
	seq, err := m.seqForIndex(ctx, stream, index)
	if err != nil {
		return 0, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.stopWorkerLocked(name)
	defer m.reconcileLocked()
	if err := stream.DeleteConsumer(ctx, consumerName(name)); err != nil && !errors.Is(err, jetstream.ErrConsumerNotFound) {
		return 0, fmt.Errorf("reset consumer of webhook %s: %w", name, err)
	}
	cfg := m.consumerConfig(name)
	cfg.DeliverPolicy, cfg.OptStartSeq = jetstream.DeliverByStartSequencePolicy, seq
	if _, err := stream.CreateConsumer(ctx, cfg); err != nil {
		return 0, fmt.Errorf("recreate consumer of webhook %s at sequence %d: %w", name, seq, err)
	}
	return seq, nil
}

// RedeliverResult counts what RedeliverDeadLetters did.
type RedeliverResult struct {
	Delivered    int `json:"delivered"`
	DeadLettered int `json:"deadLettered"`
}

// RedeliverDeadLetters sends webhook name's dead letters again, oldest
// first, each with the full retry schedule, and removes each once it is
// delivered or dead-lettered anew. It returns when all were handled or ctx
// ends (what is left stays in the list).
func (m *Manager) RedeliverDeadLetters(ctx context.Context, name string) (RedeliverResult, error) {
	var res RedeliverResult
	wh, err := m.webhook(name)
	if err != nil {
		return res, err
	}
	stream, err := m.js.Stream(ctx, m.opts.DeadLetterStream)
	if err != nil {
		return res, fmt.Errorf("open dead-letter stream %s: %w", m.opts.DeadLetterStream, err)
	}
	dls, err := m.DeadLetters(ctx, name, 0)
	if err != nil {
		return res, err
	}
	sem := make(chan struct{}, 1)
	for _, dl := range dls {
		var ce events.CloudEvent
		if err := json.Unmarshal(dl.Event, &ce); err != nil {
			return res, fmt.Errorf("dead letter %d of webhook %s is not a CloudEvent (left in place): %w", dl.Seq, name, err)
		}
		rec, skip := m.deliver(ctx, wh, ce, sem)
		if err := ctx.Err(); err != nil {
			return res, fmt.Errorf("redeliver dead letters of webhook %s: %w", name, err)
		}
		if skip || rec.OK() {
			res.Delivered++
		} else {
			again := DeadLetter{Webhook: name, EventID: ce.ID, Index: ce.Data.Index, Attempts: dl.Attempts + rec.Attempt,
				LastError: rec.Error, Time: m.opts.Now().UTC(), Event: dl.Event}
			if err := m.deadLetter(ctx, again); err != nil {
				return res, err
			}
			res.DeadLettered++
		}
		if err := stream.DeleteMsg(ctx, dl.Seq); err != nil && !errors.Is(err, jetstream.ErrMsgNotFound) {
			return res, fmt.Errorf("remove redelivered dead letter %d of webhook %s: %w", dl.Seq, name, err)
		}
	}
	return res, nil
}

// Test sends a dev.berth.ping event to webhook name once, synchronously,
// records the attempt and returns it, enabled or not.
func (m *Manager) Test(ctx context.Context, name string) (DeliveryRecord, error) {
	wh, err := m.webhook(name)
	if err != nil {
		return DeliveryRecord{}, err
	}
	now := m.opts.Now().UTC()
	ce := events.CloudEvent{
		SpecVersion: "1.0", ID: fmt.Sprintf("%s:ping:%d", m.opts.ClusterID, now.UnixNano()),
		Source: "berth://" + m.opts.ClusterID, Type: events.CETypePing, Time: now,
		Subject: "webhook/" + name, DataContentType: "application/json",
	}
	rec, _ := m.attempt(ctx, wh, ce, 1)
	m.record(ctx, rec)
	if !rec.OK() {
		return rec, fmt.Errorf("webhook %s test: %s", name, rec.Error)
	}
	return rec, nil
}
