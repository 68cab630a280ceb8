package main

import (
	"bytes"
	"strings"
	"testing"
	"time"
)

func TestProgressRendering(t *testing.T) {
	start := time.Date(2026, 11, 30, 3, 0, 0, 0, time.UTC)
	sweeping := gcProgress{Run: "r1", Phase: "sweeping", Started: start, PhaseStarted: start, Done: 1200, Total: 5000, Bytes: 34 << 20, TotalBytes: 120 << 20}
	for _, tc := range []struct {
		name      string
		p         gcProgress
		at        time.Duration // after PhaseStarted
		wantBar   string        // the terminal frame, before padding
		wantPlain string
	}{
		{"sweeping", sweeping, 12 * time.Second,
			"\rsweeping [#####-------------------] 1200/5000 objects, 34 MiB of 120 MiB, ETA 38s",
			"sweeping 1200/5000 objects, 34 MiB of 120 MiB\n"},
		{"nothing done yet: no ETA", gcProgress{Phase: "sweeping", PhaseStarted: start, Total: 10, TotalBytes: 1536}, time.Second,
			"\rsweeping [------------------------] 0/10 objects, 0 B of 1.5 KiB, ETA ?",
			"sweeping 0/10 objects, 0 B of 1.5 KiB\n"},
		{"marking, mark not computed yet", gcProgress{Phase: "marking", PhaseStarted: start}, time.Second,
			"\rmarking  computing the mark",
			"marking computing the mark\n"},
		{"marking committed", gcProgress{Phase: "marking", PhaseStarted: start, Done: 10000, Total: 10000, Bytes: 5 << 30, TotalBytes: 5 << 30}, time.Second,
			"\rmarking  [########################] 10000/10000 objects, 5 GiB of 5 GiB, ETA 0s",
			"marking 10000/10000 objects, 5 GiB of 5 GiB\n"},
		{"purging", gcProgress{Phase: "purging", PhaseStarted: start, Done: 3}, time.Second,
			"\rpurging  3 upload sessions",
			"purging 3 upload sessions\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			bar := progressBar(tc.p, start.Add(tc.at), 120)
			if len(bar) != 120 || strings.TrimRight(bar, " ") != tc.wantBar {
				t.Errorf("terminal frame (%d cells):\n%q\nwant\n%q padded to 120", len(bar), bar, tc.wantBar)
			}
			if got := progressLine(tc.p); got != tc.wantPlain {
				t.Errorf("plain line %q, want %q", got, tc.wantPlain)
			}
		})
	}
	// A narrow terminal cuts the frame rather than wrapping it.
	if bar := progressBar(sweeping, start.Add(time.Second), 40); len(bar) != 40 || strings.Contains(bar, "\n") {
		t.Errorf("40-column frame is %d long: %q", len(bar), bar)
	}
}

// TestProgressView: on a terminal every poll redraws the bar in place;
// otherwise a line is written at most every 2s and only when it changed.
func TestProgressView(t *testing.T) {
	start := time.Date(2026, 11, 30, 3, 0, 0, 0, time.UTC)
	p := func(done int) gcProgress {
		return gcProgress{Phase: "sweeping", PhaseStarted: start, Done: done, Total: 5000, Bytes: int64(done) << 10}
	}
	polls := []struct {
		at   time.Duration
		done int
	}{{0, 0}, {500 * time.Millisecond, 100}, {time.Second, 200}, {2500 * time.Millisecond, 300}, {3 * time.Second, 300}, {5 * time.Second, 300}}
	for _, tc := range []struct {
		name string
		tty  bool
		want string
	}{
		{"not a terminal", false, "sweeping 0/5000 objects, 0 B\nsweeping 300/5000 objects, 300 KiB\n"},
		{"terminal", true, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var buf bytes.Buffer
			v := &progressView{w: &buf, tty: tc.tty, width: 80, plainEvery: plainEvery}
			for _, poll := range polls {
				v.show(p(poll.done), start.Add(poll.at))
			}
			v.done()
			out := buf.String()
			if !tc.tty {
				if out != tc.want {
					t.Errorf("plain output:\n%s\nwant\n%s", out, tc.want)
				}
				return
			}
			if strings.Contains(out, "\n") || strings.Count(out, "\r") != len(polls)+2 {
				t.Errorf("terminal output is not %d frames redrawn in place and a clear: %q", len(polls), out)
			}
			if !strings.Contains(out, "300/5000 objects") || !strings.HasSuffix(out, "\r"+strings.Repeat(" ", 79)+"\r") {
				t.Errorf("terminal output lacks the last frame or the final clear: %q", out)
			}
		})
	}
}

// TestPrintGCStatus: gc status shows the job in progress and, per run,
// start, duration, candidates, deleted, bytes reclaimed and the error.
func TestPrintGCStatus(t *testing.T) {
	start := time.Date(2026, 11, 30, 3, 0, 0, 0, time.UTC)
	var s gcStatusAnswer
	s.Progress = &gcProgress{Run: "r3", Phase: "sweeping", Started: start, PhaseStarted: start, Done: 1200, Total: 5000, Bytes: 34 << 20}
	s.LastError = "gc: delete sha256:aa (run r2): connection refused"
	s.Runs = []gcRecord{
		{"r1", start.Add(-48 * time.Hour), start.Add(-48*time.Hour + 2500*time.Millisecond), 40, 2, 38, 3 << 20, "swept", ""},
		{"r2", start.Add(-24 * time.Hour), start.Add(-24*time.Hour + time.Second), 0, 0, 0, 0, "cancelled", "mark too large"},
	}
	var buf bytes.Buffer
	printGCStatus(&buf, s)
	out := buf.String()
	lines := strings.Split(out, "\n")
	for i, want := range []string{
		"in progress: run r3 since 2026-11-30T03:00:00Z: sweeping 1200/5000 objects, 34 MiB",
		"last error on the leader: gc: delete sha256:aa (run r2): connection refused",
	} {
		if lines[i] != want {
			t.Errorf("line %d: %q, want %q", i, lines[i], want)
		}
	}
	if !strings.HasPrefix(lines[2], "RUN") || !strings.Contains(lines[2], "RECLAIMED") || !strings.Contains(lines[2], "ERROR") {
		t.Errorf("header: %q", lines[2])
	}
	// Newest first.
	for i, want := range [][]string{
		{"r2", "2026-11-29T03:00:00Z", "1s", "cancelled", "mark too large"},
		{"r1", "2026-11-28T03:00:00Z", "2.5s", "40", "38", "3 MiB", "swept", "-"},
	} {
		for _, w := range want {
			if !strings.Contains(lines[3+i], w) {
				t.Errorf("row %d %q lacks %q", i, lines[3+i], w)
			}
		}
	}
}
