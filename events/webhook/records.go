package webhook

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// Subject roots of the two streams this package keeps. They do not overlap
// the events stream's "berth.>".
const (
	deliveriesSubjectRoot  = "berth-webhook.deliveries."
	deadLettersSubjectRoot = "berth-webhook.deadletters."
)

// DeliveryRecord is one attempt to deliver one event, as
// `clusterctl webhook deliveries NAME` shows it.
type DeliveryRecord struct {
	Webhook string `json:"webhook"`
	EventID string `json:"eventId"`
	Index   uint64 `json:"index"`
	Attempt int    `json:"attempt"`
	// Status is the HTTP status, 0 when no response arrived.
	Status  int           `json:"status"`
	Latency time.Duration `json:"latency"`
	Error   string        `json:"error,omitempty"`
	Time    time.Time     `json:"time"`
}

// OK reports whether the attempt delivered the event.
func (r DeliveryRecord) OK() bool { return r.Error == "" && r.Status >= 200 && r.Status < 300 }

// DeadLetter is an event a webhook gave up on after MaxDeliveries attempts.
type DeadLetter struct {
	// Seq is the dead letter's sequence in the dead-letter stream.
	Seq       uint64          `json:"-"`
	Webhook   string          `json:"webhook"`
	EventID   string          `json:"eventId"`
	Index     uint64          `json:"index"`
	Attempts  int             `json:"attempts"`
	LastError string          `json:"lastError"`
	Time      time.Time       `json:"time"`
	Event     json.RawMessage `json:"event"`
}

func (m *Manager) ensureStreams(ctx context.Context) error {
	for _, cfg := range []jetstream.StreamConfig{{
		Name:              m.opts.DeliveriesStream,
		Description:       "Berth webhook delivery attempts, newest per webhook",
		Subjects:          []string{deliveriesSubjectRoot + ">"},
		Storage:           jetstream.FileStorage,
		Replicas:          m.opts.Replicas,
		MaxMsgsPerSubject: m.opts.DeliveriesPerWebhook,
		Discard:           jetstream.DiscardOld,
	}, {
		Name:              m.opts.DeadLetterStream,
		Description:       "Berth webhook dead letters: events a webhook gave up on",
		Subjects:          []string{deadLettersSubjectRoot + ">"},
		Storage:           jetstream.FileStorage,
		Replicas:          m.opts.Replicas,
		MaxMsgsPerSubject: m.opts.DeadLettersPerWebhook,
		Discard:           jetstream.DiscardOld,
	}} {
		if _, err := m.js.CreateOrUpdateStream(ctx, cfg); err != nil {
			return fmt.Errorf("create or update JetStream stream %s: %w", cfg.Name, err)
		}
	}
	return nil
}

func (m *Manager) record(ctx context.Context, r DeliveryRecord) {
	b, err := json.Marshal(r)
	if err == nil {
		_, err = m.js.Publish(ctx, deliveriesSubjectRoot+r.Webhook, b)
	}
	if err != nil {
		m.log.Warn("webhook: recording a delivery attempt failed", "webhook", r.Webhook, "event", r.EventID, "err", err)
	}
}

func (m *Manager) deadLetter(ctx context.Context, dl DeadLetter) error {
	b, err := json.Marshal(dl)
	if err != nil {
		return fmt.Errorf("encode dead letter %s: %w", dl.EventID, err)
	}
	if _, err := m.js.Publish(ctx, deadLettersSubjectRoot+dl.Webhook, b); err != nil {
		return fmt.Errorf("store dead letter %s of webhook %s: %w", dl.EventID, dl.Webhook, err)
	}
	m.metrics.DeadLettered(dl.Webhook)
	return nil
}

// Deliveries returns up to limit of the most recent attempts of webhook
// name, oldest first. It reads the replicated stream, so any node answers.
func (m *Manager) Deliveries(ctx context.Context, name string, limit int) ([]DeliveryRecord, error) {
	var out []DeliveryRecord
	err := m.readSubject(ctx, m.opts.DeliveriesStream, deliveriesSubjectRoot+name, func(_ uint64, data []byte) error {
		var r DeliveryRecord
		if err := json.Unmarshal(data, &r); err != nil {
			return fmt.Errorf("decode delivery record: %w", err)
		}
		out = append(out, r)
		return nil
	})
	return tail(out, limit), err
}

// DeadLetters returns up to limit of the oldest dead letters of webhook
// name, oldest first (the order RedeliverDeadLetters sends them in).
func (m *Manager) DeadLetters(ctx context.Context, name string, limit int) ([]DeadLetter, error) {
	var out []DeadLetter
	err := m.readSubject(ctx, m.opts.DeadLetterStream, deadLettersSubjectRoot+name, func(seq uint64, data []byte) error {
		if limit > 0 && len(out) >= limit {
			return errStop
		}
		var dl DeadLetter
		if err := json.Unmarshal(data, &dl); err != nil {
			return fmt.Errorf("decode dead letter: %w", err)
		}
		dl.Seq = seq
		out = append(out, dl)
		return nil
	})
	return out, err
}

func tail[T any](s []T, limit int) []T {
	if limit > 0 && len(s) > limit {
		return s[len(s)-limit:]
	}
	return s
}

var errStop = errors.New("stop")

// readSubject calls fn for every message on subject in stream order. The
// streams cap messages per subject, so this reads a bounded number.
func (m *Manager) readSubject(ctx context.Context, stream, subject string, fn func(seq uint64, data []byte) error) error {
	s, err := m.js.Stream(ctx, stream)
	if err != nil {
		return fmt.Errorf("open JetStream stream %s: %w", stream, err)
	}
	c, err := s.CreateConsumer(ctx, jetstream.ConsumerConfig{
		FilterSubject: subject, AckPolicy: jetstream.AckNonePolicy,
		DeliverPolicy: jetstream.DeliverAllPolicy, InactiveThreshold: time.Minute,
		MemoryStorage: true,
	})
	if err != nil {
		return fmt.Errorf("read %s from stream %s: %w", subject, stream, err)
	}
	defer func() {
		_ = s.DeleteConsumer(context.WithoutCancel(ctx), c.CachedInfo().Name)
	}()
	remaining := c.CachedInfo().NumPending
	for remaining > 0 {
		batch, err := c.Fetch(int(min(remaining, 256)), jetstream.FetchContext(ctx))
		if err != nil {
			return fmt.Errorf("read %s from stream %s: %w", subject, stream, err)
		}
		n := 0
		for msg := range batch.Messages() {
			n++
			remaining--
			md, err := msg.Metadata()
			if err != nil {
				return fmt.Errorf("read %s: %w", subject, err)
			}
			if err := fn(md.Sequence.Stream, msg.Data()); err != nil {
				if errors.Is(err, errStop) {
					return nil
				}
				return err
			}
		}
		if err := batch.Error(); err != nil {
			return fmt.Errorf("read %s from stream %s: %w", subject, stream, err)
		}
		if n == 0 {
			break // messages vanished (limits) since the consumer was made
		}
	}
	return nil
}
