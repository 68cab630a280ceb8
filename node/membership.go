package node

import (
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"sync"
	"time"

	"github.com/hashicorp/memberlist"

	"github.com/berth-registry/berth/node/logs"
)

// Meta is what each node gossips about itself. It is how a follower finds
// the leader's API address to forward to, and how the leader learns the
// Raft address of a node that joins.
type Meta struct {
	ID       string `json:"id"`
	RaftAddr string `json:"raft"`
	APIAddr  string `json:"api"`
	Region   string `json:"region,omitempty"`
	Version  string `json:"version,omitempty"`
	// Codec is the newest event codec generation this node's binary
	// decodes (events.Generation); the leader proposes nothing newer
	// than the oldest voter's. Absent (0) means the baseline.
	Codec int `json:"codec,omitempty"`
}

// Member is a gossip peer with its metadata and liveness.
type Member struct {
	Meta
	GossipAddr string `json:"gossipAddr"`
	State      string `json:"state"` // alive, suspect, dead, left
}

// membership wraps memberlist: it gossips this node's Meta, keeps the
// latest view of every peer, and signals changes so the leader can
// reconcile the Raft configuration with who is alive.
type membership struct {
	list    *memberlist.Memberlist
	self    Meta
	changed chan struct{} // buffered 1: a coalesced "something changed"
	logger  *slog.Logger

	mu      sync.Mutex
	members map[string]Member
}

func newMembership(cfg Config, self Meta, logger *slog.Logger) (*membership, error) {
	host, portStr, err := net.SplitHostPort(cfg.Gossip.Addr)
	if err != nil {
		return nil, fmt.Errorf("gossip.addr %q: %w", cfg.Gossip.Addr, err)
	}
	port, err := strconv.Atoi(portStr)
	if err != nil {
		return nil, fmt.Errorf("gossip.addr %q: bad port", cfg.Gossip.Addr)
	}
	m := &membership{
		self:    self,
		changed: make(chan struct{}, 1),
		logger:  logger,
		members: map[string]Member{},
	}
	mc := memberlist.DefaultLANConfig()
	mc.Name = self.ID
	mc.BindAddr = host
	mc.BindPort = port
	mc.AdvertisePort = port
	if adv := cfg.Gossip.Advertise; adv != "" {
		ah, ap, err := net.SplitHostPort(adv)
		if err != nil {
			return nil, fmt.Errorf("gossip.advertise %q: %w", adv, err)
		}
		mc.AdvertiseAddr = ah
		mc.AdvertisePort, _ = strconv.Atoi(ap)
	}
	mc.Delegate = m
	mc.Events = m
	// Faster failure detection than the WAN-friendly defaults: these nodes
	// sit on one LAN behind one load balancer.
	mc.ProbeInterval = 500 * time.Millisecond
	mc.ProbeTimeout = 250 * time.Millisecond
	mc.GossipInterval = 100 * time.Millisecond
	// memberlist's "[DEBUG] memberlist: ..." lines become records of the
	// level they name, in the node's format.
	mc.Logger = logs.StdLog(logger, "memberlist")
	if s := cfg.Cluster.secret; s != "" {
		// Gossip is encrypted with a key derived from the cluster secret.
		key := sha256.Sum256([]byte("berth-gossip:" + s))
		mc.SecretKey = key[:]
	}
	list, err := memberlist.Create(mc)
	if err != nil {
		return nil, fmt.Errorf("start gossip on %s: %w", cfg.Gossip.Addr, err)
	}
	m.list = list
	return m, nil
}

// join contacts any of the given gossip addresses. It succeeds if at least
// one answered.
func (m *membership) join(addrs []string) (int, error) {
	if len(addrs) == 0 {
		return 0, nil
	}
	return m.list.Join(addrs)
}

// Members returns every known peer, this node included.
func (m *membership) Members() []Member {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]Member, 0, len(m.members))
	for _, mem := range m.members {
		out = append(out, mem)
	}
	return out
}

// member looks up a peer by node ID.
func (m *membership) member(id string) (Member, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	mem, ok := m.members[id]
	return mem, ok
}

func (m *membership) leave(timeout time.Duration) error {
	if err := m.list.Leave(timeout); err != nil {
		return err
	}
	return m.list.Shutdown()
}

func (m *membership) record(n *memberlist.Node, state string) {
	var meta Meta
	if err := json.Unmarshal(n.Meta, &meta); err != nil || meta.ID == "" {
		m.logger.Warn("ignoring gossip peer with bad metadata", "peer", n.Name, "err", err)
		return
	}
	if n.State == memberlist.StateLeft {
		state = "left"
	}
	m.mu.Lock()
	m.members[meta.ID] = Member{Meta: meta, GossipAddr: n.Address(), State: state}
	m.mu.Unlock()
	select {
	case m.changed <- struct{}{}:
	default:
	}
}

// memberlist.EventDelegate

func (m *membership) NotifyJoin(n *memberlist.Node)   { m.record(n, "alive") }
func (m *membership) NotifyUpdate(n *memberlist.Node) { m.record(n, "alive") }
func (m *membership) NotifyLeave(n *memberlist.Node)  { m.record(n, "dead") }

// memberlist.Delegate

func (m *membership) NodeMeta(limit int) []byte {
	b, _ := json.Marshal(m.self)
	if len(b) > limit {
		m.logger.Error("node metadata exceeds gossip limit", "size", len(b), "limit", limit)
		return nil
	}
	return b
}
func (m *membership) NotifyMsg([]byte)                {}
func (m *membership) GetBroadcasts(int, int) [][]byte { return nil }
func (m *membership) LocalState(bool) []byte          { return nil }
func (m *membership) MergeRemoteState([]byte, bool)   {}
