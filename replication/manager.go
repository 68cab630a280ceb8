package replication

import (
	"context"
	"log/slog"
)

// Manager runs the mirror policies of one leader term: Reconcile starts,
// restarts and stops them as the policies change, Status reports them.
type Manager struct {
	runners[Policy, *mirror]
}

// NewManager returns a manager with nothing running.
func NewManager(target Target, logger *slog.Logger) *Manager {
	return &Manager{newRunners(
		func(p Policy) string { return p.Name },
		func(p Policy) string { return p.Key },
		func(p Policy) *mirror { return newMirror(p, target, logger) },
	)}
}

// Reconcile makes the running mirrors match policies, under ctx (the
// leader term). problems are policies that cannot run (their Registry is
// missing, a secret is unreadable), by name, with the error to show.
func (mg *Manager) Reconcile(ctx context.Context, policies []Policy, problems map[string]Status) {
	mg.reconcile(ctx, policies, problems)
}

// Stop ends every mirror and waits for them.
func (mg *Manager) Stop() { mg.stop() }

// Status lists every mirror policy, running or not, by name.
func (mg *Manager) Status() []Status { return mg.statuses() }
