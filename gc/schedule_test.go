package gc

import (
	"strings"
	"testing"
	"time"
)

func TestParseSchedule(t *testing.T) {
	for _, tc := range []struct {
		expr    string
		wantErr string // "" when valid
	}{
		{"0 3 * * *", ""},
		{"@daily", ""},
		{"@every 6h", ""},
		{"CRON_TZ=UTC 30 2 * * 0", ""},
		{"0 3 * *", "is not a cron schedule"},
		{"61 3 * * *", "is not a cron schedule"},
		{"0 0 3 * * *", "is not a cron schedule"}, // six fields: seconds are not supported
		{"sometimes", `"sometimes" is not a cron schedule`},
	} {
		t.Run(tc.expr, func(t *testing.T) {
			_, err := ParseSchedule(tc.expr)
			switch {
			case tc.wantErr == "" && err != nil:
				t.Fatalf("ParseSchedule(%q) = %v", tc.expr, err)
			case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr) || !strings.Contains(err.Error(), "@daily")):
				t.Fatalf("ParseSchedule(%q) = %v, want an error with %q and an example", tc.expr, err, tc.wantErr)
			}
		})
	}
}

func TestNextRun(t *testing.T) {
	daily, err := ParseSchedule("CRON_TZ=UTC 0 3 * * *")
	if err != nil {
		t.Fatal(err)
	}
	at := func(s string) time.Time {
		v, err := time.Parse(time.RFC3339, s)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	for _, tc := range []struct {
		name      string
		sched     Schedule
		last, now string
		want      string
	}{
		{"never ran: the next slot, no catch-up", daily, "", "2026-11-30T10:00:00Z", "2026-12-01T03:00:00Z"},
		{"ran at today's slot: tomorrow's", daily, "2026-11-30T03:00:00Z", "2026-11-30T10:00:00Z", "2026-12-01T03:00:00Z"},
		{"missed today's slot (failover at 03:00): now", daily, "2026-11-29T03:00:00Z", "2026-11-30T03:00:05Z", "2026-11-30T03:00:05Z"},
		{"missed three slots (cluster down): now, once", daily, "2026-11-26T03:00:00Z", "2026-11-30T10:00:00Z", "2026-11-30T10:00:00Z"},
		{"the catch-up run counts as last: tomorrow's", daily, "2026-11-30T10:00:00Z", "2026-11-30T10:00:01Z", "2026-12-01T03:00:00Z"},
		{"an on-demand run before the slot does not move it", daily, "2026-11-30T02:50:00Z", "2026-11-30T02:51:00Z", "2026-11-30T03:00:00Z"},
		{"interval: from the last run", IntervalSchedule(6 * time.Hour), "2026-11-30T01:00:00Z", "2026-11-30T02:00:00Z", "2026-11-30T07:00:00Z"},
		{"interval overdue: now", IntervalSchedule(6 * time.Hour), "2026-11-29T01:00:00Z", "2026-11-30T02:00:00Z", "2026-11-30T02:00:00Z"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var last time.Time
			if tc.last != "" {
				last = at(tc.last)
			}
			if got := NextRun(tc.sched, last, at(tc.now)); !got.Equal(at(tc.want)) {
				t.Fatalf("NextRun(last %s, now %s) = %s, want %s", tc.last, tc.now, got.UTC().Format(time.RFC3339), tc.want)
			}
		})
	}
}
