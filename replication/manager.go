package replication

import (
	"context"
	"log/slog"
	"sort"
	"sync"
)

// Manager runs the mirror policies of one leader term: Reconcile starts,
// restarts and stops them as the policies change, Status reports them.
type Manager struct {
	target Target
	logger *slog.Logger

	mu       sync.Mutex
	runs     map[string]*run
	problems map[string]Status // policies that cannot run, and why
}

type run struct {
	key    string
	m      *mirror
	cancel context.CancelFunc
	done   chan struct{}
}

// NewManager returns a manager with nothing running.
func NewManager(target Target, logger *slog.Logger) *Manager {
	return &Manager{target: target, logger: logger, runs: map[string]*run{}, problems: map[string]Status{}}
}

// Reconcile makes the running mirrors match policies, under ctx (the
// leader term). problems are policies that cannot run (their Registry is
// missing, a secret is unreadable), by name, with the error to show.
func (mg *Manager) Reconcile(ctx context.Context, policies []Policy, problems map[string]Status) {
	mg.mu.Lock()
	defer mg.mu.Unlock()
	want := map[string]Policy{}
	for _, p := range policies {
		want[p.Name] = p
	}
	for name, r := range mg.runs {
		if p, ok := want[name]; !ok || p.Key != r.key {
			r.cancel()
			<-r.done
			delete(mg.runs, name)
		}
	}
	for _, p := range policies {
		if _, ok := mg.runs[p.Name]; ok {
			continue
		}
		rctx, cancel := context.WithCancel(ctx)
		r := &run{key: p.Key, m: newMirror(p, mg.target, mg.logger), cancel: cancel, done: make(chan struct{})}
		mg.runs[p.Name] = r
		go func() {
			defer close(r.done)
			r.m.run(rctx)
		}()
	}
	mg.problems = problems
}

// Stop ends every mirror and waits for them.
func (mg *Manager) Stop() {
	mg.mu.Lock()
	defer mg.mu.Unlock()
	for name, r := range mg.runs {
		r.cancel()
		<-r.done
		delete(mg.runs, name)
	}
}

// Status lists every mirror policy, running or not, by name.
func (mg *Manager) Status() []Status {
	mg.mu.Lock()
	defer mg.mu.Unlock()
	out := make([]Status, 0, len(mg.runs)+len(mg.problems))
	for _, r := range mg.runs {
		out = append(out, r.m.status())
	}
	for _, st := range mg.problems {
		out = append(out, st)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Policy < out[j].Policy })
	return out
}
