package replication

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/opencontainers/go-digest"
	"github.com/robfig/cron/v3"

	"github.com/berth-registry/berth/blob"
	"github.com/berth-registry/berth/events"
)

// Push mode (issue 12, point 3) copies this cluster's artifacts to any OCI
// registry. The leader runs it, fenced by its term like a mirror:
//
//   - A job (trigger schedule, `clusterctl replication run`, and the
//     first sync of an event policy) lists the covered repositories'
//     wanted tags here and pushes each artifact: an index with its
//     children, an image with its blobs, then every referrer of it
//     (signatures, SBOMs). After each artifact it commits
//     ReplicationReported{artifact.copied, Job}; the FSM keeps the open
//     job's copied artifacts, so a new leader resumes the job and skips
//     them without asking the destination anything.
//   - Trigger event follows this cluster's own event stream with a cursor
//     in the log (events.MirrorCursor keyed by the policy), as a mirror
//     follows its origin's: each push, tag or delete is carried out at
//     the destination, then the cursor is committed.
//   - Each artifact is retried with exponential backoff on its own; a job
//     never starts over. A failure is reported (kind failed) once per
//     change of error, not per retry.

// PushPolicy is one push ReplicationPolicy with its destination resolved
// by the node.
type PushPolicy struct {
	Name     string
	Registry string
	// Key changes whenever anything the running policy depends on
	// changes, so the manager restarts it.
	Key string
	// Trigger is event, schedule or manual; Schedule is set for
	// schedule.
	Trigger  string
	Schedule cron.Schedule
	// Covers says whether a repository here is pushed; Destination names
	// it at the destination; WantsTag filters tags.
	Covers      func(repo string) bool
	Destination func(repo string) string
	WantsTag    func(tag string) bool
	Deletion    bool
	Bandwidth   int64
	Dest        Destination
}

// Destination is the registry a push policy writes to.
type Destination struct {
	// URL is the registry's base (https://registry.example.com); http://
	// talks plain HTTP.
	URL      string
	HTTP     *http.Client
	Username string
	Password string
	// Token is a bearer token (credentials type token).
	Token string
}

// LocalManifest is what a push needs of a manifest here.
type LocalManifest struct {
	MediaType string
	Size      int64
	Subject   digest.Digest
	Blobs     []digest.Digest
	Manifests []digest.Digest
}

// PushJob is a push policy's newest job as the log has it.
type PushJob struct {
	Name      string
	Done      bool
	Artifacts int
	Bytes     int64
	LastError string
	Finished  time.Time
}

// PushLocal is a consistent read of this cluster's state for pushing.
type PushLocal interface {
	// Index is the log index the read reflects.
	Index() uint64
	Repositories() []string
	Tags(repo string) []string
	Tag(repo, tag string) (digest.Digest, bool)
	Manifest(repo string, d digest.Digest) (LocalManifest, bool)
	// Referrers lists the manifests in repo whose subject is d.
	Referrers(repo string, d digest.Digest) []digest.Digest
	Job(policy string) (PushJob, bool)
	// Copied says whether job reported repo@d copied.
	Copied(policy, job, repo string, d digest.Digest) bool
	Cursor(policy string) (Cursor, bool)
}

// PushTarget is this cluster as a push policy reads and reports to it.
type PushTarget struct {
	View func() PushLocal
	// Propose commits a report or cursor through the log.
	Propose func(ctx context.Context, p events.Payload) error
	Blobs   blob.Store
	Fence   func() error
	// Stream opens this cluster's own event stream (trigger event); nil
	// when events are off.
	Stream func(ctx context.Context) (jetstream.Stream, error)
}

// Timing of push policies; variables so that tests can shorten them.
var (
	pushRetryMin = 500 * time.Millisecond
	pushRetryMax = 30 * time.Second
	// pushAttempts bounds the tries of one artifact in a job: after them
	// the job moves on and reports the artifact failed, so one broken
	// artifact does not hang the job (the next run tries it again).
	pushAttempts = 8
)

// errBusy refuses a manual run while a job of the policy runs.
var errBusy = errors.New("a job of this policy is running: wait for it (clusterctl replication status NAME)")

// pushRun runs one push policy for one leader term.
type pushRun struct {
	p      PushPolicy
	target PushTarget
	logger *slog.Logger
	dest   *destClient
	runNow chan string // manual jobs, by name
	// uncommitted counts the events of other repositories read since
	// the cursor was last committed (the follower's only).
	uncommitted int

	jobMu sync.Mutex // one job at a time

	mu          sync.Mutex
	st          Status
	job         string // the job running now, "" when none
	lastFailure string // the error last reported, per change not per retry
	bytes       atomic.Int64
	artifacts   atomic.Uint64
}

func newPushRun(p PushPolicy, target PushTarget, logger *slog.Logger) *pushRun {
	r := &pushRun{p: p, target: target, logger: logger.With("policy", p.Name), runNow: make(chan string, 1)}
	r.dest = &destClient{d: p.Dest, target: target, limit: newLimiter(p.Bandwidth), bytes: &r.bytes}
	r.st = Status{Policy: p.Name, Registry: p.Registry, Mode: "push"}
	return r
}

func (r *pushRun) status() Status {
	r.mu.Lock()
	st := r.st
	running := r.job
	r.mu.Unlock()
	st.Bytes = r.bytes.Load()
	st.Artifacts = r.artifacts.Load()
	v := r.target.View()
	if c, ok := v.Cursor(r.p.Name); ok {
		st.Cursor, st.Seq = c.Index, c.Seq
	}
	if j, ok := v.Job(r.p.Name); ok {
		st.Job, st.JobArtifacts, st.JobBytes, st.JobFinished = j.Name, j.Artifacts, j.Bytes, j.Finished
		switch {
		case j.Done:
			st.JobState = "done"
		case running == j.Name:
			st.JobState = "running"
		default:
			st.JobState = "interrupted"
		}
	}
	return st
}

func (r *pushRun) update(f func(*Status)) {
	r.mu.Lock()
	defer r.mu.Unlock()
	f(&r.st)
}

// run carries out the policy's triggers until ctx ends. An open job of
// an earlier leader is resumed first.
func (r *pushRun) run(ctx context.Context) {
	r.update(func(s *Status) { s.Running = true })
	defer r.update(func(s *Status) { s.Running = false })
	var wg sync.WaitGroup
	if r.p.Trigger == "event" {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r.followLoop(ctx)
		}()
	}
	r.jobLoop(ctx)
	wg.Wait()
}

// jobLoop runs the open job, then scheduled and manual jobs.
func (r *pushRun) jobLoop(ctx context.Context) {
	if j, ok := r.target.View().Job(r.p.Name); ok && !j.Done {
		r.logger.Info("resuming the push job a previous leader left open", "job", j.Name)
		r.runJob(ctx, j.Name, true)
	}
	for ctx.Err() == nil {
		var tick <-chan time.Time
		stop := func() bool { return false }
		if r.p.Schedule != nil {
			t := time.NewTimer(time.Until(r.p.Schedule.Next(time.Now())))
			tick, stop = t.C, t.Stop
		}
		select {
		case <-ctx.Done():
			stop()
			return
		case <-tick:
			r.runJob(ctx, jobName("schedule"), false)
		case name := <-r.runNow:
			stop()
			r.runJob(ctx, name, false)
		}
	}
}

// requestRun starts a manual job; it returns the job's name.
func (r *pushRun) requestRun() (string, error) {
	r.mu.Lock()
	busy := r.job != ""
	r.mu.Unlock()
	if busy {
		return "", errBusy
	}
	name := jobName("manual")
	select {
	case r.runNow <- name:
		return name, nil
	default:
		return "", errBusy
	}
}

// jobName names a job by its trigger and start time, unique per policy.
func jobName(trigger string) string {
	return trigger + "-" + time.Now().UTC().Format("20060102T150405.000Z")
}
