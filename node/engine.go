package node

import (
	"context"
	"fmt"
	"net/url"

	cs "github.com/berth-registry/berth/node/consensus"
)

// openEngine puts the consensus surface over the open Raft instance. In a
// cluster it forwards to the leader over the internal HTTP API and finds
// the leader's address through gossip; a single node never forwards.
func (n *Node) openEngine() (*cs.Engine, error) {
	cfg := cs.Config{
		Raft:         n.raft.raft,
		Logs:         n.raft.logs,
		FSM:          n.fsm,
		ID:           n.cfg.Node.ID,
		ApplyTimeout: n.cfg.Raft.ApplyTimeout,
		Local:        n.applyLocal,
		// Metrics: proposal latency and read-index rounds.
		OnPropose:        n.metrics.ObservePropose,
		OnReadIndexRound: n.metrics.ObserveReadIndexRound,
	}
	if n.members != nil {
		cfg.Peers = httpPeers{n.peers}
		cfg.Directory = gossipDirectory{n.members}
	}
	e, err := cs.New(cfg)
	if err != nil {
		return nil, fmt.Errorf("consensus: %w", err)
	}
	return e, nil
}

// gossipDirectory finds a server's API address in the gossip membership.
type gossipDirectory struct{ m *membership }

func (d gossipDirectory) APIAddr(id string) (string, bool) {
	m, ok := d.m.member(id)
	return m.APIAddr, ok
}

// httpPeers carries forwarded proposals and read-index requests over the
// internal API (handleForwardedApply, handleReadIndex). peerClient.do maps
// the answers onto consensus.Peers' error protocol: 409 is ErrNotSent,
// 503 an *UnavailableError.
type httpPeers struct{ c *peerClient }

func (p httpPeers) Apply(ctx context.Context, apiAddr string, event []byte) (cs.ApplyResult, error) {
	var res cs.ApplyResult
	err := p.c.do(ctx, "POST", apiAddr, "apply", event, &res)
	return res, err
}

func (p httpPeers) ReadIndex(ctx context.Context, apiAddr, from string) (cs.ReadIndexAnswer, error) {
	var res cs.ReadIndexAnswer
	err := p.c.do(ctx, "GET", apiAddr, "readindex?from="+url.QueryEscape(from), nil, &res)
	return res, err
}
