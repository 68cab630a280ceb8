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
// (no leader, leadership lost, shutting down, cut off from the majority).
// The client should retry; the HTTP layer answers 503 with Retry-After.
type UnavailableError struct{ Err error }

func (e *UnavailableError) Error() string     { return "cluster unavailable: " + e.Err.Error() }
func (e *UnavailableError) Unwrap() error     { return e.Err }
func (e *UnavailableError) Unavailable() bool { return true }

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
	backoff := 10 * time.Millisecond
	for {
		idx, err, retry := n.proposeOnce(ctx, b, deadline)
		if !retry || time.Now().Add(backoff).After(deadline) {
			if err != nil {
				return idx, err
			}
			// Forwarded writes are acknowledged only once applied here too.
			wctx, cancel := context.WithDeadline(context.WithoutCancel(ctx), deadline)
			defer cancel()
			if werr := n.fsm.WaitApplied(wctx, idx); werr != nil {
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
func (n *Node) proposeOnce(ctx context.Context, b []byte, deadline time.Time) (uint64, error, bool) {
	r := n.raft.raft
	if r.State() == raft.Leader {
		idx, err := n.applyLocalUntil(b, deadline)
		var u *UnavailableError
		return idx, err, errors.As(err, &u) && !errors.Is(err, raft.ErrLeadershipLost)
	}
	if n.members == nil {
		return 0, &UnavailableError{Err: raft.ErrNotLeader}, true
	}
	_, leaderID := r.LeaderWithID()
	if leaderID == "" {
		return 0, &UnavailableError{Err: errors.New("no leader elected")}, true
	}
	leader, ok := n.members.member(string(leaderID))
	if !ok || leader.APIAddr == "" {
		return 0, &UnavailableError{Err: fmt.Errorf("leader %s not known through gossip yet", leaderID)}, true
	}
	var res applyResult
	fctx, cancel := context.WithDeadline(context.WithoutCancel(ctx), deadline)
	defer cancel()
	err := n.peers.do(fctx, "POST", leader.APIAddr, "apply", b, &res)
	var u *UnavailableError
	switch {
	case errors.Is(err, errNotSent):
		return 0, &UnavailableError{Err: err}, true
	case errors.As(err, &u):
		return 0, err, true
	case err != nil:
		// The leader may or may not have applied it: don't guess.
		return 0, &UnavailableError{Err: fmt.Errorf("forward to leader %s: %w", leaderID, err)}, false
	case res.Refusal != nil:
		return res.Index, res.Refusal, false
	case res.Gate != nil:
		return res.Index, res.Gate, false
	case res.Error != "":
		return res.Index, errors.New(res.Error), false
	}
	return res.Index, nil, false
}

// applyLocal commits an encoded event on this node, which must be leader.
func (n *Node) applyLocal(b []byte) (uint64, error) {
	return n.applyLocalUntil(b, time.Now().Add(n.cfg.Raft.ApplyTimeout))
}

func (n *Node) applyLocalUntil(b []byte, deadline time.Time) (uint64, error) {
	if err := n.raft.disk.check(); err != nil {
		return 0, err // don't hand Raft an entry it cannot store
	}
	if err := n.admit(b); err != nil {
		return 0, err
	}
	f := n.raft.raft.Apply(b, time.Until(deadline))
	if err := f.Error(); err != nil {
		if derr := n.raft.disk.lastFailure(); derr != nil {
			return 0, derr
		}
		switch {
		case errors.Is(err, raft.ErrNotLeader), errors.Is(err, raft.ErrLeadershipLost),
			errors.Is(err, raft.ErrRaftShutdown), errors.Is(err, raft.ErrEnqueueTimeout),
			errors.Is(err, raft.ErrLeadershipTransferInProgress):
			return 0, &UnavailableError{Err: err}
		}
		return 0, fmt.Errorf("raft apply: %w", err)
	}
	if resp := f.Response(); resp != nil {
		if err, ok := resp.(error); ok {
			return f.Index(), err
		}
	}
	return f.Index(), nil
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
	idx, err := n.readIndex(ctx)
	if err != nil {
		return nil, err
	}
	if err := n.fsm.WaitApplied(ctx, idx); err != nil {
		return nil, &UnavailableError{Err: fmt.Errorf("catching up to read index %d: %w", idx, err)}
	}
	return n.fsm.View(), nil
}

// waitCaughtUp holds a single node's reads until it has committed its
// first barrier since start. After a restart Raft replays the log into
// the FSM only once the node has won its election and committed, so until
// then local state can trail writes acknowledged before the restart (a
// kill -9 leaves no snapshot to restore from). Once caught up, a single
// node's state stays current through later elections (it is the only
// writer), so reads do not wait for it to re-win one: a full disk that
// makes it step down must not stop reads.
func (n *Node) waitCaughtUp(ctx context.Context) error {
	if n.readyTerm.Load() != 0 {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	t := time.NewTicker(2 * time.Millisecond)
	defer t.Stop()
	for n.readyTerm.Load() == 0 {
		select {
		case <-ctx.Done():
			return &UnavailableError{Err: errors.New("still replaying the log after start")}
		case <-t.C:
		}
	}
	return nil
}
