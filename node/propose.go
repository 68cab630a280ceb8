package node

import (
	"context"
	"fmt"
	"time"

	"github.com/hashicorp/raft"

	"github.com/berth-registry/berth/events"
	"github.com/berth-registry/berth/fsm"
	cs "github.com/berth-registry/berth/node/consensus"
)

// UnavailableError means the write or read could not be served right now;
// it is defined with the rest of the consensus surface.
type UnavailableError = cs.UnavailableError

// Propose commits one event through the log and waits until this node's FSM
// has applied it (rule 1), so the caller's next read on this node sees it.
// On a follower the event is forwarded to the leader.
//
// The returned error is a *fsm.Refusal when Apply refused the event on a
// state check, an *UnavailableError when no leader could commit it in time,
// or another error for a bug.
//
// Once the event is handed to a leader the wait is not cut short by ctx: the
// event may still commit, and the caller must learn the outcome to answer
// the client truthfully.
func (n *Node) Propose(ctx context.Context, p events.Payload) (uint64, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	b, err := events.Encode(events.Event{Time: time.Now().UTC(), Origin: events.OriginFrom(ctx), Payload: p})
	if err != nil {
		return 0, fmt.Errorf("propose %s: %w", p.EventType(), err)
	}
	deadline := time.Now().Add(n.cfg.Raft.ApplyTimeout)
	if dl, ok := ctx.Deadline(); ok && dl.Before(deadline) {
		deadline = dl
	}
	return n.engine.Propose(ctx, b, deadline)
}

// applyLocal commits an encoded event on this node, which must be leader.
// It is the one local commit path: this node's own proposals and those
// forwarded to it both come here (consensus.Config.Local), so a check
// that must run before raft.Apply belongs here.
func (n *Node) applyLocal(b []byte, deadline time.Time) (uint64, error) {
	if err := n.raft.disk.check(); err != nil {
		return 0, err // don't hand Raft an entry it cannot store
	}
	if err := n.admit(b); err != nil {
		return 0, err
	}
	idx, err := n.engine.ApplyLocal(b, deadline)
	if err != nil && idx == 0 {
		if derr := n.raft.disk.lastFailure(); derr != nil {
			return 0, derr // the log could not grow: say so, not "leadership lost"
		}
	}
	return idx, err
}

// ReadView returns a view of the state that reflects every write
// acknowledged before the call (rule 6), unless the node is configured
// for stale reads.
//
// A single node is always its own leader and Raft answers a proposal only
// after the FSM applied it, so its local state is already current. In a
// cluster the node obtains a read index (leader: confirm leadership with a
// quorum; follower: ask the leader) and waits until its FSM reaches it.
func (n *Node) ReadView(ctx context.Context) (*fsm.View, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if n.raft.raft.State() == raft.Shutdown {
		return nil, &UnavailableError{Err: raft.ErrRaftShutdown}
	}
	if err := n.fsm.Halted(); err != nil {
		// Its state stops before an entry it could not decode: serving
		// it, even as a stale read, would be silently wrong.
		return nil, err
	}
	if !n.cfg.Clustered() {
		if err := n.waitCaughtUp(ctx); err != nil {
			return nil, err
		}
		return n.fsm.View(), nil
	}
	if n.cfg.Cluster.Consistency == "stale" {
		return n.fsm.View(), nil
	}
	if err := n.engine.WaitRead(ctx); err != nil {
		return nil, err
	}
	return n.fsm.View(), nil
}

// waitCaughtUp holds a single node's reads until it has committed its
// barrier in the current term (consensus.Engine.WaitCaughtUp says why).
func (n *Node) waitCaughtUp(ctx context.Context) error {
	return n.engine.WaitCaughtUp(ctx)
}
