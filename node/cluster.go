package node

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"sort"
	"sync"
	"time"

	"github.com/hashicorp/raft"

	cs "github.com/berth-registry/berth/node/consensus"
	"github.com/berth-registry/berth/node/httperr"
)

// leaderLoop follows this node's leadership. On gaining it, it first
// commits a barrier (so the commit index is current for read-index
// reads), then keeps the Raft configuration in line with gossip. On losing
// it, everything started for the term is cancelled (rule 9).
func (n *Node) leaderLoop(ctx context.Context) {
	stopTerm := func() {}
	defer func() { stopTerm() }()
	for {
		select {
		case <-ctx.Done():
			return
		case isLeader := <-n.raft.raft.LeaderCh():
			stopTerm()
			stopTerm = func() {}
			if !isLeader {
				n.logger.Info("lost leadership")
				continue
			}
			lctx, cancel := context.WithCancel(ctx)
			var wg sync.WaitGroup
			wg.Add(1)
			go func() {
				defer wg.Done()
				n.lead(lctx)
			}()
			stopTerm = func() { cancel(); wg.Wait() }
		}
	}
}

func (n *Node) lead(ctx context.Context) {
	term, ok := n.engine.EstablishTerm(ctx, func(err error) {
		n.logger.Warn("leader barrier failed; retrying", "err", err)
	})
	if !ok {
		return
	}
	n.logger.Info("leading", "term", term, "commit", n.raft.raft.CommitIndex())
	defer n.startGC(ctx, term)()              // garbage collection and the upload purge (node/gc.go)
	defer n.startReplication(ctx, term)()     // mirror policies (node/replication.go)
	defer n.startPushReplication(ctx, term)() // push policies (node/replication_push.go)
	retentionDone := make(chan struct{})
	go func() {
		defer close(retentionDone)
		n.runRetentionSchedule(ctx) // node/retention.go
	}()
	defer func() { <-retentionDone }()
	if n.access != nil {
		keysDone := make(chan struct{})
		go func() {
			defer close(keysDone)
			n.runSigningKeys(ctx)
		}()
		defer func() { <-keysDone }()
	}
	quotasDone := make(chan struct{})
	go func() {
		defer close(quotasDone)
		n.enableQuotas(ctx) // node/quota.go
	}()
	defer func() { <-quotasDone }()
	if n.events != nil {
		done := make(chan struct{})
		go func() {
			defer close(done)
			n.runOutbox(ctx)
		}()
		defer func() { <-done }()
		hooksDone := make(chan struct{})
		go func() {
			defer close(hooksDone)
			n.runWebhooks(ctx)
		}()
		defer func() { <-hooksDone }()
	}
	if n.members == nil {
		return
	}
	t := time.NewTicker(2 * time.Second)
	defer t.Stop()
	for {
		n.reconcile()
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-n.members.changed:
		}
	}
}

// reconcile adds alive gossip members that are not yet Raft voters and
// removes members that left gracefully. Failed (dead) members stay voters:
// Raft tolerates them, and they come back with their data.
func (n *Node) reconcile() {
	r := n.raft.raft
	if r.State() != raft.Leader {
		return
	}
	f := r.GetConfiguration()
	if err := f.Error(); err != nil {
		n.logger.Warn("read raft configuration", "err", err)
		return
	}
	inRaft := map[string]raft.Server{}
	for _, s := range f.Configuration().Servers {
		inRaft[string(s.ID)] = s
	}
	for _, m := range n.members.Members() {
		s, ok := inRaft[m.ID]
		switch {
		case m.State == "alive" && m.RaftAddr != "" && (!ok || string(s.Address) != m.RaftAddr):
			if !n.peerProvesMembership(m) {
				continue
			}
			n.logger.Info("adding voter", "id", m.ID, "raft", m.RaftAddr)
			if err := r.AddVoter(raft.ServerID(m.ID), raft.ServerAddress(m.RaftAddr), 0, 10*time.Second).Error(); err != nil {
				n.logger.Warn("add voter failed", "id", m.ID, "err", err)
			}
		case m.State == "left" && ok && m.ID != n.cfg.Node.ID:
			n.logger.Info("removing voter that left", "id", m.ID)
			if err := r.RemoveServer(raft.ServerID(m.ID), 0, 10*time.Second).Error(); err != nil {
				n.logger.Warn("remove voter failed", "id", m.ID, "err", err)
			}
		}
	}
}

// peerProvesMembership is, with cluster.tls, the leader's check before
// it adds a voter: a mutual-TLS call to the node's internal API, which
// succeeds only if its certificate is from the cluster CA. Gossip needs
// only the cluster secret, so without this check a node holding the
// secret but a certificate of another CA would enter the Raft
// configuration and sit there as a voter no peer can talk to. The refusal
// is logged once per node and reason, not every reconcile.
func (n *Node) peerProvesMembership(m Member) bool {
	if n.tls.cluster == nil {
		return true
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	var st NodeStatus
	err := n.peers.do(ctx, "GET", m.APIAddr, "status", nil, &st)
	if n.joinRefused == nil {
		n.joinRefused = map[string]string{}
	}
	if err == nil {
		delete(n.joinRefused, m.ID)
		return true
	}
	if n.joinRefused[m.ID] != err.Error() {
		n.joinRefused[m.ID] = err.Error()
		n.logger.Warn("not adding voter: its internal API does not answer over mutual TLS with the cluster CA (cluster.tls)", "id", m.ID, "api", m.APIAddr, "err", err)
	}
	return false
}

// bootstrapLoop forms a brand-new cluster once raft.bootstrapexpect voters
// are known through gossip. Every node computes the same configuration
// (sorted by ID), and hashicorp/raft accepts identical bootstraps. A node
// never bootstraps if any peer already has a leader: it is joining an
// existing cluster, and that cluster's leader adds it.
func (n *Node) bootstrapLoop(ctx context.Context) {
	expect := max(n.cfg.Raft.BootstrapExpect, 1)
	if expect == 1 && len(n.cfg.Gossip.Join) > 0 && n.cfg.Raft.BootstrapExpect == 0 {
		// Joining an existing cluster: wait to be added.
		return
	}
	t := time.NewTicker(500 * time.Millisecond)
	defer t.Stop()
	for {
		if _, id := n.raft.raft.LeaderWithID(); id != "" {
			return
		}
		var servers []raft.Server
		for _, m := range n.members.Members() {
			if m.State == "alive" && m.RaftAddr != "" {
				servers = append(servers, raft.Server{ID: raft.ServerID(m.ID), Address: raft.ServerAddress(m.RaftAddr), Suffrage: raft.Voter})
			}
		}
		if len(servers) >= expect && !n.peersHaveLeader(ctx, servers) {
			sort.Slice(servers, func(i, j int) bool { return servers[i].ID < servers[j].ID })
			n.logger.Info("bootstrapping cluster", "voters", len(servers))
			err := n.raft.raft.BootstrapCluster(raft.Configuration{Servers: servers}).Error()
			if err == nil || errors.Is(err, raft.ErrCantBootstrap) {
				return
			}
			n.logger.Warn("bootstrap failed; retrying", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func (n *Node) peersHaveLeader(ctx context.Context, servers []raft.Server) bool {
	for _, s := range servers {
		if string(s.ID) == n.cfg.Node.ID {
			continue
		}
		m, ok := n.members.member(string(s.ID))
		if !ok {
			continue
		}
		var st NodeStatus
		cctx, cancel := context.WithTimeout(ctx, time.Second)
		err := n.peers.do(cctx, "GET", m.APIAddr, "status", nil, &st)
		cancel()
		if err == nil && st.Leader != "" {
			return true
		}
	}
	return false
}

// localStatus is this node's own view, as served to peers.
func (n *Node) localStatus() NodeStatus {
	r := n.raft.raft
	_, leader := r.LeaderWithID()
	st := NodeStatus{
		ID:          n.cfg.Node.ID,
		APIAddr:     n.apiAdvertise(),
		RaftAddr:    n.raftAdvertise(),
		Region:      n.cfg.Node.Region,
		State:       r.State().String(),
		Term:        r.CurrentTerm(),
		CommitIndex: r.CommitIndex(),
		// Raft's applied index counts every entry (no-ops, configuration),
		// so it compares with the commit index; the FSM only sees commands.
		AppliedIndex: r.AppliedIndex(),
		LastIndex:    r.LastIndex(),
		Leader:       string(leader),
		Version:      n.version,
	}
	if err := n.fsm.Halted(); err != nil {
		st.Halted = err.Error()
	}
	st.Events = n.eventsStatus()
	st.ReadOnly = n.readOnly().On
	if f := r.GetConfiguration(); f.Error() == nil {
		st.Voter = slices.ContainsFunc(f.Configuration().Servers, func(s raft.Server) bool {
			return string(s.ID) == n.cfg.Node.ID && s.Suffrage == raft.Voter
		})
	}
	return st
}

// ClusterStatus gathers every node's status. Nodes that do not answer are
// listed with their gossip state and the error.
func (n *Node) ClusterStatus(ctx context.Context) (leader string, nodes []NodeStatus) {
	self := n.localStatus()
	leader = self.Leader
	if n.members == nil {
		self.Gossip = "alive"
		return leader, []NodeStatus{self}
	}
	members := n.members.Members()
	nodes = make([]NodeStatus, len(members))
	var wg sync.WaitGroup
	for i, m := range members {
		if m.ID == n.cfg.Node.ID {
			nodes[i] = self
			nodes[i].Gossip = m.State
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
			defer cancel()
			var st NodeStatus
			if err := n.peers.do(cctx, "GET", m.APIAddr, "status", nil, &st); err != nil {
				st = NodeStatus{ID: m.ID, APIAddr: m.APIAddr, RaftAddr: m.RaftAddr, Region: m.Region, State: "unreachable", Error: err.Error()}
			}
			st.Gossip = m.State
			nodes[i] = st
		}()
	}
	wg.Wait()
	sort.Slice(nodes, func(i, j int) bool { return nodes[i].ID < nodes[j].ID })
	// Raft may still name a leader this node can no longer reach (it has
	// not timed out yet): say it is unknown rather than name it.
	for _, st := range nodes {
		if st.ID == leader && st.Error != "" {
			leader = ""
		}
	}
	return leader, nodes
}

// removeServer takes a node out of the Raft configuration, on the leader.
func (n *Node) removeServer(id string) error {
	r := n.raft.raft
	if r.State() != raft.Leader {
		return n.forwardToLeader("raft/remove", id)
	}
	f := r.GetConfiguration()
	if err := f.Error(); err != nil {
		return err
	}
	if !slices.ContainsFunc(f.Configuration().Servers, func(s raft.Server) bool { return string(s.ID) == id }) {
		return httperr.Errorf(http.StatusBadRequest, "node %q is not a member of the raft configuration", id)
	}
	return membershipError("remove "+id, r.RemoveServer(raft.ServerID(id), 0, 10*time.Second).Error())
}

// transferLeadership hands leadership to id, or to the most up-to-date
// follower when id is empty.
func (n *Node) transferLeadership(id string) error {
	r := n.raft.raft
	if r.State() != raft.Leader {
		return n.forwardToLeader("raft/transfer", id)
	}
	if id == "" {
		return membershipError("transfer leadership", r.LeadershipTransfer().Error())
	}
	if id == n.cfg.Node.ID {
		return nil
	}
	f := r.GetConfiguration()
	if err := f.Error(); err != nil {
		return err
	}
	for _, s := range f.Configuration().Servers {
		if string(s.ID) == id {
			return membershipError("transfer leadership to "+id, r.LeadershipTransferToServer(s.ID, s.Address).Error())
		}
	}
	return httperr.Errorf(http.StatusBadRequest, "node %q is not a member of the raft configuration", id)
}

// membershipError classifies a failed membership change: unavailable
// (no longer the leader, shutting down: retry) or a request Raft cannot
// carry out as asked (no peer to hand leadership to), which is 400 as it
// always was.
func membershipError(what string, err error) error {
	err = cs.Classify(what, err)
	var u *UnavailableError
	if err == nil || errors.As(err, &u) {
		return err
	}
	return &httperr.Error{Code: http.StatusBadRequest, Err: err}
}

// forwardToLeader asks the leader to run a membership change on its
// internal API.
func (n *Node) forwardToLeader(path, id string) error {
	leader, err := n.engine.Leader()
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	body := fmt.Appendf(nil, `{"id":%q}`, id)
	return n.peers.do(ctx, "POST", leader.APIAddr, path, body, nil)
}

// Join asks this node to contact another node's gossip address.
func (n *Node) Join(addrs []string) (int, error) {
	if n.members == nil {
		return 0, errors.New("this node runs alone (no gossip.addr): restart it with --raft-addr and --gossip-addr to cluster")
	}
	return n.members.join(addrs)
}

// Leave makes this node leave the cluster gracefully: hand over leadership
// if it leads, announce the departure through gossip (the leader then
// removes it from Raft), and stop.
func (n *Node) Leave(ctx context.Context) error {
	if n.members == nil {
		return errors.New("this node runs alone: there is no cluster to leave")
	}
	if n.raft.raft.State() == raft.Leader {
		if err := n.raft.raft.LeadershipTransfer().Error(); err != nil {
			return fmt.Errorf("hand over leadership before leaving: %w", err)
		}
	}
	if err := n.removeServer(n.cfg.Node.ID); err != nil {
		n.logger.Warn("could not remove self from raft before leaving; the leader will after gossip", "err", err)
	}
	if err := n.members.leave(5 * time.Second); err != nil {
		return fmt.Errorf("leave gossip: %w", err)
	}
	n.stop()
	return nil
}
