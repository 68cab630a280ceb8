package node

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/berth-registry/berth/blob"
	"github.com/berth-registry/berth/blob/cache"
	"github.com/berth-registry/berth/events"
	"github.com/berth-registry/berth/fsm"
	"github.com/berth-registry/berth/gc"
)

// nodeGC is this node's part in garbage collection: the loop of the
// current leader term, if this node leads (rule 9). Its zero value is
// ready.
type nodeGC struct {
	mu  sync.Mutex
	cur *gcLoop
	// lastErr is the last failed run's error on this node, for status.
	lastErr atomic.Pointer[string]
}

// gcLoop runs GC jobs one at a time for one leader term.
type gcLoop struct {
	job  *gc.Job
	reqs chan gcRequest
	// busy is set while a run (scheduled or requested) is in progress.
	busy atomic.Bool
}

// run runs one job, marked busy for status and requests.
func (l *gcLoop) run(ctx context.Context, opt gc.Options) (gc.Result, error) {
	l.busy.Store(true)
	defer l.busy.Store(false)
	return l.job.Run(ctx, opt)
}

type gcRequest struct {
	opt   gc.Options
	reply chan gcReply // buffered: the loop never waits for the caller
}

type gcReply struct {
	res gc.Result
	err error
}

// GCRunRequest is what POST /admin/v1/gc/run asks for.
type GCRunRequest struct {
	DryRun, DeleteUntagged, Wait bool
}

// GCRunAnswer is what a run did, or (dry) would delete at Index.
type GCRunAnswer struct {
	State     string               `json:"state"` // dry-run, done, started
	Run       string               `json:"run,omitempty"`
	Index     uint64               `json:"index,omitempty"`
	Blobs     []digest.Digest      `json:"blobs,omitempty"`
	Manifests []events.ManifestRef `json:"manifests,omitempty"`
	Deleted   int                  `json:"deleted"`
	Bytes     int64                `json:"bytes"`
	// OpenRun (dry run) is a run left open, in OpenPhase, by a failover or
	// read-only mode: the real run finishes it before it marks anew.
	OpenRun   string `json:"openRun,omitempty"`
	OpenPhase string `json:"openPhase,omitempty"`
}

// GCStatusAnswer is GET /admin/v1/gc/status.
type GCStatusAnswer struct {
	Open      *fsm.GCRun     `json:"open,omitempty"`
	Runs      []fsm.GCRecord `json:"runs"`
	LastError string         `json:"lastError,omitempty"`
	// Paused says why no run or sweep starts now (read-only mode).
	Paused string `json:"paused,omitempty"`
	// Progress is the leader's job in progress, if any.
	Progress *gc.Progress `json:"progress,omitempty"`
	// Leader is the node ID of the leader that answered; empty when a
	// follower could not ask it and answered from its own state (Note
	// says why): then Progress and LastError are unknown.
	Leader string `json:"leader,omitempty"`
	Note   string `json:"note,omitempty"`
}

// NotLeaderError is what runGCHere returns on a node that does not lead: RunGC
// then forwards the request, and the internal API answers it as a 409.
type NotLeaderError struct{ Leader string }

func (e *NotLeaderError) Error() string {
	if e.Leader == "" {
		return "this node does not lead the cluster and no leader is known; retry"
	}
	return "garbage collection runs on the leader; send the request to " + e.Leader
}

// ErrGCBusy is the answer to a run requested while one is running.
var ErrGCBusy = errors.New("a garbage collection run is already in progress; see gc status")

// startGC starts the GC loop for a leader term and returns what waits for
// it to stop. The loop runs in the term's context and its job is fenced
// by the term (rule 9).
func (n *Node) startGC(ctx context.Context, term uint64) func() {
	l := &gcLoop{reqs: make(chan gcRequest), job: &gc.Job{
		Props: n, View: n.fsm.View, Blobs: n.blobs, Logger: n.logger, Grace: n.cfg.GC.UploadMaxAge, Paused: n.gcPaused,
		Fence: func() error {
			if ctx.Err() != nil || !n.engine.IsLeader() || n.engine.Term() != term {
				return gc.ErrFenced
			}
			return nil
		},
	}}
	n.gc.mu.Lock()
	n.gc.cur = l
	n.gc.mu.Unlock()
	done := make(chan struct{})
	go func() {
		defer close(done)
		n.runGC(ctx, l)
	}()
	return func() {
		<-done
		n.gc.mu.Lock()
		if n.gc.cur == l {
			n.gc.cur = nil
		}
		n.gc.mu.Unlock()
	}
}

func (n *Node) runGC(ctx context.Context, l *gcLoop) {
	// paused is set when a job stopped for read-only mode, or the loop
	// saw the mode on; the open run, if any, is resumed once it is lifted.
	_, err := l.job.Resume(ctx)
	paused := n.gcFailed(err)
	resume := time.NewTicker(gcResumeEvery)
	defer resume.Stop()
	sched := n.gcSchedule()
	var tick <-chan time.Time
	if sched != nil {
		t := sched.timer()
		defer t.Stop()
		tick = t.C
	}
	purge := time.NewTicker(n.cfg.GC.PurgeInterval)
	defer purge.Stop()
	n.purgeUploads(ctx, l)
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick:
			// Not due yet: the timer fired for a slot an on-demand run
			// (or a wall clock step) made moot; reset re-aims it.
			if !sched.due() {
				sched.reset()
				continue
			}
			sched.attempted()
			if err := n.gcPaused(); err != nil {
				n.logger.Info("scheduled gc run skipped: the registry is in read-only mode", "reason", err)
			} else {
				// Retention first, so this run collects what it frees.
				n.retentionBeforeGC(ctx)
				_, err := l.run(ctx, gc.Options{DeleteUntagged: n.cfg.GC.DeleteUntagged, Grace: n.cfg.GC.UploadMaxAge})
				paused = n.gcFailed(err)
			}
			sched.reset()
		case <-resume.C:
			// Runs happen only in this loop, so none is in progress here.
			switch {
			case n.gcPaused() != nil:
				paused = true
			case paused:
				paused = false
				if _, open := n.fsm.View().GCRun(); open {
					l.busy.Store(true)
					_, err := l.job.Resume(ctx)
					l.busy.Store(false)
					paused = n.gcFailed(err)
				}
			}
		case <-purge.C:
			n.purgeUploads(ctx, l)
		case req := <-l.reqs:
			res, err := l.run(ctx, req.opt)
			paused = n.gcFailed(err)
			req.reply <- gcReply{res, err}
			if sched != nil {
				sched.reset() // the run may have taken the due slot
			}
		}
	}
}

// gcResumeEvery is how often a loop whose run read-only mode paused looks
// whether the mode was lifted.
const gcResumeEvery = 2 * time.Second

// gcFailed records a failed run, if err is one, and reports whether it
// was paused by read-only mode (then the run resumes after the lift).
func (n *Node) gcFailed(err error) (paused bool) {
	switch {
	case err == nil:
		return false
	case errors.Is(err, gc.ErrPaused):
		n.logger.Info("gc paused; the open run resumes when read-only mode is lifted", "reason", err)
		return true
	case errors.Is(err, gc.ErrFenced) || errors.Is(err, context.Canceled):
		return false // the term ended; the next leader resumes
	}
	msg := err.Error()
	n.gc.lastErr.Store(&msg)
	n.logger.Warn("gc run failed; the next run resumes it", "err", err)
	return false
}

// purgeUploads removes upload sessions older than gc.uploadmaxage.
func (n *Node) purgeUploads(ctx context.Context, l *gcLoop) {
	p := purger(n.blobs)
	if p == nil || n.gcPaused() != nil {
		return // read-only: the bucket must not change, stale sessions included
	}
	count, err := l.job.PurgeUploads(ctx, p, n.cfg.GC.UploadMaxAge, time.Now())
	switch {
	case err != nil && !errors.Is(err, gc.ErrFenced) && ctx.Err() == nil:
		n.logger.Warn("purge of old upload sessions failed; retrying at the next interval", "err", err)
	case count > 0:
		n.logger.Info("purged old upload sessions", "count", count, "olderThan", n.cfg.GC.UploadMaxAge)
	}
}

// purger finds the driver under the metrics and cache wrappers.
func purger(s blob.Store) gc.Purger {
	for s != nil {
		if p, ok := s.(gc.Purger); ok {
			return p
		}
		switch w := s.(type) {
		case *cache.Store:
			s = w.Store
		case interface{ Unwrap() blob.Store }:
			s = w.Unwrap()
		default:
			return nil
		}
	}
	return nil
}

// RunGC runs (or, dry, previews) garbage collection on the leader; a
// follower forwards the request there (gc_forward.go), so clusterctl may
// reach any node, through the load balancer too.
func (n *Node) RunGC(ctx context.Context, req GCRunRequest) (GCRunAnswer, error) {
	a, err := n.runGCHere(ctx, req)
	var nl *NotLeaderError
	if errors.As(err, &nl) {
		err = n.forwardGC(ctx, "POST", "gc/run?"+req.query(), &a)
	}
	return a, err
}

// leaderGC is the GC loop of this node's current term, or a
// *NotLeaderError when it does not lead.
func (n *Node) leaderGC() (*gcLoop, error) {
	n.gc.mu.Lock()
	l := n.gc.cur
	n.gc.mu.Unlock()
	if l == nil || l.job.Fence() != nil {
		leader := ""
		if li, err := n.engine.Leader(); err == nil {
			leader = li.APIAddr
		}
		return nil, &NotLeaderError{Leader: leader}
	}
	return l, nil
}

// runGCHere is RunGC on this node, which must lead.
func (n *Node) runGCHere(ctx context.Context, req GCRunRequest) (GCRunAnswer, error) {
	l, err := n.leaderGC()
	if err != nil {
		return GCRunAnswer{}, err
	}
	opt := gc.Options{DeleteUntagged: req.DeleteUntagged, Grace: n.cfg.GC.UploadMaxAge}
	if err := n.gcPaused(); err != nil && !req.DryRun {
		return GCRunAnswer{}, gcPausedError{err}
	}
	if req.DryRun {
		r := l.job.DryRun(opt)
		a := GCRunAnswer{State: "dry-run", Index: r.Index, Blobs: r.Blobs, Manifests: r.Manifests, Bytes: r.Bytes}
		if r.Open != nil {
			a.OpenRun, a.OpenPhase = r.Open.Run, r.Open.Phase
		}
		return a, nil
	}
	gr := gcRequest{opt: opt, reply: make(chan gcReply, 1)}
	if l.busy.Load() {
		return GCRunAnswer{}, ErrGCBusy
	}
	// The loop may be between two steps (a purge, the reply to the last
	// run): wait for it, as long as the caller does.
	select {
	case l.reqs <- gr:
	case <-ctx.Done():
		return GCRunAnswer{}, ctx.Err()
	}
	if !req.Wait {
		return GCRunAnswer{State: "started"}, nil
	}
	select {
	case rep := <-gr.reply:
		r := rep.res
		a := GCRunAnswer{State: "done", Run: r.Run, Index: r.Index, Blobs: r.Blobs, Manifests: r.Manifests, Deleted: r.Deleted, Bytes: r.Bytes}
		if rep.err != nil {
			return a, fmt.Errorf("gc run %s: %w", r.Run, rep.err)
		}
		return a, nil
	case <-ctx.Done():
		return GCRunAnswer{State: "started"}, nil
	}
}

// GCStatus reports the open run, the job in progress and the last
// finished runs. The job and the last error live on the leader, so a
// follower asks it, and answers from its own state if it cannot.
func (n *Node) GCStatus(ctx context.Context) (GCStatusAnswer, error) {
	if _, err := n.leaderGC(); err == nil {
		return n.gcStatusHere(ctx)
	}
	var a GCStatusAnswer
	ferr := n.forwardGC(ctx, "GET", "gc/status", &a)
	if ferr == nil {
		return a, nil
	}
	a, err := n.gcStatusHere(ctx)
	if err != nil {
		return a, err
	}
	a.Leader = ""
	a.Note = "the leader could not be asked (" + ferr.Error() + "): runs from this node's state; progress and the last error unknown"
	return a, nil
}

// gcStatusHere is GCStatus from this node's state and job.
func (n *Node) gcStatusHere(ctx context.Context) (GCStatusAnswer, error) {
	v, err := n.ReadView(ctx)
	if err != nil {
		return GCStatusAnswer{}, err
	}
	a := GCStatusAnswer{Runs: v.GCHistory()}
	if a.Runs == nil {
		a.Runs = []fsm.GCRecord{}
	}
	if r, ok := v.GCRun(); ok {
		a.Open = &r
	}
	if e := n.gc.lastErr.Load(); e != nil {
		a.LastError = *e
	}
	if ro := v.ReadOnly(); ro.On {
		a.Paused = pausedError(ro).Error()
	}
	if l, err := n.leaderGC(); err == nil {
		a.Leader = n.cfg.Node.ID
		if p, ok := l.job.Progress(); ok {
			a.Progress = &p
		}
	}
	return a, nil
}

// LinkSince is what an upload stamps into BlobLinked.Since: the applied
// index before it wrote the bytes, once GC ever ran (0 before, so links
// stay version-1 events that every release decodes). A local index is
// never ahead of the log, so it is a safe (early) bound.
func (n *Node) LinkSince() uint64 {
	v := n.fsm.View()
	if !v.GCEverRan() {
		return 0
	}
	return v.Index()
}

func (e *NotLeaderError) HTTPStatus() int { return http.StatusConflict }

type gcBusyError struct{}

func (gcBusyError) Error() string   { return ErrGCBusy.Error() }
func (gcBusyError) Unwrap() error   { return ErrGCBusy }
func (gcBusyError) HTTPStatus() int { return http.StatusConflict }

// gcAdmin adapts the node to admin.GCRunner.
type gcAdmin struct{ n *Node }

func (g gcAdmin) RunGC(ctx context.Context, dryRun, deleteUntagged, wait bool) (any, error) {
	a, err := g.n.RunGC(ctx, GCRunRequest{DryRun: dryRun, DeleteUntagged: deleteUntagged, Wait: wait})
	if errors.Is(err, ErrGCBusy) {
		return nil, gcBusyError{}
	}
	return a, err
}

func (g gcAdmin) GCStatus(ctx context.Context) (any, error) { return g.n.GCStatus(ctx) }
