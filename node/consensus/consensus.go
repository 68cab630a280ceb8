// Package consensus is the small surface through which the rest of a node
// uses Raft: propose an encoded event (forwarded to the leader when this
// node follows), obtain a read index (leader and follower paths), ask who
// leads, and map Raft's log indexes to the FSM's.
//
// In the spirit of hashicorp/raft's own FSM, LogStore and Transport
// interfaces, everything the engine needs from outside is an interface:
// FSM (the applied index), Peers (reaching the leader; HTTP in a node, an
// in-process peer in tests) and Directory (who answers for a server ID;
// gossip in a node). That is what lets a three-node cluster on
// raft.InmemTransport exercise every path in one test process.
package consensus

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/hashicorp/raft"
)

// UnavailableError means the write or read could not be served right now
// (no leader, leadership lost, shutting down, cut off from the majority).
// The client should retry; the HTTP layer answers 503 with Retry-After.
type UnavailableError struct{ Err error }

func (e *UnavailableError) Error() string     { return "cluster unavailable: " + e.Err.Error() }
func (e *UnavailableError) Unwrap() error     { return e.Err }
func (e *UnavailableError) Unavailable() bool { return true }

// ErrNotSent marks a call that certainly did not reach a leader that acted
// on it (connection refused, peer not leader, no leader known), so it is
// safe to retry. It reports itself unavailable, so a client that sees it
// is told to retry too.
var ErrNotSent error = notSent{}

type notSent struct{}

func (notSent) Error() string     { return "not delivered" }
func (notSent) Unavailable() bool { return true }

// FSM is what the engine needs of the state machine besides raft.FSM.
type FSM interface {
	// AppliedIndex is the Raft index of the last entry the FSM applied.
	AppliedIndex() uint64
	// WaitApplied blocks until the FSM has applied index, or ctx ends.
	WaitApplied(ctx context.Context, index uint64) error
}

// Peers reaches the current leader on behalf of a follower.
//
// Errors follow one protocol: an error wrapping ErrNotSent means the peer
// certainly did not act (it was not the leader, or the call never left);
// an *UnavailableError means the peer answered that it cannot serve now;
// any other error leaves the outcome unknown.
type Peers interface {
	// Apply hands an encoded event to the leader at apiAddr.
	Apply(ctx context.Context, apiAddr string, event []byte) (ApplyResult, error)
	// ReadIndex asks the leader at apiAddr for a read index on behalf of
	// the voter from.
	ReadIndex(ctx context.Context, apiAddr, from string) (ReadIndexAnswer, error)
}

// Directory finds the API address that answers for a Raft server ID.
type Directory interface {
	APIAddr(id string) (string, bool)
}

// Config wires an Engine. Raft, Logs, FSM and ID are required. Without
// Peers and Directory the engine never forwards (a single node).
type Config struct {
	Raft *raft.Raft
	// Logs is the log store Raft was opened with; the applied-index
	// mapping reads entry types from it.
	Logs raft.LogStore
	FSM  FSM
	// ID is this server's Raft ID.
	ID        string
	Peers     Peers
	Directory Directory
	// ApplyTimeout bounds a proposal, forwarding included.
	ApplyTimeout time.Duration
	// Local, when set, commits this node's own proposals while it leads
	// instead of ApplyLocal, so the node can run its checks first.
	Local func(event []byte, deadline time.Time) (uint64, error)
	// OnPropose, when set, is told how long each Propose took, from the
	// call until the event was applied here (or it failed), and how it
	// ended. It runs on the proposer's goroutine, so it must be cheap
	// (node/metrics observes a histogram). Nil by default.
	OnPropose func(d time.Duration, err error)
	// OnReadIndexRound, when set, is told about each read-index round
	// this node ran; the same cost rule applies. Nil by default.
	OnReadIndexRound func(ReadIndexRound)
}

// ReadIndexRound describes one coalesced read-index round: what metrics
// need to show how well batching works and what a consistent read costs.
type ReadIndexRound struct {
	// Leader is true for a round this node verified as leader, false for
	// one it asked of the leader as a follower.
	Leader bool
	// Batch is how many reads the round answered.
	Batch int
	// Duration is the round's own time, without the wait to join it.
	Duration time.Duration
	Err      error
}

// Engine is one node's consensus surface. It is safe for concurrent use.
type Engine struct {
	cfg Config
	r   *raft.Raft

	leaderReads   *batcher[uint64]
	followerReads *batcher[uint64]
	// readyTerm is the term in which this node, as leader, has committed
	// its barrier; read-index reads are served only then.
	readyTerm atomic.Uint64

	// hooks let tests of this package stop a read between its halves.
	hooks testHooks
}

// testHooks are nil outside this package's tests.
type testHooks struct {
	// afterCommitRead runs between the leader's commit-index read and its
	// leadership re-check.
	afterCommitRead func()
	// afterLeaderAnswer runs on a follower between the leader's read-index
	// answer and the follower's own term check.
	afterLeaderAnswer func(ReadIndexAnswer)
	// verifiedRound counts heartbeat-verified leader rounds.
	verifiedRound func()
}

// New returns an Engine over an open Raft instance.
func New(cfg Config) (*Engine, error) {
	if cfg.Raft == nil || cfg.Logs == nil || cfg.FSM == nil || cfg.ID == "" {
		return nil, errors.New("consensus: Raft, Logs, FSM and ID are required")
	}
	if (cfg.Peers == nil) != (cfg.Directory == nil) {
		return nil, errors.New("consensus: Peers and Directory go together")
	}
	if cfg.ApplyTimeout <= 0 {
		cfg.ApplyTimeout = 10 * time.Second
	}
	e := &Engine{cfg: cfg, r: cfg.Raft}
	if e.cfg.Local == nil {
		e.cfg.Local = e.ApplyLocal
	}
	e.leaderReads = newBatcher(e.verifiedReadIndex)
	e.followerReads = newBatcher(e.forwardedReadIndex)
	if obs := cfg.OnReadIndexRound; obs != nil {
		e.leaderReads.observe = func(n int, d time.Duration, err error) {
			obs(ReadIndexRound{Leader: true, Batch: n, Duration: d, Err: err})
		}
		e.followerReads.observe = func(n int, d time.Duration, err error) {
			obs(ReadIndexRound{Leader: false, Batch: n, Duration: d, Err: err})
		}
	}
	return e, nil
}

// Raft is the underlying instance, for membership and snapshot calls
// that are not part of this surface.
func (e *Engine) Raft() *raft.Raft { return e.r }

// IsLeader reports whether this node believes it leads.
func (e *Engine) IsLeader() bool { return e.r.State() == raft.Leader }

// Term is the current Raft term.
func (e *Engine) Term() uint64 { return e.r.CurrentTerm() }

// ReadyTerm is the term in which this node, as leader, committed its
// barrier (0 before it ever did).
func (e *Engine) ReadyTerm() uint64 { return e.readyTerm.Load() }

// LeaderInfo names the leader and where its API answers.
type LeaderInfo struct {
	ID      string
	APIAddr string
}

// Leader is the one leader lookup: the leader this node knows of, with
// its API address from the directory. The error is an *UnavailableError;
// when it also wraps ErrNotSent, a retry may find a leader.
func (e *Engine) Leader() (LeaderInfo, error) {
	if e.cfg.Directory == nil {
		return LeaderInfo{}, &UnavailableError{Err: raft.ErrNotLeader}
	}
	_, id := e.r.LeaderWithID()
	if id == "" {
		return LeaderInfo{}, &UnavailableError{Err: fmt.Errorf("%w: no leader elected", ErrNotSent)}
	}
	addr, ok := e.cfg.Directory.APIAddr(string(id))
	if !ok || addr == "" {
		return LeaderInfo{}, &UnavailableError{Err: fmt.Errorf("%w: leader %s not known through gossip yet", ErrNotSent, id)}
	}
	return LeaderInfo{ID: string(id), APIAddr: addr}, nil
}

// EstablishTerm runs when this node gains leadership: it commits a barrier
// so the commit index covers every entry of earlier terms, then marks the
// term ready for read-index reads. It retries until the barrier commits,
// leadership is lost or ctx ends, and reports the term and whether it is
// ready.
func (e *Engine) EstablishTerm(ctx context.Context, warn func(error)) (uint64, bool) {
	term := e.r.CurrentTerm()
	for {
		err := e.r.Barrier(10 * time.Second).Error()
		if err == nil {
			break
		}
		if e.r.State() != raft.Leader || ctx.Err() != nil {
			return term, false
		}
		if warn != nil {
			warn(err)
		}
	}
	e.readyTerm.Store(term)
	return term, true
}

// WaitCaughtUp holds a single node's reads until it has committed its
// first barrier since start. After a restart Raft replays the log into
// the FSM only once the node has won its election and committed, so until
// then local state can trail writes acknowledged before the restart (a
// kill -9 leaves no snapshot to restore from). Once caught up, a single
// node's state stays current through later elections (it is the only
// writer, and nothing is acknowledged before it is applied), so reads do
// not wait for it to re-win one: a full disk that makes it step down must
// not stop reads.
func (e *Engine) WaitCaughtUp(ctx context.Context) error {
	if e.readyTerm.Load() != 0 {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	t := time.NewTicker(2 * time.Millisecond)
	defer t.Stop()
	for e.readyTerm.Load() == 0 {
		select {
		case <-ctx.Done():
			return &UnavailableError{Err: errors.New("still replaying the log after start")}
		case <-t.C:
		}
	}
	return nil
}

// Classify turns Raft's errors that mean "not now" into an
// *UnavailableError and wraps the rest with what was attempted.
func Classify(what string, err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, raft.ErrNotLeader), errors.Is(err, raft.ErrLeadershipLost),
		errors.Is(err, raft.ErrRaftShutdown), errors.Is(err, raft.ErrEnqueueTimeout),
		errors.Is(err, raft.ErrLeadershipTransferInProgress):
		return &UnavailableError{Err: err}
	}
	return fmt.Errorf("%s: %w", what, err)
}
