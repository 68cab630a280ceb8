package replication

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/opencontainers/go-digest"

	"github.com/berth-registry/berth/events"
)

// subjects are the stream subjects a mirror reads: the changes to
// repositories, nothing else (resources, jobs and pulls stay local).
var subjects = []string{
	events.TypeSubjects(events.CETypeManifestPushed),
	events.TypeSubjects(events.CETypeManifestDeleted),
	events.TypeSubjects(events.CETypeTagUpdated),
	events.TypeSubjects(events.CETypeTagDeleted),
	events.TypeSubjects(events.CETypeRepositoryDeleted),
}

// Timing of a mirror; variables so that tests can shorten them.
var (
	retryMin     = 500 * time.Millisecond
	retryMax     = 30 * time.Second
	headEvery    = 2 * time.Second
	natsTimeout  = 5 * time.Second
	readOnlyWait = 2 * time.Second
	// cursorEvery bounds how many applied events may share one cursor
	// commit; cursorIdle is how long the stream must be quiet before the
	// cursor is committed anyway (cursor.go).
	cursorEvery = 64
	cursorIdle  = 100 * time.Millisecond
)

// mirror follows one policy's origin for one leader term.
type mirror struct {
	p      Policy
	target Target
	logger *slog.Logger
	copy   *copier
	rep    *reporter

	mu sync.Mutex
	st Status
	// behindSince is when the mirror was last seen caught up, then behind.
	behindSince time.Time
	bytes       atomic.Int64
	artifacts   atomic.Uint64
	// offline is set while the connection to the origin's NATS is down.
	// Events already delivered still apply meanwhile (their bytes come
	// over HTTP), but they must not clear the error or report the mirror
	// caught up: the origin's head is out of sight.
	offline atomic.Bool
}

func newMirror(p Policy, target Target, logger *slog.Logger) *mirror {
	m := &mirror{p: p, target: target, logger: logger.With("policy", p.Name)}
	m.copy = &copier{origin: &originClient{o: p.Origin, limit: newLimiter(p.Bandwidth)}, target: target, bytes: &m.bytes, artifacts: &m.artifacts}
	m.rep = newReporter(p.Name, target, m.logger)
	m.st = Status{Policy: p.Name, Registry: p.Registry}
	if c, ok := target.View().Cursor(p.Name); ok {
		m.st.Cursor, m.st.Seq = c.Index, c.Seq
	}
	return m
}

func (m *mirror) status() Status {
	m.mu.Lock()
	defer m.mu.Unlock()
	st := m.st
	st.Bytes = m.bytes.Load()
	st.Artifacts = m.artifacts.Load()
	if !m.behindSince.IsZero() {
		st.LagSeconds = time.Since(m.behindSince).Seconds()
	}
	return st
}

func (m *mirror) update(f func(*Status)) {
	m.mu.Lock()
	defer m.mu.Unlock()
	f(&m.st)
	// The cursor of an initial sync is the listing's applied index,
	// which may be past the stream's newest replicated event.
	m.st.OriginHead = max(m.st.OriginHead, m.st.Cursor)
	// Lag: behind as soon as the head is past the cursor, caught up
	// when they meet.
	switch {
	case m.st.OriginHead > m.st.Cursor && m.behindSince.IsZero():
		m.behindSince = time.Now()
	case m.st.OriginHead <= m.st.Cursor:
		m.behindSince = time.Time{}
	}
	if m.st.OriginHead > m.st.Cursor && m.st.LagEntries == 0 {
		m.st.LagEntries = 1 // behind, count not known yet
	}
	if m.st.OriginHead <= m.st.Cursor {
		m.st.LagEntries = 0
	}
}

func (m *mirror) fail(ctx context.Context, err error) {
	m.rep.failed(ctx, err)
	m.update(func(s *Status) { s.LastError, s.ErrorTime = err.Error(), time.Now().UTC() })
}

// run follows the origin until ctx ends, retrying with backoff.
func (m *mirror) run(ctx context.Context) {
	m.update(func(s *Status) { s.Running = true })
	defer m.update(func(s *Status) { s.Running, s.Syncing = false, false })
	rctx, stopReports := context.WithCancel(ctx)
	reported := make(chan struct{})
	go func() {
		defer close(reported)
		m.rep.run(rctx)
	}()
	defer func() { stopReports(); <-reported }()
	m.rep.started(ctx, "")
	wait := retryMin
	for ctx.Err() == nil {
		start := time.Now()
		err := m.follow(ctx)
		if ctx.Err() != nil || m.target.Fence() != nil {
			return
		}
		if err != nil {
			m.fail(ctx, err)
		}
		if time.Since(start) > time.Minute {
			wait = retryMin // it ran a while: a new outage
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
		wait = min(wait*2, retryMax)
	}
}

// follow connects, syncs if it must, and applies the stream until an
// error or the end of ctx.
func (m *mirror) follow(ctx context.Context) error {
	o := m.p.Origin
	opts := append([]nats.Option{nats.Name("berth-mirror-" + m.p.Name), nats.Timeout(natsTimeout), nats.MaxReconnects(-1),
		// While the client reconnects, reads just wait: without these
		// the status would not show that the origin is cut off.
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			if err != nil && ctx.Err() == nil {
				m.offline.Store(true)
				m.fail(ctx, fmt.Errorf("lost the connection to the origin's NATS %v (%v): reconnecting; check the network between this cluster and the origin", o.NATSURLs, err))
			}
		}),
		nats.ReconnectHandler(func(*nats.Conn) {
			m.logger.Info("reconnected to the origin's NATS", "urls", o.NATSURLs)
			m.offline.Store(false)
			m.update(func(s *Status) { s.LastError = "" })
		}),
	}, o.NATSOption...)
	nc, err := nats.Connect(joinURLs(o.NATSURLs), opts...)
	if err != nil {
		return fmt.Errorf("connect to the origin's NATS %v: %w", o.NATSURLs, err)
	}
	defer nc.Close()
	m.offline.Store(false)
	js, err := jetstream.New(nc)
	if err != nil {
		return fmt.Errorf("origin jetstream: %w", err)
	}
	sctx, cancel := context.WithTimeout(ctx, natsTimeout)
	stream, err := js.Stream(sctx, o.Stream)
	cancel()
	if err != nil {
		return fmt.Errorf("origin stream %s: %w (check spec.events.stream of the Registry)", o.Stream, err)
	}
	info := stream.CachedInfo()

	cur, ok := m.target.View().Cursor(m.p.Name)
	switch {
	case !ok:
		m.logger.Info("mirror has no cursor: initial sync from the origin's listing")
		if cur, err = m.initialSync(ctx, stream); err != nil {
			return err
		}
	case cur.Seq+1 < info.State.FirstSeq:
		m.logger.Warn("mirror cursor is out of the origin stream's retention: full sync", "seq", cur.Seq, "first", info.State.FirstSeq)
		if cur, err = m.initialSync(ctx, stream); err != nil {
			return err
		}
	}
	m.update(func(s *Status) { s.Cursor, s.Seq, s.LastError = cur.Index, cur.Seq, "" })
	m.logger.Info("mirror following the origin", "stream", o.Stream, "cursor", cur.Index, "seq", cur.Seq)

	cons, err := stream.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{
		FilterSubjects: subjects,
		DeliverPolicy:  jetstream.DeliverByStartSequencePolicy,
		OptStartSeq:    cur.Seq + 1,
	})
	if err != nil {
		return fmt.Errorf("origin consumer on %s: %w", o.Stream, err)
	}
	it, err := cons.Messages()
	if err != nil {
		return fmt.Errorf("origin consumer on %s: %w", o.Stream, err)
	}
	defer it.Stop()
	if ci := cons.CachedInfo(); ci != nil && ci.NumPending == 0 {
		// Nothing to replay: a mirror back from an outage or an
		// initial sync is caught up already.
		m.rep.progress(ctx, 0, m.artifacts.Load(), m.bytes.Load(), true)
	}

	headCtx, stopHead := context.WithCancel(ctx)
	defer stopHead()
	go m.watchHead(headCtx, stream)

	cw := &cursorWriter{m: m, applied: cur, committed: cur}
	defer cw.flushOnExit(ctx)

	// A reader takes messages off the stream and starts prefetching
	// their bytes, up to prefetchDepth events ahead of the applier, which
	// applies them one by one in order (prefetch.go).
	rctx, stopRead := context.WithCancel(ctx)
	var fetches sync.WaitGroup
	items := make(chan *item, prefetchDepth)
	readErr := make(chan error, 1)
	go func() {
		defer close(items)
		slots := make(chan struct{}, prefetchDepth)
		for {
			msg, err := it.Next(jetstream.NextContext(rctx))
			if err != nil {
				if rctx.Err() == nil {
					readErr <- err
				}
				return
			}
			itm := m.read(msg)
			if itm.err == nil && itm.index > cur.Index {
				itm.warm = m.prefetch(rctx, &fetches, slots, itm.ce)
			}
			select {
			case items <- itm:
			case <-rctx.Done():
				return
			}
		}
	}()
	defer func() {
		stopRead()
		for range items {
		}
		fetches.Wait()
	}()
	ap := newApplier(m, cw)
	idle := time.NewTimer(cursorIdle)
	defer idle.Stop()
	var (
		next     *pending // read, waiting to start
		readDone bool
		failed   error
	)
	for {
		for next != nil && failed == nil && ap.canStart(next) {
			ap.start(ctx, next)
			next = nil
		}
		if ap.n == 0 && (failed != nil || (readDone && next == nil)) {
			break
		}
		var in <-chan *item
		if next == nil && !readDone && failed == nil {
			in = items
		}
		select {
		case itm, ok := <-in:
			if !ok {
				readDone = true
				continue
			}
			next = ap.classify(itm)
			continue
		case p := <-ap.finished:
			// Any failure stops new starts, so that no later event of
			// its repository overtakes it; the cursor stays before it.
			if err := ap.finish(ctx, p); err != nil && failed == nil {
				failed = err
				stopRead()
			} else if p.err != nil && failed == nil {
				failed = p.err
				stopRead()
			}
		case <-idle.C:
			// Quiet for a moment: commit what was applied.
			if err := cw.flush(ctx); err != nil && failed == nil {
				failed = err
				stopRead()
			}
			continue
		}
		if !idle.Stop() {
			select {
			case <-idle.C:
			default:
			}
		}
		idle.Reset(cursorIdle)
	}
	if failed != nil {
		return failed
	}
	select {
	case err := <-readErr:
		return fmt.Errorf("read the origin stream: %w", err)
	default:
		return nil // ctx ended
	}
}

// read decodes one streamed message.
func (m *mirror) read(msg jetstream.Msg) *item {
	meta, err := msg.Metadata()
	if err != nil {
		return &item{err: fmt.Errorf("origin message metadata: %w", err)}
	}
	itm := &item{meta: meta}
	itm.index, err = strconv.ParseUint(msg.Headers().Get("Berth-Index"), 10, 64)
	if err != nil {
		itm.err = fmt.Errorf("origin message %d on %s has no Berth-Index header: is the stream a Berth event stream?", meta.Sequence.Stream, msg.Subject())
		return itm
	}
	if err := json.Unmarshal(msg.Data(), &itm.ce); err != nil {
		itm.err = fmt.Errorf("origin event %d: %w", itm.index, err)
	}
	return itm
}

// apply carries out one origin event here.
func (m *mirror) apply(ctx context.Context, c *copier, ce events.CloudEvent) error {
	d := ce.Data
	if d.Repository == "" || !m.p.Covers(d.Repository) {
		return nil
	}
	dst := m.p.Destination(d.Repository)
	view := m.target.View()
	switch ce.Type {
	case events.CETypeManifestPushed, events.CETypeTagUpdated:
		tags := d.Tags
		if ce.Type == events.CETypeTagUpdated {
			tags = []string{d.Tag}
		}
		var want []string
		for _, t := range tags {
			if m.p.WantsTag(t) {
				want = append(want, t)
			}
		}
		err := m.copyArtifact(ctx, c, d.Repository, dst, d.Digest, want)
		if errors.Is(err, errGone) {
			// Deleted at the origin since: its delete event follows.
			m.logger.Info("skipped an artifact the origin no longer has", "repository", d.Repository, "digest", d.Digest, "err", err)
			return nil
		}
		return err
	case events.CETypeTagDeleted:
		if !m.p.Deletion || !m.p.WantsTag(d.Tag) {
			return nil
		}
		if _, ok := view.Tag(dst, d.Tag); !ok {
			return nil
		}
		return c.propose(ctx, events.TagDeleted{Repo: dst, Tag: d.Tag})
	case events.CETypeManifestDeleted:
		if !m.p.Deletion || !view.Manifest(dst, d.Digest) {
			return nil
		}
		return c.propose(ctx, events.ManifestDeleted{Repo: dst, Digest: d.Digest})
	case events.CETypeRepositoryDeleted:
		if !m.p.Deletion || !view.RepositoryExists(dst) {
			return nil
		}
		return c.propose(ctx, events.RepositoryDeleted{Repo: dst})
	}
	return nil
}

// watchHead keeps OriginHead current: the newest replicated event's index
// in the origin's stream, so lag shows even while no event arrives here
// (the mirror is cut off from a busy origin's NATS, say).
func (m *mirror) watchHead(ctx context.Context, stream jetstream.Stream) {
	t := time.NewTicker(headEvery)
	defer t.Stop()
	for {
		var head uint64
		for _, subj := range subjects {
			gctx, cancel := context.WithTimeout(ctx, natsTimeout)
			msg, err := stream.GetLastMsgForSubject(gctx, subj)
			cancel()
			if err != nil {
				continue // no such message yet, or the origin is away
			}
			if i, err := strconv.ParseUint(msg.Header.Get("Berth-Index"), 10, 64); err == nil {
				head = max(head, i)
			}
		}
		if head > 0 {
			m.update(func(s *Status) { s.OriginHead = max(s.OriginHead, head) })
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func joinURLs(urls []string) string {
	s := ""
	for i, u := range urls {
		if i > 0 {
			s += ","
		}
		s += u
	}
	return s
}

// copyArtifact copies one artifact (a manifest, an index with its
// children) with c and reports it once if anything was copied; a manifest
// that was here already only gets its tags, and no report.
func (m *mirror) copyArtifact(ctx context.Context, c *copier, src, dst string, d digest.Digest, tags []string) error {
	own := *c
	if own.warm == nil {
		// No prefetch (an initial sync): count this artifact all the
		// same.
		own.warm = &warmed{}
	}
	err := own.manifest(ctx, src, dst, d, tags, 0)
	if n := own.warm.manifests.Load(); n > 0 {
		// Reported even when a later step failed: the copied manifests
		// are committed and will not be copied again. The bytes are
		// those its prefetch fetched and those fetched now.
		m.rep.copied(ctx, dst, d.String(), tags, own.warm.bytes.Load(), int(n))
	}
	return err
}
