package replication

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"

	"github.com/berth-registry/berth/events"
)

// stillFailingEvery is how often a mirror that keeps failing with the same
// error says so again in the log; every retry in between logs at debug.
var stillFailingEvery = 5 * time.Minute

// reporter commits one mirror's progress through the log as
// events.ReplicationReported, so that it reaches the event stream and
// webhooks in order with the changes it describes, and keeps the mirror's
// failures out of the log when they only repeat.
//
// What it commits is chosen to cost the log little: one started per
// leader term (and per initial sync), one artifact.copied per artifact
// whose manifest was copied (the children of an index and the blobs fold
// into it), one failed per change of error rather than per retry, and one
// caught-up when a backlog is drained, not after every event of a mirror
// that keeps up. A report that cannot be committed (the cluster is read-
// only, a voter does not decode generation 4 yet) is dropped: progress
// reports must never stop the mirror.
//
// Reports are committed by a goroutine of their own, in order, so that the
// mirror does not wait for them: a report then shares its log write with
// the mirror's next commit instead of adding one to every event's path.
type reporter struct {
	policy string
	target Target
	logger *slog.Logger
	queue  chan events.ReplicationReported

	mu sync.Mutex
	// lastErr is the error last reported and logged, "" once the mirror
	// made progress again; repeats counts retries failing with it.
	lastErr    string
	repeats    int
	lastLogged time.Time
	// behind is set while the mirror has a backlog (after an initial
	// sync, a failure, or an event with more pending behind it).
	behind bool
	// dropped says a report was refused, logged once per term.
	dropped bool
}

// reportQueue bounds the reports waiting to be committed; more are
// dropped (and said so once) rather than held.
const reportQueue = 256

func newReporter(policy string, target Target, logger *slog.Logger) *reporter {
	return &reporter{policy: policy, target: target, logger: logger, queue: make(chan events.ReplicationReported, reportQueue)}
}

// run commits queued reports until ctx ends.
func (r *reporter) run(ctx context.Context) {
	ctx = events.WithOrigin(ctx, events.Origin{Actor: "replication:" + r.policy})
	for {
		select {
		case <-ctx.Done():
			return
		case ev := <-r.queue:
			r.propose(ctx, ev)
		}
	}
}

// commit queues a report.
func (r *reporter) commit(ev events.ReplicationReported) {
	ev.Policy, ev.Mode = r.policy, "mirror"
	select {
	case r.queue <- ev:
	default:
		r.drop(context.Background(), ev, errors.New("too many reports waiting"))
	}
}

func (r *reporter) propose(ctx context.Context, ev events.ReplicationReported) {
	if r.target.Fence() != nil {
		return
	}
	if err := r.target.Propose(ctx, ev); err != nil {
		r.drop(ctx, ev, err)
	}
}

// drop says once per term that reports are not committed, and why.
func (r *reporter) drop(ctx context.Context, ev events.ReplicationReported, err error) {
	r.mu.Lock()
	first := !r.dropped
	r.dropped = true
	r.mu.Unlock()
	if first && ctx.Err() == nil {
		r.logger.Info("replication progress is not reported on the event stream", "kind", ev.Kind, "err", err)
	}
}

// started reports that the policy runs in this term, or (job
// "initial-sync") that it lists and copies the origin.
func (r *reporter) started(ctx context.Context, job string) {
	if job != "" {
		r.mu.Lock()
		r.behind = true
		r.mu.Unlock()
	}
	r.commit(events.ReplicationReported{Kind: events.ReplicationStarted, Job: job})
}

// copied reports one artifact brought over: its manifest, the children of
// an index (artifacts counts them all) and the bytes fetched for them.
func (r *reporter) copied(ctx context.Context, repo, digest string, tags []string, bytes int64, artifacts int) {
	r.commit(events.ReplicationReported{Kind: events.ReplicationCopied, Repo: repo, Digest: digest, Tags: tags, Bytes: bytes, Artifacts: artifacts})
}

// failed logs and reports err when it differs from the last one; a retry
// failing the same way logs at debug, and at warn again every
// stillFailingEvery with how many retries failed since.
func (r *reporter) failed(ctx context.Context, err error) {
	msg := err.Error()
	r.mu.Lock()
	r.behind = true
	same := msg == r.lastErr
	r.lastErr = msg
	now := time.Now()
	if same {
		r.repeats++
		if now.Sub(r.lastLogged) < stillFailingEvery {
			r.mu.Unlock()
			r.logger.Debug("mirror still failing; retrying", "err", err)
			return
		}
		n := r.repeats
		r.lastLogged = now
		r.mu.Unlock()
		r.logger.Warn("mirror still failing; retrying", "err", err, "retries", n)
		return
	}
	r.repeats, r.lastLogged = 0, now
	r.mu.Unlock()
	r.logger.Warn("mirror failed; retrying with backoff (logged again only when the error changes)", "err", err)
	r.commit(events.ReplicationReported{Kind: events.ReplicationFailed, Error: msg})
}

// progress is called after each applied event with the stream's events
// still pending: more than none puts the mirror behind, none after being
// behind is caught up, reported with what this term copied so far. An
// event applied while the stream is offline (delivered before the
// connection dropped) recovers nothing and cannot tell the mirror is
// caught up.
func (r *reporter) progress(ctx context.Context, pending uint64, artifacts uint64, bytes int64, online bool) {
	r.mu.Lock()
	if !online {
		r.behind = r.behind || pending > 0
		r.mu.Unlock()
		return
	}
	if r.lastErr != "" {
		r.logger.Info("mirror recovered", "after_retries", r.repeats)
	}
	r.lastErr, r.repeats = "", 0
	if pending > 0 {
		r.behind = true
		r.mu.Unlock()
		return
	}
	was := r.behind
	r.behind = false
	r.mu.Unlock()
	if was {
		r.logger.Info("mirror caught up with the origin", "artifacts", artifacts, "bytes", bytes)
		r.commit(events.ReplicationReported{Kind: events.ReplicationCaughtUp, Artifacts: int(artifacts), Bytes: bytes})
	}
}
