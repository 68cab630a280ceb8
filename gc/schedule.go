package gc

import (
	"fmt"
	"time"

	"github.com/robfig/cron/v3"
)

// Schedule says when scheduled runs are due: gc.schedule (a cron
// expression) or gc.interval (a fixed delay, kept for compatibility).
type Schedule = cron.Schedule

// ParseSchedule reads gc.schedule: five cron fields (minute hour
// day-of-month month day-of-week), a descriptor such as @daily or
// "@every 6h", optionally after CRON_TZ=Zone. Without CRON_TZ the
// fields are in the node's local time zone.
func ParseSchedule(expr string) (Schedule, error) {
	s, err := cron.ParseStandard(expr)
	if err != nil {
		return nil, fmt.Errorf("%q is not a cron schedule (minute hour day-of-month month day-of-week, e.g. \"0 3 * * *\" for 03:00 daily, or @daily, @hourly, @every 6h): %w", expr, err)
	}
	return s, nil
}

// IntervalSchedule is gc.interval as a Schedule: a run every d.
func IntervalSchedule(d time.Duration) Schedule { return cron.Every(d) }

// NextRun is when the next scheduled run is due, given the start of the
// last run the cluster knows of (zero: none) and the time now. A slot
// that passed since the last run (the leader changed, or the cluster was
// down, across it) is due now, but only once however many were missed:
// the run started now makes the next slot the first one after now.
//
// A cluster that never ran GC has no missed slot: its first scheduled
// run is the first slot after now.
func NextRun(s Schedule, last, now time.Time) time.Time {
	if last.IsZero() {
		return s.Next(now)
	}
	if slot := s.Next(last); !slot.After(now) {
		return now
	}
	return s.Next(last)
}
