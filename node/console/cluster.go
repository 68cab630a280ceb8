package console

import (
	"net/http"
	"strconv"

	"github.com/berth-registry/berth/events"
)

// ClusterInfo is the cluster as `clusterctl status` reports it.
type ClusterInfo struct {
	Leader string
	Nodes  []NodeInfo
}

// NodeInfo is one node's status; a node that did not answer has State
// "unreachable", its gossip state and Error.
type NodeInfo struct {
	ID, APIAddr, RaftAddr, Region, Version string
	State                                  string
	Term, CommitIndex, AppliedIndex        uint64
	LastIndex                              uint64
	Leader                                 string
	Voter                                  bool
	Gossip                                 string
	Error                                  string
	Halted                                 string
	// EventsState and EventsLag are the event outbox as the node sees
	// it ("" when it did not say).
	EventsState string
	EventsLag   uint64
}

type nodeRow struct {
	NodeInfo
	// Lag is how many entries the node has still to apply of what the
	// leader committed; -1 when unknown.
	Lag      int64
	IsLeader bool
}

type clusterData struct {
	Leader string
	Term   uint64
	Nodes  []nodeRow
}

func (c *Console) cluster(s *session) (string, string, string, any, error) {
	if err := s.requireAdmin(); err != nil {
		return "", "", "", nil, err
	}
	info := c.cfg.Cluster(s.r.Context())
	d := clusterData{Leader: info.Leader}
	var leaderCommit uint64
	known := false
	for _, n := range info.Nodes {
		if n.ID == info.Leader && n.State != "unreachable" {
			leaderCommit, known, d.Term = n.CommitIndex, true, n.Term
		}
	}
	for _, n := range info.Nodes {
		r := nodeRow{NodeInfo: n, Lag: -1, IsLeader: n.ID == info.Leader}
		if known && n.State != "unreachable" {
			r.Lag = max(int64(leaderCommit)-int64(n.AppliedIndex), 0)
		}
		if d.Term == 0 && n.State != "unreachable" {
			d.Term = n.Term
		}
		d.Nodes = append(d.Nodes, r)
	}
	return "cluster.html", "Cluster", "cluster", d, nil
}

// Event is one published event and its stream sequence.
type Event struct {
	Seq uint64
	events.CloudEvent
}

// EventPage is one page of events, newest first. Older is the before
// cursor of the next (older) page; 0 when this page reaches the start.
type EventPage struct {
	Events []Event
	Older  uint64
}

const (
	defaultEvents = 50
	maxEvents     = 500
)

type eventsData struct {
	Off    bool
	Events []Event
	Hidden int
	N      int
	Before uint64
	Older  uint64
}

func (c *Console) events(s *session) (string, string, string, any, error) {
	n, err := limitParam(s.r, defaultEvents, maxEvents)
	if err != nil {
		return "", "", "", nil, err
	}
	var before uint64
	if b := s.r.URL.Query().Get("before"); b != "" {
		if before, err = strconv.ParseUint(b, 10, 64); err != nil || before == 0 {
			return "", "", "", nil, errorf(http.StatusBadRequest, "before %q is not a stream sequence (a number above 0)", b)
		}
	}
	d := eventsData{N: n, Before: before}
	if c.cfg.Events == nil {
		d.Off = true
		return "events.html", "Events", "events", d, nil
	}
	p, err := c.cfg.Events(s.r.Context(), before, n)
	if err != nil {
		return "", "", "", nil, errorf(http.StatusServiceUnavailable, "cannot read the events: %v", err)
	}
	d.Older = p.Older
	for _, e := range p.Events {
		// Someone who is not a cluster admin sees the events of the
		// repositories they may pull, and nothing of the rest.
		if !s.admin() && (e.Data.Repository == "" || !s.canPull(e.Data.Repository)) {
			d.Hidden++
			continue
		}
		d.Events = append(d.Events, e)
	}
	return "events.html", "Events", "events", d, nil
}
