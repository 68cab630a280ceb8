package node

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"time"

	"github.com/hashicorp/raft"
)

// readIndex returns an FSM index that covers every write acknowledged
// before the call began (rule 6): the leader confirms with a quorum that
// it still leads (a lease alone is not enough), then reports its commit
// index; a follower asks the leader, and its own term check can complete
// the quorum (leaderReadIndexFor). Concurrent readers share one round.
func (n *Node) readIndex(ctx context.Context) (uint64, error) {
	idx, err := n.readIndexRound(ctx)
	if err == nil || !errors.Is(err, errNotSent) {
		return idx, err
	}
	// Only a read that must wait for a leader pays for a deadline timer.
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	backoff := 5 * time.Millisecond
	for {
		select {
		case <-ctx.Done():
			return 0, &UnavailableError{Err: fmt.Errorf("no leader answered a read index: %w", err)}
		case <-time.After(backoff):
		}
		backoff = min(backoff*2, 200*time.Millisecond)
		idx, err = n.readIndexRound(ctx)
		if err == nil || !errors.Is(err, errNotSent) {
			return idx, err
		}
	}
}

func (n *Node) readIndexRound(ctx context.Context) (uint64, error) {
	if n.raft.raft.State() == raft.Leader {
		return n.leaderReads.call(ctx)
	}
	return n.followerReads.call(ctx)
}

// readIndexAnswer is the leader's answer to a follower: the index to wait
// for, and the term in which the leader gave it.
type readIndexAnswer struct {
	Index uint64 `json:"index"`
	Term  uint64 `json:"term"`
}

// leaderReadIndexFor answers a read-index request from the follower from.
//
// A read is linearizable once a majority of voters is shown to be still in
// the leader's term T after the read began: any newer leader needs votes
// from a majority, one of whose members would have left T first, and terms
// only grow. The usual proof is a heartbeat round to a quorum (VerifyLeader).
// But the follower that asks is itself a voter: it checks, after the
// answer, that its own term is still T (forwardedReadIndex). With at most
// three voters the leader and that follower are already a majority, so the
// heartbeat round proves nothing more and is skipped; with more voters it
// still runs. This removes a network round and the leader's batching wait
// from two of every three reads behind a load balancer.
func (n *Node) leaderReadIndexFor(ctx context.Context, from string) (readIndexAnswer, error) {
	if n.pairIsMajority(from) {
		term, idx, err := n.leaderCommit()
		return readIndexAnswer{Index: idx, Term: term}, err
	}
	term := n.raft.raft.CurrentTerm()
	idx, err := n.leaderReads.call(ctx)
	if err != nil {
		return readIndexAnswer{}, err
	}
	if n.raft.raft.CurrentTerm() != term {
		return readIndexAnswer{}, &UnavailableError{Err: errors.New("term changed during the read index")}
	}
	return readIndexAnswer{Index: idx, Term: term}, nil
}

// pairIsMajority reports whether this leader and the voter from form a
// majority of the latest configuration (the one the leader counts votes
// by; Raft changes one server at a time, so its majorities and the
// previous configuration's intersect).
func (n *Node) pairIsMajority(from string) bool {
	f := n.raft.raft.GetConfiguration()
	if f.Error() != nil {
		return false
	}
	return pairIsMajority(f.Configuration().Servers, n.cfg.Node.ID, from)
}

func pairIsMajority(servers []raft.Server, self, from string) bool {
	if from == "" || from == self {
		return false
	}
	voters, selfVotes, peerVotes := 0, false, false
	for _, s := range servers {
		if s.Suffrage != raft.Voter {
			continue
		}
		voters++
		selfVotes = selfVotes || string(s.ID) == self
		peerVotes = peerVotes || string(s.ID) == from
	}
	return selfVotes && peerVotes && 2 >= voters/2+1
}

// leaderCommit reads the commit index as the leader of a term, mapped to
// the FSM's index space. It checks leadership before and after the read: a
// node that still leads the same term afterwards led it when it read, since
// a node never leads twice in one term and moves to a newer term before it
// grants any vote in it.
func (n *Node) leaderCommit() (term, index uint64, err error) {
	r := n.raft.raft
	term = r.CurrentTerm()
	if r.State() != raft.Leader {
		return 0, 0, fmt.Errorf("%w: not the leader", errNotSent)
	}
	// Until the leader has committed an entry of its own term its commit
	// index may trail what the previous leader acknowledged.
	if n.readyTerm.Load() != term {
		return 0, 0, &UnavailableError{Err: errors.New("new leader is still establishing its term")}
	}
	commit := r.CommitIndex()
	if r.State() != raft.Leader || r.CurrentTerm() != term {
		return 0, 0, fmt.Errorf("%w: lost leadership during the read index", errNotSent)
	}
	return term, n.lastCommandAtOrBelow(commit), nil
}

// verifiedReadIndex is one leader round: read the commit index, then prove
// leadership with a heartbeat round to a quorum.
func (n *Node) verifiedReadIndex(context.Context) (uint64, error) {
	_, idx, err := n.leaderCommit()
	if err != nil {
		return 0, err
	}
	if err := n.raft.raft.VerifyLeader().Error(); err != nil {
		return 0, &UnavailableError{Err: fmt.Errorf("leadership not confirmed by a quorum: %w", err)}
	}
	return idx, nil
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
	var res readIndexAnswer
	if err := n.peers.do(ctx, "GET", leader.APIAddr, "readindex?from="+url.QueryEscape(n.cfg.Node.ID), nil, &res); err != nil {
		if errors.Is(err, errNotSent) {
			return 0, err
		}
		var u *UnavailableError
		if errors.As(err, &u) {
			return 0, err
		}
		return 0, &UnavailableError{Err: fmt.Errorf("read index from leader %s: %w", leaderID, err)}
	}
	// This node's half of the proof (leaderReadIndexFor): still in the term
	// the leader answered in, so it has voted in no newer election. A leader
	// that sends no term (an older version) proved it with a heartbeat round.
	if cur := n.raft.raft.CurrentTerm(); res.Term != 0 && cur != res.Term {
		return 0, fmt.Errorf("%w: term moved from %d to %d during the read index", errNotSent, res.Term, cur)
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
