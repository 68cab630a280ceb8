package consensus

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
	"github.com/opencontainers/go-digest"

	"github.com/berth-registry/berth/blob"
	"github.com/berth-registry/berth/events"
	"github.com/berth-registry/berth/fsm"
)

// An in-process cluster: hashicorp/raft on InmemTransport, Berth's FSM,
// and an in-process Peers that calls the other engines' ServeApply and
// ServeReadIndex directly, so forwarding follows the same protocol as the
// HTTP peers without a socket.

type testNode struct {
	id    string
	raft  *raft.Raft
	fsm   *fsm.FSM
	gate  *gatedFSM
	logs  *raft.InmemStore
	eng   *Engine
	trans *raft.InmemTransport
}

type testCluster struct {
	t     *testing.T
	nodes []*testNode
	peers *inprocPeers
}

// gatedFSM holds Apply while closed, so a test can keep one node's FSM
// behind the commit index.
type gatedFSM struct {
	*fsm.FSM
	mu   sync.Mutex
	open chan struct{} // nil: open
}

func (g *gatedFSM) Apply(l *raft.Log) interface{} {
	g.mu.Lock()
	ch := g.open
	g.mu.Unlock()
	if ch != nil {
		<-ch
	}
	return g.FSM.Apply(l)
}

func (g *gatedFSM) hold() {
	g.mu.Lock()
	g.open = make(chan struct{})
	g.mu.Unlock()
}

func (g *gatedFSM) release() {
	g.mu.Lock()
	if g.open != nil {
		close(g.open)
		g.open = nil
	}
	g.mu.Unlock()
}

// inprocPeers reaches engines by API address, counting the calls.
type inprocPeers struct {
	mu      sync.Mutex
	engines map[string]*Engine
	applies atomic.Int64
	reads   atomic.Int64
}

func apiAddr(id string) string { return "api-" + id }

func (p *inprocPeers) engine(addr string) (*Engine, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	e, ok := p.engines[addr]
	if !ok {
		return nil, fmt.Errorf("%w: %s does not answer", ErrNotSent, addr)
	}
	return e, nil
}

func (p *inprocPeers) Apply(ctx context.Context, addr string, b []byte) (ApplyResult, error) {
	p.applies.Add(1)
	e, err := p.engine(addr)
	if err != nil {
		return ApplyResult{}, err
	}
	deadline, ok := ctx.Deadline()
	if !ok {
		deadline = time.Now().Add(5 * time.Second)
	}
	return e.ServeApply(b, deadline)
}

func (p *inprocPeers) ReadIndex(ctx context.Context, addr, from string) (ReadIndexAnswer, error) {
	p.reads.Add(1)
	e, err := p.engine(addr)
	if err != nil {
		return ReadIndexAnswer{}, err
	}
	return e.ServeReadIndex(ctx, from)
}

// staticDirectory knows every node of the test cluster.
type staticDirectory map[string]string

func (d staticDirectory) APIAddr(id string) (string, bool) {
	a, ok := d[id]
	return a, ok
}

func newTestCluster(t *testing.T, size int) *testCluster {
	t.Helper()
	c := &testCluster{t: t, peers: &inprocPeers{engines: map[string]*Engine{}}}
	dir := staticDirectory{}
	var servers []raft.Server
	for i := range size {
		id := fmt.Sprintf("n%d", i)
		addr, trans := raft.NewInmemTransport(raft.ServerAddress(id))
		servers = append(servers, raft.Server{ID: raft.ServerID(id), Address: addr, Suffrage: raft.Voter})
		dir[id] = apiAddr(id)
		f := fsm.New(slog.New(slog.DiscardHandler))
		c.nodes = append(c.nodes, &testNode{id: id, fsm: f, gate: &gatedFSM{FSM: f}, logs: raft.NewInmemStore(), trans: trans})
	}
	for _, a := range c.nodes {
		for _, b := range c.nodes {
			if a != b {
				a.trans.Connect(raft.ServerAddress(b.id), b.trans)
			}
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for _, n := range c.nodes {
		rc := raft.DefaultConfig()
		rc.LocalID = raft.ServerID(n.id)
		rc.BatchApplyCh = true
		// Fast, but with room for a loaded machine under -race.
		rc.HeartbeatTimeout = 150 * time.Millisecond
		rc.ElectionTimeout = 150 * time.Millisecond
		rc.LeaderLeaseTimeout = 100 * time.Millisecond
		rc.CommitTimeout = 5 * time.Millisecond
		rc.Logger = hclog.New(&hclog.LoggerOptions{Output: io.Discard, Level: hclog.Off})
		r, err := raft.NewRaft(rc, n.gate, n.logs, raft.NewInmemStore(), raft.NewInmemSnapshotStore(), n.trans)
		if err != nil {
			t.Fatalf("start raft %s: %v", n.id, err)
		}
		n.raft = r
		if err := r.BootstrapCluster(raft.Configuration{Servers: servers}).Error(); err != nil {
			t.Fatalf("bootstrap %s: %v", n.id, err)
		}
		n.eng, err = New(Config{Raft: r, Logs: n.logs, FSM: n.fsm, ID: n.id, Peers: c.peers, Directory: dir, ApplyTimeout: 5 * time.Second})
		if err != nil {
			t.Fatal(err)
		}
		c.peers.engines[apiAddr(n.id)] = n.eng
		// What node.leaderLoop does: establish each term this node wins.
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-ctx.Done():
					return
				case lead := <-r.LeaderCh():
					if lead {
						n.eng.EstablishTerm(ctx, nil)
					}
				}
			}
		}()
	}
	t.Cleanup(func() {
		cancel()
		wg.Wait()
		for _, n := range c.nodes {
			n.gate.release()
			if err := n.raft.Shutdown().Error(); err != nil {
				t.Errorf("shutdown %s: %v", n.id, err)
			}
		}
	})
	return c
}

// leader waits until one node leads, has established its term, and every
// node knows it.
func (c *testCluster) leader() *testNode {
	c.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		for _, n := range c.nodes {
			if !n.eng.IsLeader() || n.eng.ReadyTerm() != n.eng.Term() {
				continue
			}
			agreed := true
			for _, o := range c.nodes {
				if _, id := o.raft.LeaderWithID(); string(id) != n.id {
					agreed = false
				}
			}
			if agreed {
				return n
			}
		}
		time.Sleep(5 * time.Millisecond)
	}
	c.t.Fatal("no established leader within 10s")
	return nil
}

// follower returns the i-th node that does not lead.
func (c *testCluster) follower(i int) *testNode {
	l := c.leader()
	for _, n := range c.nodes {
		if n != l {
			if i == 0 {
				return n
			}
			i--
		}
	}
	c.t.Fatal("not enough followers")
	return nil
}

// transfer moves leadership from the current leader to the node to and
// waits until to has established its term.
func (c *testCluster) transfer(from, to *testNode) {
	c.t.Helper()
	if err := from.raft.LeadershipTransferToServer(raft.ServerID(to.id), raft.ServerAddress(to.id)).Error(); err != nil {
		c.t.Errorf("leadership transfer %s -> %s: %v", from.id, to.id, err)
		return
	}
	deadline := time.Now().Add(10 * time.Second)
	for !to.eng.IsLeader() || to.eng.ReadyTerm() != to.eng.Term() {
		if time.Now().After(deadline) {
			c.t.Errorf("%s did not establish leadership within 10s", to.id)
			return
		}
		time.Sleep(2 * time.Millisecond)
	}
}

func link(repo string) []byte {
	return encode(events.BlobLinked{Repo: repo, Digest: digest.FromString(repo), Size: 1})
}

func encode(p events.Payload) []byte {
	b, err := events.Encode(events.Event{Time: time.Unix(1, 0).UTC(), Payload: p})
	if err != nil {
		panic(err)
	}
	return b
}

func propose(t *testing.T, n *testNode, b []byte) (uint64, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return n.eng.Propose(ctx, b, time.Now().Add(10*time.Second))
}

func linked(n *testNode, repo string) bool {
	_, ok := n.fsm.View().BlobLink(repo, digest.FromString(repo))
	return ok
}

func TestPropose(t *testing.T) {
	c := newTestCluster(t, 3)
	for _, tc := range []struct {
		name        string
		from        func() *testNode
		event       []byte
		wantRefusal fsm.Code
		forwarded   bool
	}{
		{"on the leader", c.leader, link("leader/a"), "", false},
		{"forwarded from a follower", func() *testNode { return c.follower(0) }, link("follower/a"), "", true},
		{"refused on the leader", c.leader, encode(events.BlobUnlinked{Repo: "x", Digest: digest.FromString("x")}), fsm.CodeBlobUnknown, false},
		{"refusal travels back to a follower", func() *testNode { return c.follower(1) },
			encode(events.BlobUnlinked{Repo: "y", Digest: digest.FromString("y")}), fsm.CodeBlobUnknown, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			n := tc.from()
			before := c.peers.applies.Load()
			idx, err := propose(t, n, tc.event)
			if forwarded := c.peers.applies.Load() > before; forwarded != tc.forwarded {
				t.Errorf("forwarded = %v, want %v", forwarded, tc.forwarded)
			}
			if tc.wantRefusal != "" {
				ref, ok := err.(*fsm.Refusal)
				if !ok || ref.Code != tc.wantRefusal {
					t.Fatalf("Propose = %d, %v; want a %s refusal", idx, err, tc.wantRefusal)
				}
				return
			}
			if err != nil || idx == 0 {
				t.Fatalf("Propose = %d, %v", idx, err)
			}
			// Acknowledged means applied on the proposing node too.
			if got := n.fsm.AppliedIndex(); got < idx {
				t.Fatalf("%s applied %d after an acknowledged write at %d", n.id, got, idx)
			}
		})
	}
}

func TestReadIndex(t *testing.T) {
	for _, tc := range []struct {
		name     string
		size     int
		follower bool
		// wantVerified: the read needs a heartbeat round on the leader;
		// a follower of at most three voters completes the quorum itself.
		wantVerified bool
	}{
		{"leader of three", 3, false, true},
		{"follower of three takes the fast path", 3, true, false},
		{"follower of four needs the heartbeat round", 4, true, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := newTestCluster(t, tc.size)
			leader := c.leader()
			reader := leader
			if tc.follower {
				reader = c.follower(0)
			}
			var verified atomic.Int64
			leader.eng.hooks.verifiedRound = func() { verified.Add(1) }
			// Keep a follower's FSM behind: the read must wait for it. (The
			// leader acknowledges a write only once its own FSM applied it.)
			if tc.follower {
				reader.gate.hold()
				t.Cleanup(reader.gate.release)
			}
			idx, err := propose(t, leader, link("read/a"))
			if err != nil {
				t.Fatalf("write on the leader: %v", err)
			}
			done := make(chan error, 1)
			go func() { done <- reader.eng.WaitRead(context.Background()) }()
			if tc.follower {
				select {
				case err := <-done:
					t.Fatalf("read returned (%v) before %s applied the acknowledged write at %d", err, reader.id, idx)
				case <-time.After(100 * time.Millisecond):
				}
				reader.gate.release()
			}
			if err := <-done; err != nil {
				t.Fatalf("read on %s: %v", reader.id, err)
			}
			if !linked(reader, "read/a") {
				t.Fatalf("read on %s does not see the write acknowledged at %d", reader.id, idx)
			}
			if got := verified.Load() > 0; got != tc.wantVerified {
				t.Errorf("heartbeat-verified round ran = %v, want %v", got, tc.wantVerified)
			}
			ri, err := reader.eng.ReadIndex(context.Background())
			if err != nil || ri < idx {
				t.Fatalf("ReadIndex = %d, %v; want at least %d", ri, err, idx)
			}
		})
	}
}

// TestReadIndexLeaderChange moves leadership between the two halves of a
// read (deterministically, from a hook) and writes on the new leader. The
// answer obtained in the old term must be discarded: the read retries and
// returns an index that covers the new leader's write.
func TestReadIndexLeaderChange(t *testing.T) {
	for _, tc := range []struct {
		name string
		// arm installs the hook on the cluster and returns the node that reads.
		arm func(c *testCluster, onChange func(newLeader *testNode) uint64) *testNode
	}{
		{"follower: term moves after the leader answered", func(c *testCluster, onChange func(*testNode) uint64) *testNode {
			old, reader, next := c.leader(), c.follower(0), c.follower(1)
			var once sync.Once
			reader.eng.hooks.afterLeaderAnswer = func(ans ReadIndexAnswer) {
				once.Do(func() {
					c.transfer(old, next)
					onChange(next)
				})
			}
			return reader
		}},
		{"leader: leadership lost after reading the commit index", func(c *testCluster, onChange func(*testNode) uint64) *testNode {
			old, next := c.leader(), c.follower(0)
			var once sync.Once
			old.eng.hooks.afterCommitRead = func() {
				once.Do(func() {
					c.transfer(old, next)
					onChange(next)
				})
			}
			return old
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := newTestCluster(t, 3)
			var newWrite atomic.Uint64
			var changed atomic.Bool
			reader := tc.arm(c, func(next *testNode) uint64 {
				idx, err := propose(t, next, link("after/change"))
				if err != nil {
					t.Errorf("write on the new leader %s: %v", next.id, err)
				}
				newWrite.Store(idx)
				changed.Store(true)
				return idx
			})
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			idx, err := reader.eng.ReadIndex(ctx)
			if !changed.Load() {
				t.Fatal("the hook did not run: the test did not change leaders mid-read")
			}
			// Failing would be allowed, returning a stale index never; this
			// code retries (the old answer wraps ErrNotSent) and succeeds.
			if err != nil {
				t.Fatalf("read after the leader change: %v, want a retry against the new leader", err)
			}
			if w := newWrite.Load(); idx < w {
				t.Fatalf("ReadIndex = %d after a leader change, below the new leader's write at %d: a stale index from the old term", idx, w)
			}
			if err := reader.eng.WaitRead(ctx); err != nil {
				t.Fatalf("read after the change: %v", err)
			}
			if !linked(reader, "after/change") {
				t.Fatal("read after the change does not see the new leader's write")
			}
		})
	}
}

// TestServeReadIndexLeaderChange: the leader's half on its own. With
// three voters the leader answers a follower without a heartbeat round,
// so its re-check after reading the commit index is what keeps a deposed
// leader from answering with an index of its old term.
func TestServeReadIndexLeaderChange(t *testing.T) {
	c := newTestCluster(t, 3)
	old, asker, next := c.leader(), c.follower(0), c.follower(1)
	var changed atomic.Bool
	old.eng.hooks.afterCommitRead = func() {
		if changed.CompareAndSwap(false, true) {
			c.transfer(old, next)
		}
	}
	ans, err := old.eng.ServeReadIndex(context.Background(), asker.id)
	if !changed.Load() {
		t.Fatal("the hook did not run")
	}
	if !errorsIsNotSent(err) {
		t.Fatalf("deposed leader answered %+v, %v; want ErrNotSent (409: the follower asks again)", ans, err)
	}
}

// TestServeReadIndexNotLeader: a node that no longer leads tells the
// follower so (ErrNotSent, 409 on the wire), so the follower retries.
func TestServeReadIndexNotLeader(t *testing.T) {
	c := newTestCluster(t, 3)
	f := c.follower(0)
	if _, err := f.eng.ServeReadIndex(context.Background(), c.follower(1).id); !errorsIsNotSent(err) {
		t.Fatalf("ServeReadIndex on a follower = %v, want ErrNotSent", err)
	}
	if _, err := f.eng.ServeApply(link("x"), time.Now().Add(time.Second)); !errorsIsNotSent(err) {
		t.Fatalf("ServeApply on a follower = %v, want ErrNotSent", err)
	}
}

// TestAppliedIndexMapping: Raft's applied index counts configuration,
// no-op and barrier entries, which never reach the FSM; the read index is
// mapped to the last command at or below it, so a read on a cluster with
// no command yet does not wait for an index the FSM will never reach.
func TestAppliedIndexMapping(t *testing.T) {
	c := newTestCluster(t, 3)
	l := c.leader()
	if ra, fa := l.raft.AppliedIndex(), l.fsm.AppliedIndex(); ra == 0 || fa != 0 {
		t.Fatalf("before any command: raft applied %d, FSM applied %d; want raft > 0 and FSM 0", ra, fa)
	}
	if got := l.eng.LastCommandAtOrBelow(l.raft.CommitIndex()); got != 0 {
		t.Fatalf("LastCommandAtOrBelow(commit %d) = %d with no command in the log, want 0", l.raft.CommitIndex(), got)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	for _, n := range c.nodes {
		if err := n.eng.WaitRead(ctx); err != nil {
			t.Fatalf("read on %s with no command yet: %v", n.id, err)
		}
	}
	idx, err := propose(t, l, link("map/a"))
	if err != nil {
		t.Fatal(err)
	}
	// A barrier after the command: commit moves past it, the FSM does not.
	if err := l.raft.Barrier(5 * time.Second).Error(); err != nil {
		t.Fatal(err)
	}
	if commit := l.raft.CommitIndex(); commit <= idx {
		t.Fatalf("commit %d not past the command at %d", commit, idx)
	}
	if got := l.eng.LastCommandAtOrBelow(l.raft.CommitIndex()); got != idx {
		t.Fatalf("LastCommandAtOrBelow(%d) = %d, want the command at %d", l.raft.CommitIndex(), got, idx)
	}
}

// TestLastCommandAtOrBelow covers the mapping on a hand-made log, with
// compaction.
func TestLastCommandAtOrBelow(t *testing.T) {
	types := []raft.LogType{raft.LogConfiguration, raft.LogCommand, raft.LogNoop, raft.LogCommand, raft.LogBarrier, raft.LogNoop}
	for _, tc := range []struct {
		name      string
		applied   uint64
		compactTo uint64 // entries 1..compactTo are gone
		idx, want uint64
	}{
		{"a command maps to itself", 0, 0, 4, 4},
		{"a no-op after a command", 0, 0, 6, 4},
		{"a no-op right after the first command", 0, 0, 3, 2},
		{"nothing but configuration", 0, 0, 1, 0},
		{"already applied", 6, 0, 6, 6},
		{"only non-commands above the applied index", 4, 0, 6, 4},
		{"compacted into a snapshot the FSM holds", 2, 4, 6, 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			logs := raft.NewInmemStore()
			for i, typ := range types {
				if err := logs.StoreLog(&raft.Log{Index: uint64(i + 1), Term: 1, Type: typ}); err != nil {
					t.Fatal(err)
				}
			}
			if tc.compactTo > 0 {
				if err := logs.DeleteRange(1, tc.compactTo); err != nil {
					t.Fatal(err)
				}
			}
			e := &Engine{cfg: Config{Logs: logs, FSM: fixedFSM(tc.applied)}}
			if got := e.LastCommandAtOrBelow(tc.idx); got != tc.want {
				t.Fatalf("LastCommandAtOrBelow(%d) with FSM at %d = %d, want %d", tc.idx, tc.applied, got, tc.want)
			}
		})
	}
}

type fixedFSM uint64

func (f fixedFSM) AppliedIndex() uint64                      { return uint64(f) }
func (f fixedFSM) WaitApplied(context.Context, uint64) error { return nil }

func errorsIsNotSent(err error) bool { return errors.Is(err, ErrNotSent) }

// notNow is a leader-side error that says "not now" (a codec gate, a
// halted FSM); diskFull is one that is also the leader's full disk.
type notNow struct{ msg string }

func (e notNow) Error() string     { return e.msg }
func (e notNow) Unavailable() bool { return true }

type diskFull struct{ notNow }

func (diskFull) Unwrap() error { return blob.ErrNoSpace }

// TestForwardedNotNowAnswers: what the leader's commit path refuses for
// now travels back to the follower as such, once, without retries until
// the deadline, and a full disk stays recognisable (the OCI API's 507).
func TestForwardedNotNowAnswers(t *testing.T) {
	c := newTestCluster(t, 3)
	leader := c.leader()
	for _, tc := range []struct {
		name        string
		err         error
		wantNoSpace bool
	}{
		{"gate or halt", notNow{"voter n2 cannot decode it yet"}, false},
		{"leader's disk is full", diskFull{notNow{"disk full"}}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			leader.eng.cfg.Local = func([]byte, time.Time) (uint64, error) { return 0, tc.err }
			defer func() { leader.eng.cfg.Local = leader.eng.ApplyLocal }()
			before := c.peers.applies.Load()
			_, err := propose(t, c.follower(0), link("notnow/"+tc.name))
			var u interface{ Unavailable() bool }
			if !errors.As(err, &u) || !strings.Contains(err.Error(), tc.err.Error()) {
				t.Fatalf("Propose = %v, want the leader's %q as unavailable", err, tc.err)
			}
			if got := errors.Is(err, blob.ErrNoSpace); got != tc.wantNoSpace {
				t.Errorf("errors.Is(err, blob.ErrNoSpace) = %v, want %v", got, tc.wantNoSpace)
			}
			if n := c.peers.applies.Load() - before; n != 1 {
				t.Errorf("forwarded %d times, want once (no retries for a lasting refusal)", n)
			}
		})
	}
}
