package replication

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/berth-registry/berth/events"
)

// pushCursorEvery bounds the events of other repositories a policy's cursor
// lags behind by in the log.
const pushCursorEvery = 256

// errEventsOff is trigger event on a node without an event stream.
var errEventsOff = errors.New("trigger event follows this cluster's event stream, and events are off: turn them on (events.enabled) or use trigger schedule or manual")

// followLoop follows this cluster's event stream until ctx ends,
// restarting from the committed cursor with backoff after an error: the
// event that failed is retried, alone, before any later one.
func (r *pushRun) followLoop(ctx context.Context) {
	wait := pushRetryMin
	for ctx.Err() == nil {
		start := time.Now()
		err := r.follow(ctx)
		if ctx.Err() != nil || r.target.Fence() != nil {
			return
		}
		if err != nil {
			r.fail(ctx, "", err)
		}
		if time.Since(start) > time.Minute {
			wait = pushRetryMin
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
		wait = min(wait*2, pushRetryMax)
	}
}

// follow pushes what the stream says changed, after a first sync when the
// policy has no cursor (or it fell out of the stream's retention).
func (r *pushRun) follow(ctx context.Context) error {
	if r.target.Stream == nil {
		return errEventsOff
	}
	stream, err := r.target.Stream(ctx)
	if err != nil {
		return fmt.Errorf("this cluster's event stream: %w", err)
	}
	info, err := stream.Info(ctx)
	if err != nil {
		return fmt.Errorf("this cluster's event stream: %w", err)
	}
	cur, ok := r.target.View().Cursor(r.p.Name)
	if !ok || cur.Seq+1 < info.State.FirstSeq {
		// Every event up to LastSeq was applied before this view was
		// taken, so the job's listing holds it.
		cur = Cursor{Index: r.target.View().Index(), Seq: info.State.LastSeq}
		r.runJob(ctx, jobName("sync"), false)
		if ctx.Err() != nil || r.target.Fence() != nil {
			return ctx.Err()
		}
		if err := r.propose(ctx, events.MirrorCursor{Policy: r.p.Name, Index: cur.Index, Seq: cur.Seq, Synced: true}); err != nil {
			return fmt.Errorf("commit the first sync's cursor: %w", err)
		}
	}
	cons, err := stream.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{
		FilterSubjects: subjects,
		DeliverPolicy:  jetstream.DeliverByStartSequencePolicy,
		OptStartSeq:    cur.Seq + 1,
	})
	if err != nil {
		return fmt.Errorf("consumer on this cluster's event stream: %w", err)
	}
	it, err := cons.Messages()
	if err != nil {
		return fmt.Errorf("consumer on this cluster's event stream: %w", err)
	}
	defer it.Stop()
	for {
		msg, err := it.Next(jetstream.NextContext(ctx))
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("read this cluster's event stream: %w", err)
		}
		if err := r.handle(ctx, msg, &cur); err != nil {
			return err
		}
	}
}

// handle carries out one event at the destination, then commits the
// cursor after it. A crash in between repeats the event, which is
// idempotent: the destination already has the manifest, tag, or not.
func (r *pushRun) handle(ctx context.Context, msg jetstream.Msg, cur *Cursor) error {
	meta, err := msg.Metadata()
	if err != nil {
		return fmt.Errorf("event metadata: %w", err)
	}
	index, err := strconv.ParseUint(msg.Headers().Get("Berth-Index"), 10, 64)
	if err != nil {
		return fmt.Errorf("event %d on %s has no Berth-Index header", meta.Sequence.Stream, msg.Subject())
	}
	if index <= cur.Index {
		return nil
	}
	var ce events.CloudEvent
	if err := json.Unmarshal(msg.Data(), &ce); err != nil {
		return fmt.Errorf("event %d: %w", index, err)
	}
	ctx = events.WithOrigin(ctx, events.Origin{Actor: "replication:" + r.p.Name, RequestID: ce.ID})
	next := Cursor{Index: index, Seq: meta.Sequence.Stream}
	if ce.Data.Repository == "" || !r.p.Covers(ce.Data.Repository) {
		// Not this policy's: the cursor moves here and is committed
		// with the next covered event, or every pushCursorEvery events, so
		// that a busy registry does not double its log per policy.
		*cur = next
		if r.uncommitted++; r.uncommitted < pushCursorEvery {
			return nil
		}
	} else if err := r.apply(ctx, ce); err != nil {
		return fmt.Errorf("event %d (%s %s): %w", index, events.ShortType(ce.Type), ce.Subject, err)
	}
	if err := r.propose(ctx, events.MirrorCursor{Policy: r.p.Name, Index: next.Index, Seq: next.Seq}); err != nil {
		return fmt.Errorf("commit cursor %d: %w", index, err)
	}
	*cur = next
	r.uncommitted = 0
	r.recovered()
	r.update(func(s *Status) { s.Events++; s.LastEvent = time.Now().UTC() })
	return nil
}

// apply carries out one event at the destination.
func (r *pushRun) apply(ctx context.Context, ce events.CloudEvent) error {
	d := ce.Data
	if d.Repository == "" || !r.p.Covers(d.Repository) {
		return nil
	}
	dst := r.p.Destination(d.Repository)
	switch ce.Type {
	case events.CETypeManifestPushed, events.CETypeTagUpdated:
		tags := d.Tags
		if ce.Type == events.CETypeTagUpdated {
			tags = []string{d.Tag}
		}
		var want []string
		for _, t := range tags {
			if r.p.WantsTag(t) {
				want = append(want, t)
			}
		}
		if len(want) == 0 {
			// Untagged: only a referrer (a signature, an SBOM) goes on
			// its own, following its subject; index children go with
			// their index.
			m, ok := r.target.View().Manifest(d.Repository, d.Digest)
			if len(tags) > 0 || !ok || m.Subject == "" {
				return nil
			}
		}
		a := artifact{src: d.Repository, dst: dst, d: d.Digest, tags: want}
		n, err := r.dest.push(ctx, a)
		if errors.Is(err, errGone) {
			return nil // deleted here since: its delete event follows
		}
		if err != nil {
			return err
		}
		r.artifacts.Add(1)
		return r.report(ctx, events.ReplicationReported{Kind: events.ReplicationCopied, Repo: d.Repository,
			Digest: d.Digest.String(), Tags: want, Bytes: n})
	case events.CETypeTagDeleted:
		if !r.p.Deletion || !r.p.WantsTag(d.Tag) {
			return nil
		}
		return r.dest.deleteTag(ctx, dst, d.Tag)
	case events.CETypeManifestDeleted:
		if !r.p.Deletion {
			return nil
		}
		return r.dest.deleteManifest(ctx, dst, d.Digest)
	case events.CETypeRepositoryDeleted:
		if !r.p.Deletion {
			return nil
		}
		tags, err := r.dest.tags(ctx, dst)
		if err != nil {
			return err
		}
		for _, t := range tags {
			if err := r.dest.deleteTag(ctx, dst, t); err != nil {
				return err
			}
		}
	}
	return nil
}
