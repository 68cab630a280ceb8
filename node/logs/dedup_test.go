package logs

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"
)

// fakeClock is a settable clock for Dedup.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *fakeClock) set(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).Add(d)
}

// step is one thing that happens to the handler at a time: a record
// logged, a Sweep or a Flush.
type step struct {
	at    time.Duration
	level slog.Level
	msg   string
	args  []any
	sweep bool
	flush bool
}

func logAt(at time.Duration, level slog.Level, msg string, args ...any) step {
	return step{at: at, level: level, msg: msg, args: args}
}
func sweepAt(at time.Duration) step { return step{at: at, sweep: true} }
func flushAt(at time.Duration) step { return step{at: at, flush: true} }

// written renders a line the handler let through: "LEVEL msg" and, for a
// summary, " repeated=N".
func written(t *testing.T, buf *bytes.Buffer) []string {
	var out []string
	for _, m := range jsonLines(t, buf) {
		s := fmt.Sprintf("%s %s", m["level"], m["msg"])
		if p, ok := m["peer"]; ok {
			s += fmt.Sprintf(" peer=%v", p)
		}
		if n, ok := m[RepeatedKey]; ok {
			s += fmt.Sprintf(" repeated=%v", n)
		}
		out = append(out, s)
	}
	return out
}

func TestDedup(t *testing.T) {
	const s = time.Second
	warn, info, errl := slog.LevelWarn, slog.LevelInfo, slog.LevelError
	hb := "failed to heartbeat to"
	cases := []struct {
		name  string
		steps []step
		want  []string
	}{
		{
			name:  "a single warning is written at once",
			steps: []step{logAt(0, warn, "disk low")},
			want:  []string{"WARN disk low"},
		},
		{
			name: "repeats are held back and summarised when the window ends",
			steps: []step{
				logAt(0, errl, hb, "peer", "n3", "error", "refused", "backoff time", 10),
				logAt(1*s, errl, hb, "peer", "n3", "error", "refused", "backoff time", 20),
				logAt(2*s, errl, hb, "peer", "n3", "error", "refused", "backoff time", 40),
				sweepAt(29 * s),
				sweepAt(30 * s),
			},
			want: []string{"ERROR " + hb + " peer=n3", "ERROR " + hb + " peer=n3 repeated=2"},
		},
		{
			name: "a run that goes on is summarised every window",
			steps: []step{
				logAt(0, warn, "nats unreachable"), logAt(10*s, warn, "nats unreachable"),
				sweepAt(30 * s),
				logAt(40*s, warn, "nats unreachable"), logAt(50*s, warn, "nats unreachable"), logAt(55*s, warn, "nats unreachable"),
				sweepAt(60 * s),
			},
			want: []string{"WARN nats unreachable", "WARN nats unreachable repeated=1", "WARN nats unreachable repeated=3"},
		},
		{
			name: "a repeat after the window, with no sweep, writes the summary first",
			steps: []step{
				logAt(0, warn, "s3 down"), logAt(5*s, warn, "s3 down"),
				logAt(31*s, warn, "s3 down"),
				flushAt(32 * s),
			},
			want: []string{"WARN s3 down", "WARN s3 down repeated=1", "WARN s3 down repeated=1"},
		},
		{
			name: "a run that stopped is forgotten: its next occurrence is written at once",
			steps: []step{
				logAt(0, warn, "s3 down"),
				sweepAt(30 * s),
				logAt(90*s, warn, "s3 down"),
			},
			want: []string{"WARN s3 down", "WARN s3 down"},
		},
		{
			name: "different peers are different runs",
			steps: []step{
				logAt(0, errl, hb, "peer", "n2", "error", "refused"),
				logAt(0, errl, hb, "peer", "n3", "error", "refused"),
				logAt(1*s, errl, hb, "peer", "n3", "error", "refused"),
			},
			want: []string{"ERROR " + hb + " peer=n2", "ERROR " + hb + " peer=n3"},
		},
		{
			name: "a different error is a different run",
			steps: []step{
				logAt(0, errl, hb, "peer", "n2", "error", "refused"),
				logAt(1*s, errl, hb, "peer", "n2", "error", "timeout"),
			},
			want: []string{"ERROR " + hb + " peer=n2", "ERROR " + hb + " peer=n2"},
		},
		{
			name:  "the same message at another level is another run",
			steps: []step{logAt(0, warn, "x"), logAt(0, errl, "x")},
			want:  []string{"WARN x", "ERROR x"},
		},
		{
			name:  "info is never folded",
			steps: []step{logAt(0, info, "request"), logAt(0, info, "request"), logAt(0, info, "request")},
			want:  []string{"INFO request", "INFO request", "INFO request"},
		},
		{
			name:  "flush writes pending counts before the window ends",
			steps: []step{logAt(0, warn, "w"), logAt(1*s, warn, "w"), flushAt(2 * s)},
			want:  []string{"WARN w", "WARN w repeated=1"},
		},
		{
			name: "beyond MaxKeys (3) new records are written, not dropped",
			steps: []step{
				logAt(0, warn, "a"), logAt(0, warn, "b"), logAt(0, warn, "c"),
				logAt(0, warn, "d"), logAt(0, warn, "d"),
				logAt(0, warn, "a"),
			},
			want: []string{"WARN a", "WARN b", "WARN c", "WARN d", "WARN d"},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var buf bytes.Buffer
			clock := &fakeClock{}
			d := NewDedup(slog.NewJSONHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}),
				DedupOptions{MaxKeys: 3, Now: clock.Now})
			l := slog.New(d)
			for _, st := range tc.steps {
				clock.set(st.at)
				switch {
				case st.sweep:
					d.Sweep(context.Background())
				case st.flush:
					d.Flush(context.Background())
				default:
					l.Log(context.Background(), st.level, st.msg, st.args...)
				}
			}
			got := written(t, &buf)
			if strings.Join(got, "\n") != strings.Join(tc.want, "\n") {
				t.Errorf("written:\n  %s\nwant:\n  %s", strings.Join(got, "\n  "), strings.Join(tc.want, "\n  "))
			}
		})
	}
}

// TestDedupWithAttrs: loggers derived with With share the windows, and
// their attributes are part of the key and of the summary.
func TestDedupWithAttrs(t *testing.T) {
	var buf bytes.Buffer
	clock := &fakeClock{}
	clock.set(0)
	d := NewDedup(slog.NewJSONHandler(&buf, nil), DedupOptions{Now: clock.Now})
	a, b := slog.New(d).With("peer", "n2"), slog.New(d).With("peer", "n3")
	a.Warn("unreachable")
	a.Warn("unreachable")
	b.Warn("unreachable")
	clock.set(30 * time.Second)
	d.Sweep(context.Background())
	want := []string{"WARN unreachable peer=n2", "WARN unreachable peer=n3", "WARN unreachable peer=n2 repeated=1"}
	if got := written(t, &buf); strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("written %q, want %q", got, want)
	}
}

// TestDedupSummaryWindow: the summary says over how long it counted.
func TestDedupSummaryWindow(t *testing.T) {
	var buf bytes.Buffer
	clock := &fakeClock{}
	clock.set(0)
	d := NewDedup(slog.NewJSONHandler(&buf, nil), DedupOptions{Now: clock.Now})
	slog.New(d).Error("x")
	slog.New(d).Error("x")
	clock.set(31 * time.Second)
	d.Sweep(context.Background())
	lines := jsonLines(t, &buf)
	if len(lines) != 2 || lines[1][WindowKey] != float64(31*time.Second) {
		t.Errorf("lines %v, want a summary with %s=31s", lines, WindowKey)
	}
}
