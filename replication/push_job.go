package replication

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"sort"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/berth-registry/berth/events"
)

// artifact is one tagged manifest of a job with the tags it carries here.
type artifact struct {
	src, dst string
	d        digest.Digest
	tags     []string
}

// listArtifacts lists what a job pushes, in a stable order (repository, then
// digest), so that a resumed job walks the same list.
func (r *pushRun) listArtifacts(v PushLocal) []artifact {
	var out []artifact
	for _, src := range v.Repositories() {
		if !r.p.Covers(src) {
			continue
		}
		byDigest := map[digest.Digest][]string{}
		for _, tag := range v.Tags(src) {
			if !r.p.WantsTag(tag) {
				continue
			}
			if d, ok := v.Tag(src, tag); ok {
				byDigest[d] = append(byDigest[d], tag)
			}
		}
		start := len(out)
		for d, tags := range byDigest {
			sort.Strings(tags)
			out = append(out, artifact{src: src, dst: r.p.Destination(src), d: d, tags: tags})
		}
		part := out[start:]
		sort.Slice(part, func(i, j int) bool { return part[i].d < part[j].d })
	}
	return out
}

func (r *pushRun) propose(ctx context.Context, p events.Payload) error {
	if err := r.target.Fence(); err != nil {
		return err
	}
	return r.target.Propose(ctx, p)
}

func (r *pushRun) report(ctx context.Context, rep events.ReplicationReported) error {
	rep.Policy, rep.Mode = r.p.Name, "push"
	if err := r.propose(ctx, rep); err != nil {
		return fmt.Errorf("commit the %s report: %w", rep.Kind, err)
	}
	return nil
}

// runJob pushes every artifact the policy covers, skipping those the job
// already reported copied (resume), then, with deletion on, deletes the
// destination's tags this cluster no longer has.
func (r *pushRun) runJob(ctx context.Context, name string, resume bool) {
	r.jobMu.Lock()
	defer r.jobMu.Unlock()
	r.mu.Lock()
	r.job = name
	r.mu.Unlock()
	defer func() {
		r.mu.Lock()
		r.job = ""
		r.mu.Unlock()
	}()
	ctx = events.WithOrigin(ctx, events.Origin{Actor: "replication:" + r.p.Name, RequestID: name})
	if err := r.job1(ctx, name, resume); err != nil && ctx.Err() == nil && r.target.Fence() == nil {
		r.fail(ctx, name, err)
	}
}

func (r *pushRun) job1(ctx context.Context, name string, resume bool) error {
	if !resume {
		if err := r.report(ctx, events.ReplicationReported{Kind: events.ReplicationStarted, Job: name}); err != nil {
			return err
		}
	}
	r.logger.Info("push job running", "job", name, "resumed", resume)
	var (
		copied, skipped, failed int
		bytes                   int64
		lastErr                 error
	)
	v := r.target.View()
	arts := r.listArtifacts(v)
	for _, a := range arts {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if v.Copied(r.p.Name, name, a.src, a.d) {
			skipped++
			continue
		}
		n, err := r.pushWithRetry(ctx, name, a)
		if err != nil {
			if ctx.Err() != nil || r.target.Fence() != nil {
				return err
			}
			failed++
			lastErr = err
			continue
		}
		copied++
		bytes += n
		if err := r.report(ctx, events.ReplicationReported{Kind: events.ReplicationCopied, Job: name,
			Repo: a.src, Digest: a.d.String(), Tags: a.tags, Bytes: n}); err != nil {
			return err
		}
	}
	if r.p.Deletion {
		if err := r.pruneTags(ctx, arts); err != nil {
			failed++
			lastErr = err
		}
	}
	done := events.ReplicationReported{Kind: events.ReplicationCaughtUp, Job: name, Artifacts: copied, Bytes: bytes}
	if lastErr != nil {
		done.Error = fmt.Sprintf("%d artifacts failed; the last: %v", failed, lastErr)
	}
	r.logger.Info("push job done", "job", name, "copied", copied, "skipped", skipped, "failed", failed)
	if err := r.report(ctx, done); err != nil {
		return err
	}
	if lastErr == nil {
		r.recovered()
	}
	return nil
}

// pushWithRetry pushes one artifact, retrying it alone with exponential
// backoff; it returns the bytes uploaded.
func (r *pushRun) pushWithRetry(ctx context.Context, job string, a artifact) (int64, error) {
	wait := pushRetryMin
	var err error
	for attempt := 1; ; attempt++ {
		var n int64
		n, err = r.dest.push(ctx, a)
		if err == nil || errors.Is(err, errGone) {
			if err != nil {
				r.logger.Info("skipped an artifact deleted here since the job listed it", "repository", a.src, "digest", a.d)
			}
			r.artifacts.Add(1)
			return n, nil
		}
		if ctx.Err() != nil || r.target.Fence() != nil || attempt >= pushAttempts {
			break
		}
		r.fail(ctx, job, fmt.Errorf("%s@%s: %w", a.dst, a.d, err))
		select {
		case <-ctx.Done():
			return 0, ctx.Err()
		case <-time.After(wait):
		}
		wait = min(wait*2, pushRetryMax)
	}
	return 0, fmt.Errorf("%s@%s after %d attempts: %w", a.dst, a.d, pushAttempts, err)
}

// fail shows err in the status and reports it, once per change of error.
func (r *pushRun) fail(ctx context.Context, job string, err error) {
	msg := err.Error()
	if len(msg) > 2048 {
		msg = msg[:2048]
	}
	r.mu.Lock()
	r.st.LastError, r.st.ErrorTime = msg, time.Now().UTC()
	same := r.lastFailure == msg
	r.lastFailure = msg
	r.mu.Unlock()
	if same {
		return
	}
	r.logger.Warn("push replication failed", "job", job, "err", msg)
	if err := r.report(ctx, events.ReplicationReported{Kind: events.ReplicationFailed, Job: job, Error: msg}); err != nil {
		r.logger.Warn("could not report a push failure", "err", err)
	}
}

// recovered clears the shown error after a success.
func (r *pushRun) recovered() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.st.LastError, r.lastFailure = "", ""
}

// fallbackTagRe is the referrers tag scheme's tag (sha256-<subject hex>)
// that go-containerregistry keeps at a destination without the referrers
// API: it lists the subject's referrers there and has no tag here.
var fallbackTagRe = regexp.MustCompile(`^sha256-[0-9a-f]{64}$`)

// pruneTags deletes, in each destination repository the job pushed to,
// the wanted tags this cluster does not have.
func (r *pushRun) pruneTags(ctx context.Context, arts []artifact) error {
	have := map[string][]string{}
	for _, a := range arts {
		have[a.dst] = append(have[a.dst], a.tags...)
	}
	for dst, tags := range have {
		remote, err := r.dest.tags(ctx, dst)
		if err != nil {
			return fmt.Errorf("list the destination's tags of %s: %w", dst, err)
		}
		for _, t := range remote {
			if r.p.WantsTag(t) && !slices.Contains(tags, t) && !fallbackTagRe.MatchString(t) {
				if err := r.dest.deleteTag(ctx, dst, t); err != nil {
					return err
				}
			}
		}
	}
	return nil
}
