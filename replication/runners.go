package replication

import (
	"context"
	"sort"
	"sync"
)

// runner is one policy's work in a leader term: a mirror or a push.
type runner interface {
	run(ctx context.Context)
	status() Status
}

// runners keeps one runner per policy for a leader term, and restarts a
// policy's runner when anything it depends on changes (its key). Manager
// and PushManager are runners of mirrors and of pushes.
type runners[P any, R runner] struct {
	name, key func(P) string
	start     func(P) R

	mu       sync.Mutex
	runs     map[string]*handle[R]
	problems map[string]Status // policies that cannot run, and why
}

type handle[R runner] struct {
	key    string
	r      R
	cancel context.CancelFunc
	done   chan struct{}
}

func newRunners[P any, R runner](name, key func(P) string, start func(P) R) runners[P, R] {
	return runners[P, R]{name: name, key: key, start: start, runs: map[string]*handle[R]{}, problems: map[string]Status{}}
}

// reconcile makes the running policies match policies, under ctx (the
// leader term): it stops those gone or changed and starts those new.
// problems are the policies that cannot run, with the error to show.
func (rs *runners[P, R]) reconcile(ctx context.Context, policies []P, problems map[string]Status) {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	want := map[string]string{}
	for _, p := range policies {
		want[rs.name(p)] = rs.key(p)
	}
	for name, h := range rs.runs {
		if key, ok := want[name]; !ok || key != h.key {
			h.cancel()
			<-h.done
			delete(rs.runs, name)
		}
	}
	for _, p := range policies {
		name := rs.name(p)
		if _, ok := rs.runs[name]; ok {
			continue
		}
		rctx, cancel := context.WithCancel(ctx)
		h := &handle[R]{key: rs.key(p), r: rs.start(p), cancel: cancel, done: make(chan struct{})}
		rs.runs[name] = h
		go func() {
			defer close(h.done)
			h.r.run(rctx)
		}()
	}
	rs.problems = problems
}

// lookup returns the runner of policy, or the reason it cannot run.
func (rs *runners[P, R]) lookup(policy string) (r R, problem Status, running, bad bool) {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	h, running := rs.runs[policy]
	if running {
		r = h.r
	}
	problem, bad = rs.problems[policy]
	return r, problem, running, bad
}

// stop ends every runner and waits for them.
func (rs *runners[P, R]) stop() {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	for name, h := range rs.runs {
		h.cancel()
		<-h.done
		delete(rs.runs, name)
	}
}

// statuses lists every policy, running or not, by name.
func (rs *runners[P, R]) statuses() []Status {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	out := make([]Status, 0, len(rs.runs)+len(rs.problems))
	for _, h := range rs.runs {
		out = append(out, h.r.status())
	}
	for _, st := range rs.problems {
		out = append(out, st)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Policy < out[j].Policy })
	return out
}
