package gc

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"time"

	"github.com/opencontainers/go-digest"
	"golang.org/x/sync/errgroup"

	"github.com/berth-registry/berth/blob"
	"github.com/berth-registry/berth/events"
	"github.com/berth-registry/berth/fsm"
)

// Proposer commits an event through the log and waits until the local FSM
// applied it. The error is a *fsm.Refusal when Apply refused it.
type Proposer interface {
	Propose(ctx context.Context, p events.Payload) (uint64, error)
}

// Deleter removes a blob's bytes; blob.ErrNotFound counts as done. A
// sweep calls Delete from several goroutines at once.
type Deleter interface {
	Delete(ctx context.Context, d digest.Digest) error
}

// Fence reports whether this node still leads in the term the job started
// in (rule 9). It is asked before every batch of deletes.
type Fence func() error

// ErrFenced is what a job returns when its leadership ended.
var ErrFenced = errors.New("gc: no longer leader in the term the job started in")

// ErrPaused is what a job returns when Paused stopped it before a run or
// a sweep started, or between two batches of deletes. Nothing is lost:
// the open run stays in the log and Resume finishes it later.
var ErrPaused = errors.New("garbage collection is paused")

// Paused reports why GC must not start a run, start a sweep or delete
// bytes now (the registry is in read-only mode), or nil. The error should
// wrap ErrPaused.
type Paused func() error

// Job runs GC on the leader. One Job belongs to one leader term.
type Job struct {
	Props Proposer
	View  func() *fsm.View // the local FSM's state (the leader's is current after Propose)
	Blobs Deleter
	Fence Fence
	// Paused, if set, is asked with Fence; see the type.
	Paused Paused
	Logger *slog.Logger
	// Grace is gc.uploadmaxage.
	Grace time.Duration
	// Batch is how many deletes run between two fence checks (default 100).
	Batch int
	// Parallel is how many deletes of a batch run at once (default 8).
	Parallel int
	// Now stamps run names; tests set it.
	Now func() time.Time

	prog tracker
}

// Result is what one run did.
type Result struct {
	Run       string
	Index     uint64
	Blobs     []digest.Digest // what was (or, dry, would be) deleted
	Manifests []events.ManifestRef
	Deleted   int
	Bytes     int64
	// Open is, for a dry run, the run that a real run would finish first.
	Open *fsm.GCRun
}

// check asks the fence, then whether GC is paused.
func (j *Job) check() error {
	if err := j.Fence(); err != nil {
		return err
	}
	if j.Paused != nil {
		return j.Paused()
	}
	return nil
}

// pausedByApply turns Apply's read-only refusal (the mode was switched on
// between the check and the commit) into ErrPaused.
func pausedByApply(err error) error {
	var r *fsm.Refusal
	if errors.As(err, &r) && r.Code == fsm.CodeReadOnly {
		return fmt.Errorf("%w: %s", ErrPaused, r.Message)
	}
	return err
}

func (j *Job) now() time.Time {
	if j.Now != nil {
		return j.Now()
	}
	return time.Now().UTC()
}

// DryRun computes, at the current index, exactly what a run started now
// would delete if nothing referenced a candidate meanwhile. It commits
// nothing.
//
// A run still open (a failover or read-only mode interrupted it) is
// finished first by the real run; Open names it, and its candidates are
// not in the lists.
func (j *Job) DryRun(opt Options) Result {
	v := j.View()
	m := ComputeMark(v, opt, j.now())
	r := Result{Index: m.Index, Blobs: m.Blobs, Manifests: m.Manifests, Bytes: m.Bytes()}
	if st, ok := v.GCRun(); ok {
		r.Open = &st
	}
	return r
}

// Run collects garbage once: it first finishes a run an earlier leader
// left open, then starts a new one with opt.
func (j *Job) Run(ctx context.Context, opt Options) (Result, error) {
	defer j.begin()()
	if _, err := j.Resume(ctx); err != nil {
		return Result{}, err
	}
	if err := j.check(); err != nil {
		return Result{}, err
	}
	run := strconv.FormatInt(j.now().UnixNano(), 36)
	start := events.GCStarted{Run: run, DeleteUntagged: opt.DeleteUntagged, GraceSeconds: int64(opt.Grace / time.Second)}
	if _, err := j.Props.Propose(ctx, start); err != nil {
		return Result{}, fmt.Errorf("gc: start run: %w", pausedByApply(err))
	}
	// The view is at or after GCStarted: anything Apply did not note as
	// touched is in it. The grace period is measured against the event's
	// time, kept in the run row.
	v := j.View()
	st, ok := v.GCRun()
	if !ok || st.Run != run {
		return Result{}, fmt.Errorf("gc: run %s is not open after its start committed", run)
	}
	j.phase(run, PhaseMarking, 0, 0)
	m := ComputeMark(v, Options{DeleteUntagged: st.DeleteUntagged, Grace: time.Duration(st.GraceSeconds) * time.Second}, st.Started)
	j.phase(run, PhaseMarking, len(m.Blobs)+len(m.Manifests), m.Bytes())
	sizes := map[digest.Digest]int64{}
	for i, d := range m.Blobs {
		sizes[d] = m.Sizes[i]
	}
	for _, c := range m.Chunks(run) {
		if err := j.Fence(); err != nil {
			return Result{Run: run}, err
		}
		if _, err := j.Props.Propose(ctx, c); err != nil {
			j.cancel(run, err)
			return Result{Run: run}, fmt.Errorf("gc: commit mark of run %s: %w", run, err)
		}
		var b int64
		for _, d := range c.Blobs {
			b += sizes[d]
		}
		j.step(len(c.Blobs)+len(c.Manifests), b)
	}
	res, err := j.sweep(ctx, run)
	res.Index = m.Index
	res.Manifests = m.Manifests
	return res, err
}

// cancel abandons a run that could not be marked, so the next can start.
// A failure is only logged: the next leader resumes (and sweeps) the run.
func (j *Job) cancel(run string, cause error) {
	ctx, stop := context.WithTimeout(context.Background(), 10*time.Second)
	defer stop()
	if j.Fence() != nil {
		return
	}
	if _, err := j.Props.Propose(ctx, events.GCCancelled{Run: run, Reason: cause.Error()}); err != nil {
		j.Logger.Warn("gc: cancel run", "run", run, "err", err)
	}
}

// Resume finishes the open run, if any: a leader that died between mark
// and sweep, or in the middle of a sweep, left it in the log. Deleting
// again what an earlier leader deleted is harmless.
func (j *Job) Resume(ctx context.Context) (Result, error) {
	defer j.begin()()
	st, ok := j.View().GCRun()
	if !ok {
		return Result{}, nil
	}
	j.Logger.Info("gc: resuming the open run", "run", st.Run, "phase", st.Phase)
	return j.sweep(ctx, st.Run)
}

// sweep freezes the candidates (if not yet), deletes their bytes in
// fenced batches, and ends the run.
func (j *Job) sweep(ctx context.Context, run string) (Result, error) {
	res := Result{Run: run}
	if err := j.check(); err != nil {
		return res, err
	}
	if st, _ := j.View().GCRun(); st.Phase == fsm.GCPhaseMarking {
		if _, err := j.Props.Propose(ctx, events.GCSweepStarted{Run: run}); err != nil {
			return res, fmt.Errorf("gc: start sweep of run %s: %w", run, pausedByApply(err))
		}
	}
	// Only what is still a candidate after every later reference was
	// taken out: the FSM's set, not the mark.
	ds, sizes := j.View().GCBlobCandidates()
	var total int64
	for _, s := range sizes {
		total += s
	}
	j.phase(run, PhaseSweeping, len(ds), total)
	batch := j.Batch
	if batch <= 0 {
		batch = 100
	}
	for start := 0; start < len(ds); start += batch {
		if err := j.check(); err != nil {
			return res, err
		}
		end := min(start+batch, len(ds))
		errs := j.deleteBatch(ctx, ds[start:end], sizes[start:end])
		for k, err := range errs {
			i := start + k
			switch {
			case err == nil:
				res.Deleted++
				res.Bytes += sizes[i]
			case errors.Is(err, blob.ErrNotFound):
				// An earlier leader's sweep, or bytes never written here.
			default:
				return res, fmt.Errorf("gc: delete %s (run %s): %w", ds[i], run, err)
			}
			res.Blobs = append(res.Blobs, ds[i])
		}
	}
	if err := j.Fence(); err != nil {
		return res, err
	}
	if _, err := j.Props.Propose(ctx, events.GCSwept{Run: run, Deleted: res.Deleted, Bytes: res.Bytes}); err != nil {
		return res, fmt.Errorf("gc: end run %s: %w", run, err)
	}
	j.Logger.Info("gc: run done", "run", run, "deleted", res.Deleted, "bytes", res.Bytes)
	return res, nil
}

// deleteBatch deletes one fenced batch, Parallel at a time: an object
// store answers each delete in a round trip, and one at a time a sweep of
// many small blobs spent its time waiting. Every delete of the batch is
// tried (each is idempotent); a cancelled ctx fails those not yet started.
// Progress counts each delete as it returns.
func (j *Job) deleteBatch(ctx context.Context, ds []digest.Digest, sizes []int64) []error {
	errs := make([]error, len(ds))
	par := j.Parallel
	if par <= 0 {
		par = 8
	}
	var g errgroup.Group
	g.SetLimit(par)
	for k, d := range ds {
		g.Go(func() error {
			if err := ctx.Err(); err != nil {
				errs[k] = err
				return nil
			}
			err := j.Blobs.Delete(ctx, d)
			if err == nil || errors.Is(err, blob.ErrNotFound) {
				j.step(1, sizes[k])
			}
			errs[k] = err
			return nil
		})
	}
	g.Wait()
	return errs
}

// Purger removes upload sessions (and their leftovers) started before a
// time. Both blob drivers implement it.
type Purger interface {
	PurgeUploads(ctx context.Context, olderThan time.Time) (int, error)
}

// PurgeUploads is PurgeUploads (the function) with the job's fence,
// reported as its progress while it runs.
func (j *Job) PurgeUploads(ctx context.Context, p Purger, maxAge time.Duration, now time.Time) (int, error) {
	defer j.begin()()
	j.phase("", PhasePurging, 0, 0)
	n, err := PurgeUploads(ctx, p, j.Fence, maxAge, now)
	j.step(n, 0)
	return n, err
}

// PurgeUploads removes sessions older than maxAge, if still leader.
func PurgeUploads(ctx context.Context, p Purger, fence Fence, maxAge time.Duration, now time.Time) (int, error) {
	if err := fence(); err != nil {
		return 0, err
	}
	n, err := p.PurgeUploads(ctx, now.Add(-maxAge))
	if err != nil {
		return n, fmt.Errorf("gc: purge uploads older than %s: %w", maxAge, err)
	}
	return n, nil
}
