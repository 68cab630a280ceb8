package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"golang.org/x/term"
)

// gcProgress mirrors gc.Progress.
type gcProgress struct {
	Run          string    `json:"run"`
	Phase        string    `json:"phase"`
	Started      time.Time `json:"started"`
	PhaseStarted time.Time `json:"phaseStarted"`
	Done         int       `json:"done"`
	Total        int       `json:"total"`
	Bytes        int64     `json:"bytes"`
	TotalBytes   int64     `json:"totalBytes"`
}

// barWidth is the progress bar's width in cells.
const barWidth = 24

// progressBar is one frame of the terminal's progress bar: it starts
// with \r and is padded to width cells, so it overwrites the frame
// before it in place.
func progressBar(p gcProgress, now time.Time, width int) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%-8s ", p.Phase)
	if p.Total > 0 {
		filled := barWidth * min(p.Done, p.Total) / p.Total
		b.WriteString("[" + strings.Repeat("#", filled) + strings.Repeat("-", barWidth-filled) + "] ")
	}
	b.WriteString(progressCounts(p))
	if p.Total > 0 {
		b.WriteString(", ETA " + eta(p, now))
	}
	line := b.String()
	if width > 0 && len(line) > width-1 {
		line = line[:width-1]
	}
	return "\r" + line + strings.Repeat(" ", max(0, width-1-len(line)))
}

// progressLine is one plain line for a log or a pipe: no bar, no \r.
func progressLine(p gcProgress) string {
	return p.Phase + " " + progressCounts(p) + "\n"
}

// progressCounts is "1200/5000 objects, 34 MiB" (of 120 MiB when the
// total is known); a phase with no known total counts what it did.
func progressCounts(p gcProgress) string {
	switch {
	case p.Phase == "purging":
		return fmt.Sprintf("%d upload sessions", p.Done)
	case p.Total == 0 && p.Phase == "marking":
		return "computing the mark"
	case p.TotalBytes > 0:
		return fmt.Sprintf("%d/%d objects, %s of %s", p.Done, p.Total, iecBytes(p.Bytes), iecBytes(p.TotalBytes))
	}
	return fmt.Sprintf("%d/%d objects, %s", p.Done, p.Total, iecBytes(p.Bytes))
}

// eta extrapolates the phase's rate so far; "?" before the first object.
func eta(p gcProgress, now time.Time) string {
	if p.Done >= p.Total {
		return "0s"
	}
	elapsed := now.Sub(p.PhaseStarted)
	if p.Done == 0 || elapsed <= 0 {
		return "?"
	}
	left := time.Duration(float64(elapsed) * float64(p.Total-p.Done) / float64(p.Done))
	return left.Round(time.Second).String()
}

// iecBytes is n in binary units: "512 B", "34 MiB", "1.5 GiB".
func iecBytes(n int64) string {
	if n < 1024 {
		return fmt.Sprintf("%d B", n)
	}
	units := []string{"KiB", "MiB", "GiB", "TiB", "PiB"}
	v, u := float64(n)/1024, 0
	for v >= 1024 && u < len(units)-1 {
		v, u = v/1024, u+1
	}
	return strings.TrimSuffix(fmt.Sprintf("%.1f", v), ".0") + " " + units[u]
}

// progressView shows a run's progress on w: a bar redrawn in place on a
// terminal, a plain line every plainEvery otherwise (and only when it
// changed), so a CI log is readable.
type progressView struct {
	w     io.Writer
	tty   bool
	width int
	// plainEvery spaces the plain lines; last is the last one written.
	plainEvery time.Duration
	lastAt     time.Time
	last       string
	drawn      bool
}

// plainEvery is how often a plain progress line is written at most.
const plainEvery = 2 * time.Second

func newProgressView(w io.Writer) *progressView {
	v := &progressView{w: w, plainEvery: plainEvery}
	if f, ok := w.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		v.tty = true
		v.width = 80
		if cols, _, err := term.GetSize(int(f.Fd())); err == nil && cols > 0 {
			v.width = cols
		}
	}
	return v
}

// show draws p as of now.
func (v *progressView) show(p gcProgress, now time.Time) {
	if v.tty {
		io.WriteString(v.w, progressBar(p, now, v.width))
		v.drawn = true
		return
	}
	line := progressLine(p)
	if line == v.last || now.Sub(v.lastAt) < v.plainEvery {
		return
	}
	io.WriteString(v.w, line)
	v.last, v.lastAt = line, now
}

// done clears the bar, so the result prints on a clean line.
func (v *progressView) done() {
	if v.tty && v.drawn {
		io.WriteString(v.w, "\r"+strings.Repeat(" ", v.width-1)+"\r")
	}
}

// pollEvery is how often gc run --wait asks for the progress.
const pollEvery = 500 * time.Millisecond

// runAndWatch starts a run that the server answers when done, and shows
// the leader's progress (gc status) while it waits.
func runAndWatch(ctx context.Context, g *globals, path string, v *progressView) (gcRunAnswer, error) {
	type result struct {
		a   gcRunAnswer
		err error
	}
	res := make(chan result, 1)
	go func() {
		var a gcRunAnswer
		err := g.call(ctx, "POST", path, nil, &a)
		res <- result{a, err}
	}()
	t := time.NewTicker(pollEvery)
	defer t.Stop()
	for {
		select {
		case r := <-res:
			v.done()
			return r.a, r.err
		case <-t.C:
			var s gcStatusAnswer
			// A failed poll (a node restarting behind the load balancer)
			// only skips a frame: the run's own answer is what counts.
			if err := g.call(ctx, "GET", "/admin/v1/gc/status", nil, &s); err == nil && s.Progress != nil {
				v.show(*s.Progress, time.Now())
			}
		}
	}
}
