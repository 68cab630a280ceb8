package consensus

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/hashicorp/raft"

	"github.com/berth-registry/berth/blob"
	"github.com/berth-registry/berth/fsm"
)

// ApplyResult is the leader's answer to a forwarded proposal.
type ApplyResult struct {
	Index   uint64       `json:"index"`
	Refusal *fsm.Refusal `json:"refusal,omitempty"`
	// Unavailable is set for an error that says "not now" but that a
	// retry against the same leader will not cure before the deadline
	// (a voter that cannot decode the event yet, a halted FSM): the
	// follower answers 503 at once instead of retrying.
	Unavailable string `json:"unavailable,omitempty"`
	// NoSpace marks an Unavailable answer as the leader's full disk, so
	// the follower's client gets the same 507 as the leader's would.
	NoSpace bool   `json:"noSpace,omitempty"`
	Error   string `json:"error,omitempty"`
}

// unavailableAnswer is a forwarded ApplyResult.Unavailable.
type unavailableAnswer string

func (u unavailableAnswer) Error() string     { return string(u) }
func (u unavailableAnswer) Unavailable() bool { return true }

// noSpaceAnswer is a forwarded disk-full refusal: it matches
// blob.ErrNoSpace, which the OCI API answers with 507.
type noSpaceAnswer struct{ unavailableAnswer }

func (noSpaceAnswer) Unwrap() error { return blob.ErrNoSpace }

// Propose commits one encoded event through the log and waits until this
// node's FSM has applied it (rule 1), so the caller's next read on this
// node sees it. On a follower the event is forwarded to the leader. It
// retries, with backoff, only while the event certainly was not applied.
//
// The returned error is a *fsm.Refusal when Apply refused the event on a
// state check, an *UnavailableError when no leader could commit it before
// deadline, or another error for a bug.
//
// Once the event is handed to a leader the wait is not cut short by ctx:
// the event may still commit, and the caller must learn the outcome to
// answer the client truthfully.
func (e *Engine) Propose(ctx context.Context, event []byte, deadline time.Time) (idx uint64, err error) {
	if obs := e.cfg.OnPropose; obs != nil {
		start := time.Now()
		defer func() { obs(time.Since(start), err) }()
	}
	return e.propose(ctx, event, deadline)
}

func (e *Engine) propose(ctx context.Context, event []byte, deadline time.Time) (uint64, error) {
	backoff := 10 * time.Millisecond
	for {
		idx, err, retry := e.proposeOnce(ctx, event, deadline)
		if !retry || time.Now().Add(backoff).After(deadline) {
			if err != nil {
				return idx, err
			}
			// Forwarded writes are acknowledged only once applied here too.
			wctx, cancel := context.WithDeadline(context.WithoutCancel(ctx), deadline)
			defer cancel()
			if werr := e.cfg.FSM.WaitApplied(wctx, idx); werr != nil {
				return idx, &UnavailableError{Err: fmt.Errorf("committed at %d but not yet applied here: %w", idx, werr)}
			}
			return idx, nil
		}
		select {
		case <-time.After(backoff):
		case <-ctx.Done():
			return 0, ctx.Err()
		}
		backoff = min(backoff*2, 250*time.Millisecond)
	}
}

// proposeOnce tries one leader. retry is true only when the event certainly
// was not applied (no leader known, the peer was not the leader, a dial
// failed), so trying again cannot apply it twice.
func (e *Engine) proposeOnce(ctx context.Context, b []byte, deadline time.Time) (uint64, error, bool) {
	if e.IsLeader() {
		idx, err := e.cfg.Local(b, deadline)
		var u *UnavailableError
		return idx, err, errors.As(err, &u) && !errors.Is(err, raft.ErrLeadershipLost)
	}
	leader, err := e.Leader()
	if err != nil {
		return 0, err, true
	}
	fctx, cancel := context.WithDeadline(context.WithoutCancel(ctx), deadline)
	defer cancel()
	res, err := e.cfg.Peers.Apply(fctx, leader.APIAddr, b)
	var u *UnavailableError
	switch {
	case errors.Is(err, ErrNotSent):
		return 0, &UnavailableError{Err: err}, true
	case errors.As(err, &u):
		return 0, err, true
	case err != nil:
		// The leader may or may not have applied it: don't guess.
		return 0, &UnavailableError{Err: fmt.Errorf("forward to leader %s: %w", leader.ID, err)}, false
	case res.Refusal != nil:
		return res.Index, res.Refusal, false
	case res.Unavailable != "" && res.NoSpace:
		return res.Index, noSpaceAnswer{unavailableAnswer(res.Unavailable)}, false
	case res.Unavailable != "":
		return res.Index, unavailableAnswer(res.Unavailable), false
	case res.Error != "":
		return res.Index, errors.New(res.Error), false
	}
	return res.Index, nil, false
}

// ApplyLocal commits an encoded event on this node, which must lead.
func (e *Engine) ApplyLocal(b []byte, deadline time.Time) (uint64, error) {
	f := e.r.Apply(b, time.Until(deadline))
	if err := f.Error(); err != nil {
		return 0, Classify("raft apply", err)
	}
	if resp := f.Response(); resp != nil {
		if err, ok := resp.(error); ok {
			return f.Index(), err
		}
	}
	return f.Index(), nil
}

// ServeApply is the leader's side of a forwarded proposal, whatever
// carries it. It answers ErrNotSent when this node does not lead, so the
// follower retries against the new leader: nothing was applied then. An
// *UnavailableError means the leader could not commit it; a refusal or
// another apply error travels in the result.
func (e *Engine) ServeApply(b []byte, deadline time.Time) (ApplyResult, error) {
	if !e.IsLeader() {
		return ApplyResult{}, fmt.Errorf("%w: not the leader", ErrNotSent)
	}
	idx, err := e.cfg.Local(b, deadline)
	res := ApplyResult{Index: idx}
	var refusal *fsm.Refusal
	var unavailable *UnavailableError
	switch {
	case err == nil:
	case errors.As(err, &refusal):
		res.Refusal = refusal
	case errors.As(err, &unavailable):
		return ApplyResult{}, err
	default:
		var u interface{ Unavailable() bool }
		if errors.As(err, &u) && u.Unavailable() {
			res.Unavailable = err.Error()
			res.NoSpace = errors.Is(err, blob.ErrNoSpace)
		} else {
			res.Error = err.Error()
		}
	}
	return res, nil
}
