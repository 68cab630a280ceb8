package node

import (
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/berth-registry/berth/gc"
)

// TestGCScheduleConfig: gc.schedule is checked at start with an error
// that names the key and shows the form; it and gc.interval exclude each
// other; the environment sets it like any key.
func TestGCScheduleConfig(t *testing.T) {
	for _, tc := range []struct {
		name    string
		env     []string
		wantErr []string
	}{
		{"off by default", nil, nil},
		{"cron", []string{"BERTH_GC_SCHEDULE=0 3 * * *"}, nil},
		{"descriptor", []string{"BERTH_GC_SCHEDULE=@daily"}, nil},
		{"interval alone still works", []string{"BERTH_GC_INTERVAL=6h"}, nil},
		{"bad expression", []string{"BERTH_GC_SCHEDULE=0 3 * *"}, []string{"gc.schedule:", `"0 3 * *" is not a cron schedule`, "0 3 * * *"}},
		{"both set", []string{"BERTH_GC_SCHEDULE=@daily", "BERTH_GC_INTERVAL=6h"}, []string{"gc.schedule and gc.interval are both set: keep one"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := LoadConfig("", tc.env)
			if err == nil {
				err = c.Validate()
			}
			if len(tc.wantErr) == 0 {
				if err != nil {
					t.Fatalf("unexpected error: %v", err)
				}
				if s, _ := c.GC.schedule(); (s != nil) != (len(tc.env) > 0) {
					t.Fatalf("schedule = %v for %v", s, tc.env)
				}
				return
			}
			for _, want := range tc.wantErr {
				if err == nil || !strings.Contains(err.Error(), want) {
					t.Errorf("err = %v, want it to contain %q", err, want)
				}
			}
		})
	}
}

// TestGCScheduler: the term's scheduler measures from the last run in
// the log, runs a missed slot once, and does not retry at once a
// scheduled attempt that left nothing in the log.
func TestGCScheduler(t *testing.T) {
	daily, _ := gc.ParseSchedule("CRON_TZ=UTC 0 3 * * *")
	day := func(h, m int) time.Time { return time.Date(2026, 11, 30, h, m, 0, 0, time.UTC) }
	now, last := day(3, 0).Add(5*time.Second), day(3, 0).Add(-24*time.Hour)
	// Like a real clock, every reading is later than the one before.
	clock := func() time.Time {
		now = now.Add(time.Microsecond)
		return now
	}
	s := &gcScheduler{sched: daily, now: clock, last: func() time.Time { return last }, log: slog.New(slog.DiscardHandler)}
	t.Cleanup(func() { s.t.Stop() })
	s.timer()
	if !s.due() || s.next.After(now) || s.next.Before(day(3, 0).Add(5*time.Second)) {
		t.Fatalf("a term starting 5s after a missed slot: next %s, due %v; want due now", s.next, s.due())
	}
	// The attempt failed before GCStarted committed: the log still says
	// yesterday, but the slot is not tried again until tomorrow.
	s.attempted()
	now = now.Add(time.Second)
	if s.due() {
		t.Fatal("a failed attempt is retried at once, in a loop")
	}
	s.reset()
	if want := day(3, 0).Add(24 * time.Hour); !s.next.Equal(want) {
		t.Fatalf("after the attempt: next %s, want %s", s.next, want)
	}
	// An on-demand run at 02:50 the next day does not move the 03:00 slot.
	last, now = day(2, 50).Add(24*time.Hour), day(2, 51).Add(24*time.Hour)
	s.reset()
	if want := day(3, 0).Add(24 * time.Hour); !s.next.Equal(want) || s.due() {
		t.Fatalf("after an on-demand run: next %s (due %v), want %s", s.next, s.due(), want)
	}
}
