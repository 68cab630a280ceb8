package gc

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/berth-registry/berth/events"
	"github.com/berth-registry/berth/fsm"
)

// readOnlyPause is how the node pauses GC: from the FSM's read-only mode.
func readOnlyPause(s *state) Paused {
	return func() error {
		if ro := s.f.View().ReadOnly(); ro.On {
			return fmt.Errorf("%w: %s", ErrPaused, ro.Message())
		}
		return nil
	}
}

// TestPausedJobStartsNothing: while read-only, a run is not started,
// nothing is deleted, and the reason is the mode's message. When the
// check misses a switch that commits just before GCStarted, Apply's
// refusal pauses the job the same way.
func TestPausedJobStartsNothing(t *testing.T) {
	for _, tc := range []struct {
		name  string
		pause func(*state) Paused
	}{
		{"checked before the run", readOnlyPause},
		{"refused by Apply", func(*state) Paused { return nil }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newState(t)
			st := strays(s, 5)
			s.at(t0, events.ReadOnlySet{On: true, Reason: "bucket copy"})
			before := s.idx
			j := newJob(s, st, func() error { return nil })
			j.Paused = tc.pause(s)
			_, err := j.Run(context.Background(), Options{Grace: time.Hour})
			if !errors.Is(err, ErrPaused) || !strings.Contains(err.Error(), "bucket copy") {
				t.Fatalf("run: %v, want ErrPaused with the mode's reason", err)
			}
			if _, open := s.f.View().GCRun(); open || len(st.deleted) != 0 {
				t.Errorf("a paused job opened a run (%v) or deleted %d blobs", open, len(st.deleted))
			}
			if s.idx > before+1 {
				t.Errorf("%d entries proposed while paused", s.idx-before)
			}
		})
	}
}

// TestPauseStopsASweepBetweenBatches: read-only mode switched on during a
// sweep stops the deletes after the batch in progress; the run stays open
// and, once the mode is lifted, Resume finishes it.
func TestPauseStopsASweepBetweenBatches(t *testing.T) {
	s := newState(t)
	st := strays(s, 25)
	st.onDelete = func(n int) {
		if n == 3 {
			s.at(t0.Add(48*time.Hour), events.ReadOnlySet{On: true})
		}
	}
	j := newJob(s, st, func() error { return nil })
	j.Paused = readOnlyPause(s)
	if _, err := j.Run(context.Background(), Options{Grace: time.Hour}); !errors.Is(err, ErrPaused) {
		t.Fatalf("run: %v, want ErrPaused", err)
	}
	if len(st.deleted) != 10 {
		t.Fatalf("deleted %d, want the 10 of the batch in progress", len(st.deleted))
	}
	if run, open := s.f.View().GCRun(); !open || run.Phase != fsm.GCPhaseSweeping {
		t.Fatalf("run %+v open=%v, want it left sweeping", run, open)
	}
	if _, err := j.Resume(context.Background()); !errors.Is(err, ErrPaused) || len(st.deleted) != 10 {
		t.Fatalf("resume while read-only: %v, %d deleted", err, len(st.deleted))
	}
	st.onDelete = nil
	s.at(t0.Add(49*time.Hour), events.ReadOnlySet{On: false})
	res, err := j.Resume(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(st.deleted) != 25 || res.Deleted != 15 {
		t.Errorf("after the lift: %d deleted in all, %d by resume", len(st.deleted), res.Deleted)
	}
	if _, open := s.f.View().GCRun(); open {
		t.Error("run still open after resume")
	}
}
