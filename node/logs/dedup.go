package logs

import (
	"context"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"
)

// DedupOptions tune Dedup. The zero value means the defaults.
type DedupOptions struct {
	// Window is how long repeats of a record are counted instead of
	// written; at its end one summary line carries the count. Default 30 s.
	Window time.Duration
	// MaxKeys bounds the distinct records remembered; beyond it new ones
	// are written as they come (never dropped). Default 1024.
	MaxKeys int
	// Level is the lowest level folded; below it every record is written.
	// Default (nil) warn.
	Level slog.Leveler
	// Ignore names attributes that vary between repeats of the same
	// failure (a backoff, a duration) and so are left out of the key.
	// Default DefaultIgnore.
	Ignore []string
	// Now is the clock; tests pass a fake one. Default time.Now.
	Now func() time.Time
}

// DefaultIgnore are the attribute keys Berth's and its libraries' repeated
// failures vary in: Raft's "backoff time" and "time", durations, attempts,
// retry delays (raftnet's "in").
var DefaultIgnore = []string{"backoff time", "time", "duration", "elapsed", "last-contact", "attempt", "wait", "took", "in", "delay", "backoff", "suppressed"}

// Attributes a summary line adds.
const (
	RepeatedKey = "repeated" // how many identical records were held back
	WindowKey   = "window"   // over how long
)

// maxKeyLen bounds one record's key, so a huge error string costs little.
const maxKeyLen = 1024

// Dedup is a slog.Handler that writes the first of a run of identical
// warnings or errors (same level, message and attributes, less the
// Ignore ones) and then, instead of every repeat, one summary per window
// with the count: a dead peer's heartbeat failures, twice a second, become
// one line every 30 s. A run that stops is forgotten after a quiet window,
// so its next occurrence is written at once again.
//
// Summaries are written when Sweep finds a window over (Run calls it
// every second) or when the record recurs after its window; Flush writes
// what is pending at shutdown.
type Dedup struct {
	inner  slog.Handler
	st     *dedupState
	prefix string // the key part of WithAttrs and WithGroup
}

type dedupState struct {
	opts    DedupOptions
	ignore  map[string]bool
	mu      sync.Mutex
	entries map[string]*dedupEntry
}

type dedupEntry struct {
	start   time.Time    // when this window began
	count   int          // repeats held back in it
	last    slog.Record  // the latest repeat, for the summary's attributes
	handler slog.Handler // the inner handler the record came through
}

// NewDedup wraps inner.
func NewDedup(inner slog.Handler, opts DedupOptions) *Dedup {
	if opts.Window <= 0 {
		opts.Window = 30 * time.Second
	}
	if opts.MaxKeys <= 0 {
		opts.MaxKeys = 1024
	}
	if opts.Level == nil {
		opts.Level = slog.LevelWarn
	}
	if opts.Ignore == nil {
		opts.Ignore = DefaultIgnore
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	st := &dedupState{opts: opts, ignore: map[string]bool{}, entries: map[string]*dedupEntry{}}
	for _, k := range opts.Ignore {
		st.ignore[k] = true
	}
	return &Dedup{inner: inner, st: st}
}

// Enabled reports whether inner writes records at l.
func (d *Dedup) Enabled(ctx context.Context, l slog.Level) bool { return d.inner.Enabled(ctx, l) }

// Handle writes r, or counts it if it repeats a record written in the
// current window.
func (d *Dedup) Handle(ctx context.Context, r slog.Record) error {
	st := d.st
	if r.Level < st.opts.Level.Level() {
		return d.inner.Handle(ctx, r)
	}
	key := d.key(r)
	now := st.opts.Now()
	var summary *dedupEntry
	st.mu.Lock()
	e, ok := st.entries[key]
	if ok && now.Sub(e.start) >= st.opts.Window {
		// The window is over and no Sweep has closed it yet.
		if e.count > 0 {
			s := *e
			summary = &s
			e.start, e.count = now, 0
		} else {
			delete(st.entries, key)
			ok = false
		}
	}
	switch {
	case ok:
		e.count++
		e.last = r.Clone()
		st.mu.Unlock()
		return d.writeSummary(ctx, summary, now)
	case len(st.entries) < st.opts.MaxKeys:
		st.entries[key] = &dedupEntry{start: now, handler: d.inner}
	}
	st.mu.Unlock()
	if err := d.writeSummary(ctx, summary, now); err != nil {
		return err
	}
	return d.inner.Handle(ctx, r)
}

// Sweep writes a summary for every window that is over and held repeats
// back, and forgets records that did not repeat in theirs.
func (d *Dedup) Sweep(ctx context.Context) { d.sweep(ctx, false) }

// Flush writes a summary for every record with repeats held back, window
// over or not: at shutdown, so no count is lost.
func (d *Dedup) Flush(ctx context.Context) { d.sweep(ctx, true) }

func (d *Dedup) sweep(ctx context.Context, all bool) {
	st := d.st
	now := st.opts.Now()
	var due []dedupEntry
	st.mu.Lock()
	for k, e := range st.entries {
		if !all && now.Sub(e.start) < st.opts.Window {
			continue
		}
		if e.count == 0 {
			delete(st.entries, k)
			continue
		}
		due = append(due, *e)
		e.start, e.count = now, 0
	}
	st.mu.Unlock()
	// In time order, so summaries read like the log they stand for.
	slices.SortFunc(due, func(a, b dedupEntry) int { return a.last.Time.Compare(b.last.Time) })
	for i := range due {
		_ = d.writeSummary(ctx, &due[i], now)
	}
}

// Run sweeps every second until ctx ends, then flushes.
func (d *Dedup) Run(ctx context.Context) {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			d.Flush(context.WithoutCancel(ctx))
			return
		case <-t.C:
			d.Sweep(ctx)
		}
	}
}

// writeSummary writes e's latest repeat with the count and the span it
// covers, through the handler (and so the attributes and groups) the
// repeats came through.
func (d *Dedup) writeSummary(ctx context.Context, e *dedupEntry, now time.Time) error {
	if e == nil || e.count == 0 {
		return nil
	}
	r := slog.NewRecord(now, e.last.Level, e.last.Message, 0)
	e.last.Attrs(func(a slog.Attr) bool { r.AddAttrs(a); return true })
	r.AddAttrs(slog.Int(RepeatedKey, e.count), slog.Duration(WindowKey, now.Sub(e.start)))
	return e.handler.Handle(ctx, r)
}

// key identifies r among its repeats: level, message, and every attribute
// but the ignored ones, with the logger's own attributes and groups first.
func (d *Dedup) key(r slog.Record) string {
	var b strings.Builder
	b.WriteString(r.Level.String())
	b.WriteByte(0)
	b.WriteString(r.Message)
	b.WriteByte(0)
	b.WriteString(d.prefix)
	r.Attrs(func(a slog.Attr) bool {
		d.st.writeAttr(&b, "", a)
		return b.Len() < maxKeyLen
	})
	s := b.String()
	if len(s) > maxKeyLen {
		s = s[:maxKeyLen]
	}
	return s
}

func (st *dedupState) writeAttr(b *strings.Builder, group string, a slog.Attr) {
	if st.ignore[a.Key] {
		return
	}
	v := a.Value.Resolve()
	if v.Kind() == slog.KindGroup {
		for _, ga := range v.Group() {
			st.writeAttr(b, group+a.Key+".", ga)
		}
		return
	}
	b.WriteString(group)
	b.WriteString(a.Key)
	b.WriteByte('=')
	b.WriteString(v.String())
	b.WriteByte(0)
}

// WithAttrs returns a Dedup whose records carry attrs; they share the
// window state with d, and attrs become part of the key.
func (d *Dedup) WithAttrs(attrs []slog.Attr) slog.Handler {
	var b strings.Builder
	b.WriteString(d.prefix)
	for _, a := range attrs {
		d.st.writeAttr(&b, "", a)
	}
	return &Dedup{inner: d.inner.WithAttrs(attrs), st: d.st, prefix: b.String()}
}

// WithGroup returns a Dedup whose records' attributes sit in group name.
func (d *Dedup) WithGroup(name string) slog.Handler {
	if name == "" {
		return d
	}
	return &Dedup{inner: d.inner.WithGroup(name), st: d.st, prefix: d.prefix + "[" + name + "]"}
}
