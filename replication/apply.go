package replication

import (
	"context"
	"fmt"
	"time"

	"github.com/berth-registry/berth/events"
)

// applyWindow is how many streamed events may be applied at once.
//
// The origin's order matters within a repository (a tag moved twice, a
// delete after a push) and nowhere else: every change a mirror makes
// touches one destination repository, as every push to the origin did.
// So events of different repositories are applied side by side, which
// lets the log batch their commits, while the events of one repository
// are applied one after the other in the origin's order. The cursor only
// moves past an event once it and every event before it are applied, so
// a crash or failover still resumes at or before the first event not
// applied.
const applyWindow = 4

// pending is one streamed event between its start and the cursor.
type pending struct {
	itm  *item
	repo string // destination repository; "" for an event that changes nothing here
	done bool
	err  error
}

// applier starts events in stream order, at most applyWindow at once and
// one per repository, and moves the cursor over the applied prefix.
type applier struct {
	m        *mirror
	cw       *cursorWriter
	skip     uint64 // events up to this index are here already (the listing)
	queue    []*pending
	running  map[string]int // repository -> events applying
	n        int
	finished chan *pending
}

func newApplier(m *mirror, cw *cursorWriter) *applier {
	return &applier{m: m, cw: cw, skip: cw.applied.Index, running: map[string]int{}, finished: make(chan *pending, applyWindow)}
}

// classify names the repository an event changes here.
func (a *applier) classify(itm *item) *pending {
	p := &pending{itm: itm}
	if itm.err == nil && itm.index > a.skip {
		if r := itm.ce.Data.Repository; r != "" && a.m.p.Covers(r) {
			p.repo = a.m.p.Destination(r)
		}
	}
	return p
}

// canStart says whether p may start now without overtaking an event of
// its repository.
func (a *applier) canStart(p *pending) bool {
	return a.n < applyWindow && (p.repo == "" || a.running[p.repo] == 0)
}

func (a *applier) start(ctx context.Context, p *pending) {
	a.queue = append(a.queue, p)
	a.n++
	a.running[p.repo]++
	go func() {
		p.err = a.m.applyItem(ctx, p.itm, a.skip)
		a.finished <- p
	}()
}

// finish records a finished event and moves the cursor over every applied
// event at the front of the queue. It returns the first error in stream
// order, once the events before it are done.
func (a *applier) finish(ctx context.Context, p *pending) error {
	a.n--
	if a.running[p.repo]--; a.running[p.repo] == 0 {
		delete(a.running, p.repo)
	}
	p.done = true
	for len(a.queue) > 0 && a.queue[0].done {
		q := a.queue[0]
		if q.err != nil {
			return q.err
		}
		a.queue = a.queue[1:]
		if err := a.m.applied(ctx, q.itm, a.cw); err != nil {
			return err
		}
	}
	return nil
}

// applyItem carries out one event here; skip is the index up to which
// events are here already.
func (m *mirror) applyItem(ctx context.Context, itm *item, skip uint64) error {
	if itm.err != nil {
		return itm.err
	}
	if itm.index <= skip {
		return nil // the listing of an initial sync (or a replay) already held it
	}
	for m.target.View().ReadOnly() {
		// This cluster's writes are refused: wait rather than fail.
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(readOnlyWait):
		}
	}
	c := *m.copy
	if itm.warm != nil {
		select {
		case <-itm.warm.done:
		case <-ctx.Done():
			return ctx.Err()
		}
		c.warm = itm.warm
	}
	ce := itm.ce
	actx := events.WithOrigin(ctx, events.Origin{Actor: "replication:" + m.p.Name, RequestID: ce.ID})
	if err := m.apply(actx, &c, ce); err != nil {
		return fmt.Errorf("origin event %d (%s %s): %w", itm.index, events.ShortType(ce.Type), ce.Subject, err)
	}
	return nil
}

// applied moves the cursor past an event applied with all before it.
func (m *mirror) applied(ctx context.Context, itm *item, cw *cursorWriter) error {
	if itm.index <= cw.applied.Index {
		return nil
	}
	meta := itm.meta
	next := Cursor{Index: itm.index, Seq: meta.Sequence.Stream}
	if err := cw.advance(ctx, next); err != nil {
		return err
	}
	online := !m.offline.Load()
	m.update(func(s *Status) {
		s.Cursor, s.Seq = next.Index, next.Seq
		s.Events++
		s.LastEvent = time.Now().UTC()
		if online {
			s.LastError = ""
		}
		s.OriginHead = max(s.OriginHead, itm.index)
		s.LagEntries = meta.NumPending
		if meta.NumPending == 0 {
			s.OriginHead = itm.index
		}
	})
	m.rep.progress(ctx, meta.NumPending, m.artifacts.Load(), m.bytes.Load(), online)
	return nil
}
