package consensus

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/hashicorp/raft"
)

// ReadIndex returns an FSM index that covers every write acknowledged
// before the call began (rule 6): the leader confirms with a quorum that
// it still leads (a lease alone is not enough), then reports its commit
// index; a follower asks the leader, and its own term check can complete
// the quorum (leaderReadIndexFor). Concurrent readers share one round.
func (e *Engine) ReadIndex(ctx context.Context) (uint64, error) {
	idx, err := e.readIndexRound(ctx)
	if err == nil || !errors.Is(err, ErrNotSent) {
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
		idx, err = e.readIndexRound(ctx)
		if err == nil || !errors.Is(err, ErrNotSent) {
			return idx, err
		}
	}
}

func (e *Engine) readIndexRound(ctx context.Context) (uint64, error) {
	if e.r.State() == raft.Leader {
		return e.leaderReads.call(ctx)
	}
	return e.followerReads.call(ctx)
}

// ReadIndexAnswer is the leader's answer to a follower: the index to wait
// for, and the term in which the leader gave it.
type ReadIndexAnswer struct {
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
func (e *Engine) leaderReadIndexFor(ctx context.Context, from string) (ReadIndexAnswer, error) {
	if e.pairIsMajority(from) {
		term, idx, err := e.leaderCommit()
		return ReadIndexAnswer{Index: idx, Term: term}, err
	}
	term := e.r.CurrentTerm()
	idx, err := e.leaderReads.call(ctx)
	if err != nil {
		return ReadIndexAnswer{}, err
	}
	if e.r.CurrentTerm() != term {
		return ReadIndexAnswer{}, &UnavailableError{Err: errors.New("term changed during the read index")}
	}
	return ReadIndexAnswer{Index: idx, Term: term}, nil
}

// pairIsMajority reports whether this leader and the voter from form a
// majority of the latest configuration (the one the leader counts votes
// by; Raft changes one server at a time, so its majorities and the
// previous configuration's intersect).
func (e *Engine) pairIsMajority(from string) bool {
	f := e.r.GetConfiguration()
	if f.Error() != nil {
		return false
	}
	return pairIsMajority(f.Configuration().Servers, e.cfg.ID, from)
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
func (e *Engine) leaderCommit() (term, index uint64, err error) {
	r := e.r
	term = r.CurrentTerm()
	if r.State() != raft.Leader {
		return 0, 0, fmt.Errorf("%w: not the leader", ErrNotSent)
	}
	// Until the leader has committed an entry of its own term its commit
	// index may trail what the previous leader acknowledged.
	if e.readyTerm.Load() != term {
		return 0, 0, &UnavailableError{Err: errors.New("new leader is still establishing its term")}
	}
	commit := r.CommitIndex()
	if h := e.hooks.afterCommitRead; h != nil {
		h()
	}
	if r.State() != raft.Leader || r.CurrentTerm() != term {
		return 0, 0, fmt.Errorf("%w: lost leadership during the read index", ErrNotSent)
	}
	return term, e.LastCommandAtOrBelow(commit), nil
}

// verifiedReadIndex is one leader round: read the commit index, then prove
// leadership with a heartbeat round to a quorum.
func (e *Engine) verifiedReadIndex(context.Context) (uint64, error) {
	_, idx, err := e.leaderCommit()
	if err != nil {
		return 0, err
	}
	if h := e.hooks.verifiedRound; h != nil {
		h()
	}
	if err := e.r.VerifyLeader().Error(); err != nil {
		return 0, &UnavailableError{Err: fmt.Errorf("leadership not confirmed by a quorum: %w", err)}
	}
	return idx, nil
}

// forwardedReadIndex is one follower round: ask the leader.
func (e *Engine) forwardedReadIndex(ctx context.Context) (uint64, error) {
	leader, err := e.Leader()
	if err != nil {
		return 0, err
	}
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	res, err := e.cfg.Peers.ReadIndex(ctx, leader.APIAddr, e.cfg.ID)
	if err != nil {
		if errors.Is(err, ErrNotSent) {
			return 0, err
		}
		var u *UnavailableError
		if errors.As(err, &u) {
			return 0, err
		}
		return 0, &UnavailableError{Err: fmt.Errorf("read index from leader %s: %w", leader.ID, err)}
	}
	if h := e.hooks.afterLeaderAnswer; h != nil {
		h(res)
	}
	// This node's half of the proof (leaderReadIndexFor): still in the term
	// the leader answered in, so it has voted in no newer election. A leader
	// that sends no term (an older version) proved it with a heartbeat round.
	if cur := e.r.CurrentTerm(); res.Term != 0 && cur != res.Term {
		return 0, fmt.Errorf("%w: term moved from %d to %d during the read index", ErrNotSent, res.Term, cur)
	}
	return res.Index, nil
}

// ServeReadIndex is the leader's side of a follower's read-index request,
// whatever carries it. An error wrapping ErrNotSent means this node does
// not lead (any more): the follower asks again, of the new leader.
func (e *Engine) ServeReadIndex(ctx context.Context, from string) (ReadIndexAnswer, error) {
	if !e.IsLeader() {
		return ReadIndexAnswer{}, fmt.Errorf("%w: not the leader", ErrNotSent)
	}
	return e.leaderReadIndexFor(ctx, from)
}

// WaitRead returns once this node's FSM holds every write acknowledged
// before the call (rule 6): it obtains a read index and waits for the FSM
// to apply it.
func (e *Engine) WaitRead(ctx context.Context) error {
	idx, err := e.ReadIndex(ctx)
	if err != nil {
		return err
	}
	if err := e.cfg.FSM.WaitApplied(ctx, idx); err != nil {
		return &UnavailableError{Err: fmt.Errorf("catching up to read index %d: %w", idx, err)}
	}
	return nil
}

// LastCommandAtOrBelow maps a Raft index to the FSM's index space. The FSM
// only sees command entries; no-op, barrier and configuration entries never
// reach it, so waiting for the FSM to reach such an index could wait
// forever. The answer is the last command at or below idx, found by walking
// back through the (cached) log; usually idx itself.
func (e *Engine) LastCommandAtOrBelow(idx uint64) uint64 {
	applied := e.cfg.FSM.AppliedIndex()
	if applied >= idx {
		return idx
	}
	for i := idx; i > applied; i-- {
		var l raft.Log
		if err := e.cfg.Logs.GetLog(i, &l); err != nil {
			// Compacted into a snapshot, which the FSM already holds.
			return applied
		}
		if l.Type == raft.LogCommand {
			return i
		}
	}
	return applied
}
