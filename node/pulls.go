package node

import (
	"context"

	"github.com/berth-registry/berth/events/pulls"
	"github.com/berth-registry/berth/node/api"
)

// openPulls makes the pull-event publisher when events.pulls is on. Every
// node publishes the pulls it serves, leader or not: they never go
// through the log (docs/design.md "Pull events").
func (n *Node) openPulls() {
	if n.events == nil || !n.cfg.Events.Pulls {
		return
	}
	n.events.pulls = pulls.New(pulls.Config{
		ClusterID: func() string { return n.fsm.View().ClusterID() },
		NodeID:    n.cfg.Node.ID,
	}, n.events.broker, n.logger)
}

// pullHook is the API's hook: the pull-time batcher (pulltimes.go) and,
// when pull events are on, their publisher.
func (n *Node) pullHook() api.PullHook {
	if n.events == nil || n.events.pulls == nil {
		return n.pullTimes
	}
	return pullHooks{n.pullTimes, n.events.pulls}
}

// runPulls publishes pulls until ctx ends.
func (n *Node) runPulls(ctx context.Context) {
	if n.events != nil && n.events.pulls != nil {
		go n.events.pulls.Run(ctx)
	}
}

// pullStats is what the status shows of pull events; nil when off.
func (n *Node) pullStats() *pulls.Stats {
	if n.events == nil || n.events.pulls == nil {
		return nil
	}
	s := n.events.pulls.Stats()
	return &s
}
