package replication

import (
	"context"
	"errors"
	"log/slog"
	"sort"
	"sync"
)

// ErrNoPushPolicy is a run of a policy that is not an enabled push policy
// running on this leader.
var ErrNoPushPolicy = errors.New("no such enabled push policy")

// ErrJobRunning refuses a run while one of the policy's jobs runs.
var ErrJobRunning = errBusy

// PushManager runs the push policies of one leader term, as Manager runs
// the mirrors.
type PushManager struct {
	target PushTarget
	logger *slog.Logger

	mu       sync.Mutex
	runs     map[string]*pushHandle
	problems map[string]Status
}

type pushHandle struct {
	key    string
	r      *pushRun
	cancel context.CancelFunc
	done   chan struct{}
}

// NewPushManager returns a manager with nothing running.
func NewPushManager(target PushTarget, logger *slog.Logger) *PushManager {
	return &PushManager{target: target, logger: logger, runs: map[string]*pushHandle{}, problems: map[string]Status{}}
}

// Reconcile makes the running push policies match policies, under ctx
// (the leader term); problems are policies that cannot run, with why.
func (mg *PushManager) Reconcile(ctx context.Context, policies []PushPolicy, problems map[string]Status) {
	mg.mu.Lock()
	defer mg.mu.Unlock()
	want := map[string]PushPolicy{}
	for _, p := range policies {
		want[p.Name] = p
	}
	for name, h := range mg.runs {
		if p, ok := want[name]; !ok || p.Key != h.key {
			h.cancel()
			<-h.done
			delete(mg.runs, name)
		}
	}
	for _, p := range policies {
		if _, ok := mg.runs[p.Name]; ok {
			continue
		}
		rctx, cancel := context.WithCancel(ctx)
		h := &pushHandle{key: p.Key, r: newPushRun(p, mg.target, mg.logger), cancel: cancel, done: make(chan struct{})}
		mg.runs[p.Name] = h
		go func() {
			defer close(h.done)
			h.r.run(rctx)
		}()
	}
	mg.problems = problems
}

// Run starts a job of policy now and returns its name.
func (mg *PushManager) Run(policy string) (string, error) {
	mg.mu.Lock()
	h, ok := mg.runs[policy]
	problem, bad := mg.problems[policy]
	mg.mu.Unlock()
	if bad {
		return "", errors.New(problem.LastError)
	}
	if !ok {
		return "", ErrNoPushPolicy
	}
	return h.r.requestRun()
}

// Stop ends every push policy and waits for them.
func (mg *PushManager) Stop() {
	mg.mu.Lock()
	defer mg.mu.Unlock()
	for name, h := range mg.runs {
		h.cancel()
		<-h.done
		delete(mg.runs, name)
	}
}

// Status lists every push policy, running or not, by name.
func (mg *PushManager) Status() []Status {
	mg.mu.Lock()
	defer mg.mu.Unlock()
	out := make([]Status, 0, len(mg.runs)+len(mg.problems))
	for _, h := range mg.runs {
		out = append(out, h.r.status())
	}
	for _, st := range mg.problems {
		out = append(out, st)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Policy < out[j].Policy })
	return out
}
