package replication

import (
	"context"
	"fmt"

	"github.com/berth-registry/berth/events"
)

// cursorWriter commits a mirror's cursor through the log, not once per
// event: every cursorEvery events, when the stream has been quiet for
// cursorIdle, and when following stops. A mirror keeping up with a busy
// origin thus spends its log writes on the changes, and its cursor is
// current a moment after the origin pauses.
//
// The guarantee is unchanged: a cursor is committed only after every
// event up to it was applied here, so a crash or failover resumes at or
// before the first event not applied, never after it. What a crash can
// cost is a replay of at most cursorEvery events, and replay is
// idempotent (doc.go): a manifest already here, a tag already pointing at
// its digest, a delete of something already gone change nothing. The
// batch saves one log entry (and its fsync) per event of a burst, which is
// most of a small image's replication cost.
type cursorWriter struct {
	m         *mirror
	applied   Cursor // every event up to it is applied here
	committed Cursor // what the log holds
	since     int    // events applied since the last commit
}

// advance records that the event at next was applied.
func (w *cursorWriter) advance(ctx context.Context, next Cursor) error {
	w.applied = next
	w.since++
	if w.since >= cursorEvery {
		return w.flush(ctx)
	}
	return nil
}

func (w *cursorWriter) flush(ctx context.Context) error {
	if w.applied == w.committed {
		return nil
	}
	c := w.applied
	if err := w.m.copy.propose(ctx, events.MirrorCursor{Policy: w.m.p.Name, Index: c.Index, Seq: c.Seq}); err != nil {
		return fmt.Errorf("commit cursor %d: %w", c.Index, err)
	}
	w.committed, w.since = c, 0
	return nil
}

// flushOnExit commits what was applied when following stops (an error,
// the policy changed), unless the leader term is over: the next follow,
// here or on a new leader, then starts after it. Its failure only means
// a replay.
func (w *cursorWriter) flushOnExit(ctx context.Context) {
	fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), natsTimeout)
	defer cancel()
	fctx = events.WithOrigin(fctx, events.Origin{Actor: "replication:" + w.m.p.Name})
	if err := w.flush(fctx); err != nil {
		w.m.logger.Debug("cursor not committed on stop; the next run replays from the last one", "err", err)
	}
}
