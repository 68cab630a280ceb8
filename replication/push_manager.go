package replication

import (
	"context"
	"errors"
	"log/slog"
)

// ErrNoPushPolicy is a run of a policy that is not an enabled push policy
// running on this leader.
var ErrNoPushPolicy = errors.New("no such enabled push policy")

// ErrJobRunning refuses a run while one of the policy's jobs runs.
var ErrJobRunning = errBusy

// PushManager runs the push policies of one leader term, as Manager runs
// the mirrors, and starts their jobs on request.
type PushManager struct {
	runners[PushPolicy, *pushRun]
}

// NewPushManager returns a manager with nothing running.
func NewPushManager(target PushTarget, logger *slog.Logger) *PushManager {
	return &PushManager{newRunners(
		func(p PushPolicy) string { return p.Name },
		func(p PushPolicy) string { return p.Key },
		func(p PushPolicy) *pushRun { return newPushRun(p, target, logger) },
	)}
}

// Reconcile makes the running push policies match policies, under ctx
// (the leader term); problems are policies that cannot run, with why.
func (mg *PushManager) Reconcile(ctx context.Context, policies []PushPolicy, problems map[string]Status) {
	mg.reconcile(ctx, policies, problems)
}

// Run starts a job of policy now and returns its name.
func (mg *PushManager) Run(policy string) (string, error) {
	r, problem, running, bad := mg.lookup(policy)
	if bad {
		return "", errors.New(problem.LastError)
	}
	if !running {
		return "", ErrNoPushPolicy
	}
	return r.requestRun()
}

// Stop ends every push policy and waits for them.
func (mg *PushManager) Stop() { mg.stop() }

// Status lists every push policy, running or not, by name.
func (mg *PushManager) Status() []Status { return mg.statuses() }
