package node

import (
	"log/slog"
	"time"

	"github.com/berth-registry/berth/fsm"
	"github.com/berth-registry/berth/gc"
)

// gcScheduler times the scheduled runs of one leader term. It measures
// from the last run the log knows of, whoever led then, so a failover
// neither skips a slot nor, starting late, runs the missed ones more
// than once (gc.NextRun). It belongs to the term's GC loop goroutine.
type gcScheduler struct {
	sched gc.Schedule
	// last is the start of the newest run in the log (zero: none).
	last func() time.Time
	now  func() time.Time
	log  *slog.Logger
	// tried is when this term last tried a scheduled run: a run that
	// failed before it was logged (or was skipped in read-only mode) must
	// not be retried at once, in a loop.
	tried time.Time
	next  time.Time
	t     *time.Timer
}

// gcSchedule is the term's scheduler, or nil when GC runs on demand only.
func (n *Node) gcSchedule() *gcScheduler {
	s, err := n.cfg.GC.schedule()
	if err != nil || s == nil {
		return nil // Validate refused a bad expression at start
	}
	return &gcScheduler{sched: s, now: time.Now, log: n.logger, last: func() time.Time { return lastGCStart(n.fsm.View()) }}
}

// lastGCStart is the start of the open run, or else of the newest
// finished one; zero if the cluster never collected garbage.
func lastGCStart(v *fsm.View) time.Time {
	if r, ok := v.GCRun(); ok {
		return r.Started
	}
	h := v.GCHistory()
	if len(h) == 0 {
		return time.Time{}
	}
	return h[len(h)-1].Started
}

// timer starts the timer for the next due run.
func (s *gcScheduler) timer() *time.Timer {
	now := s.now()
	s.next = s.compute(now)
	s.t = time.NewTimer(s.next.Sub(now))
	if s.next.After(now) {
		s.log.Info("next scheduled gc run", "at", s.next)
	} else {
		s.log.Info("a scheduled gc slot passed since the last run: running it now, once", "lastRun", s.last())
	}
	return s.t
}

// reset re-aims the timer after a run or a tick that was not due.
func (s *gcScheduler) reset() {
	now := s.now()
	next := s.compute(now)
	if !next.Equal(s.next) && next.After(now) {
		s.log.Info("next scheduled gc run", "at", next)
	}
	s.next = next
	s.t.Reset(next.Sub(now))
}

// due reports whether the run the timer was set for is due now. (One
// reading of the clock: compute returns now itself for a missed slot.)
func (s *gcScheduler) due() bool {
	now := s.now()
	return !now.Before(s.compute(now))
}

// attempted records a scheduled attempt now.
func (s *gcScheduler) attempted() { s.tried = s.now() }

func (s *gcScheduler) compute(now time.Time) time.Time {
	last := s.last()
	if s.tried.After(last) {
		last = s.tried
	}
	return gc.NextRun(s.sched, last, now)
}
