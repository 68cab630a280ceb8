package node

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/hashicorp/raft"

	"github.com/berth-registry/berth/events"
	"github.com/berth-registry/berth/fsm"
)

// UnavailableError means the write or read could not be served right now
// (no leader, leadership lost, shutting down). The client should retry; the
// HTTP layer answers 503 with Retry-After.
type UnavailableError struct{ Err error }

func (e *UnavailableError) Error() string     { return "cluster unavailable: " + e.Err.Error() }
func (e *UnavailableError) Unwrap() error     { return e.Err }
func (e *UnavailableError) Unavailable() bool { return true }

// Propose commits one event through the log and waits until this node's FSM
// has applied it (rule 1). The returned error is a *fsm.Refusal when Apply
// refused the event on a state check, an *UnavailableError when there is no
// leader to commit it, or another error for a bug.
//
// Once the event is handed to Raft the wait is not cut short by ctx: the
// event may still commit, and the caller must learn the outcome to answer
// the client truthfully.
func (n *Node) Propose(ctx context.Context, p events.Payload) (uint64, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	b, err := events.Encode(events.Event{Time: time.Now().UTC(), Payload: p})
	if err != nil {
		return 0, fmt.Errorf("propose %s: %w", p.EventType(), err)
	}
	timeout := n.cfg.Raft.ApplyTimeout
	if dl, ok := ctx.Deadline(); ok && time.Until(dl) < timeout {
		timeout = time.Until(dl)
	}
	f := n.raft.raft.Apply(b, timeout)
	if err := f.Error(); err != nil {
		switch {
		case errors.Is(err, raft.ErrNotLeader), errors.Is(err, raft.ErrLeadershipLost),
			errors.Is(err, raft.ErrRaftShutdown), errors.Is(err, raft.ErrEnqueueTimeout),
			errors.Is(err, raft.ErrLeadershipTransferInProgress):
			return 0, &UnavailableError{Err: err}
		}
		return 0, fmt.Errorf("propose %s: %w", p.EventType(), err)
	}
	if resp := f.Response(); resp != nil {
		if err, ok := resp.(error); ok {
			return f.Index(), err
		}
	}
	return f.Index(), nil
}

// ReadView returns a consistent view of the state for a read.
//
// A single node is always its own leader, and Raft answers a proposal only
// after the FSM has applied it, so the local FSM already reflects every
// acknowledged write. The read-index barrier for followers (rule 6) slots
// in here when the node joins a cluster.
func (n *Node) ReadView(ctx context.Context) (*fsm.View, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if n.raft.raft.State() == raft.Shutdown {
		return nil, &UnavailableError{Err: raft.ErrRaftShutdown}
	}
	return n.fsm.View(), nil
}
