package node

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/hashicorp/raft"
)

// readIndex returns an FSM index that covers every write acknowledged
// before the call began (rule 6): the leader confirms with a quorum that
// it still leads (a lease alone is not enough), then reports its commit
// index; a follower asks the leader. Concurrent readers share one round.
func (n *Node) readIndex(ctx context.Context) (uint64, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	backoff := 5 * time.Millisecond
	for {
		var idx uint64
		var err error
		if n.raft.raft.State() == raft.Leader {
			idx, err = n.leaderReads.call(ctx)
		} else {
			idx, err = n.followerReads.call(ctx)
		}
		if err == nil || !errors.Is(err, errNotSent) {
			return idx, err
		}
		select {
		case <-ctx.Done():
			return 0, &UnavailableError{Err: fmt.Errorf("no leader answered a read index: %w", err)}
		case <-time.After(backoff):
		}
		backoff = min(backoff*2, 200*time.Millisecond)
	}
}

func (n *Node) leaderReadIndex(ctx context.Context) (uint64, error) {
	return n.leaderReads.call(ctx)
}

// verifiedReadIndex is one leader round: read the commit index, then prove
// leadership with a heartbeat round to a quorum.
func (n *Node) verifiedReadIndex(context.Context) (uint64, error) {
	r := n.raft.raft
	if r.State() != raft.Leader {
		return 0, fmt.Errorf("%w: not the leader", errNotSent)
	}
	// Until the leader has committed an entry of its own term its commit
	// index may trail what the previous leader acknowledged.
	if n.readyTerm.Load() != r.CurrentTerm() {
		return 0, &UnavailableError{Err: errors.New("new leader is still establishing its term")}
	}
	commit := r.CommitIndex()
	if err := r.VerifyLeader().Error(); err != nil {
		return 0, &UnavailableError{Err: fmt.Errorf("leadership not confirmed by a quorum: %w", err)}
	}
	return n.lastCommandAtOrBelow(commit), nil
}

// forwardedReadIndex is one follower round: ask the leader.
func (n *Node) forwardedReadIndex(ctx context.Context) (uint64, error) {
	if n.members == nil {
		return 0, &UnavailableError{Err: raft.ErrNotLeader}
	}
	_, leaderID := n.raft.raft.LeaderWithID()
	if leaderID == "" {
		return 0, fmt.Errorf("%w: no leader known", errNotSent)
	}
	leader, ok := n.members.member(string(leaderID))
	if !ok || leader.APIAddr == "" {
		return 0, fmt.Errorf("%w: leader %s not known through gossip", errNotSent, leaderID)
	}
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	var res struct {
		Index uint64 `json:"index"`
	}
	if err := n.peers.do(ctx, "GET", leader.APIAddr, "readindex", nil, &res); err != nil {
		if errors.Is(err, errNotSent) {
			return 0, err
		}
		var u *UnavailableError
		if errors.As(err, &u) {
			return 0, err
		}
		return 0, &UnavailableError{Err: fmt.Errorf("read index from leader %s: %w", leaderID, err)}
	}
	return res.Index, nil
}

// lastCommandAtOrBelow maps a Raft index to the FSM's index space. The FSM
// only sees command entries; no-op, barrier and configuration entries never
// reach it, so waiting for the FSM to reach such an index could wait
// forever. The answer is the last command at or below idx, found by walking
// back through the (cached) log; usually idx itself.
func (n *Node) lastCommandAtOrBelow(idx uint64) uint64 {
	applied := n.fsm.AppliedIndex()
	if applied >= idx {
		return idx
	}
	for i := idx; i > applied; i-- {
		var l raft.Log
		if err := n.raft.logs.GetLog(i, &l); err != nil {
			// Compacted into a snapshot, which the FSM already holds.
			return applied
		}
		if l.Type == raft.LogCommand {
			return i
		}
	}
	return applied
}
