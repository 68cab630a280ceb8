package node

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/berth-registry/berth/auth"
	"github.com/berth-registry/berth/events"
	"github.com/berth-registry/berth/fsm"
	"github.com/berth-registry/berth/node/console"
)

// webConsole builds the read-only web console at /ui/ (node/console) over
// this node's read view, blob store, cluster status and event stream,
// behind the OCI API's authentication when it is on.
func (n *Node) webConsole() http.Handler {
	cfg := console.Config{
		Views:   consoleViews{n},
		Blobs:   n.blobs,
		Cluster: n.consoleCluster,
		Version: n.version,
		Node:    n.cfg.Node.ID,
		Logger:  n.logger.With("part", "console"),
	}
	if n.events != nil {
		cfg.Events = n.consoleEvents
	}
	if n.access != nil {
		cfg.Authenticate = func(r *http.Request, v *fsm.View) (auth.Identity, error) {
			return n.access.Identify(r, v)
		}
	}
	c, err := console.New(cfg)
	if err != nil {
		// The templates are embedded and tested: this is a build bug.
		panic(fmt.Sprintf("web console: %v", err))
	}
	return c
}

// consoleViews gives the console reads at the read index and, for the
// cluster page when there is no leader, this node's own state.
type consoleViews struct{ n *Node }

func (c consoleViews) ReadView(ctx context.Context) (*fsm.View, error) { return c.n.ReadView(ctx) }
func (c consoleViews) View() *fsm.View                                 { return c.n.fsm.View() }

// consoleCluster is ClusterStatus, as the console shows it.
func (n *Node) consoleCluster(ctx context.Context) console.ClusterInfo {
	leader, nodes := n.ClusterStatus(ctx)
	out := console.ClusterInfo{Leader: leader}
	for _, s := range nodes {
		ni := console.NodeInfo{
			ID: s.ID, APIAddr: s.APIAddr, RaftAddr: s.RaftAddr, Region: s.Region, Version: s.Version,
			State: s.State, Term: s.Term, CommitIndex: s.CommitIndex, AppliedIndex: s.AppliedIndex, LastIndex: s.LastIndex,
			Leader: s.Leader, Voter: s.Voter, Gossip: s.Gossip, Error: s.Error, Halted: s.Halted,
		}
		if s.Events != nil {
			ni.EventsState, ni.EventsLag = s.Events.State, s.Events.Lag
		}
		out.Nodes = append(out.Nodes, ni)
	}
	return out
}

// consoleEvents reads one page of the event stream backwards from before
// (exclusive; 0 for the newest), as GET /admin/v1/events reads it
// forwards. Sequences removed by the stream's limits are skipped; the
// walk looks at no more than a few pages' worth of sequences.
func (n *Node) consoleEvents(ctx context.Context, before uint64, limit int) (console.EventPage, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	stream, err := n.events.broker.JetStream().Stream(ctx, n.cfg.Events.Stream)
	if err != nil {
		return console.EventPage{}, fmt.Errorf("event stream %s: %w", n.cfg.Events.Stream, err)
	}
	info, err := stream.Info(ctx)
	if err != nil {
		return console.EventPage{}, fmt.Errorf("event stream %s: %w", n.cfg.Events.Stream, err)
	}
	first, seq := info.State.FirstSeq, info.State.LastSeq
	if before > 0 && before-1 < seq {
		seq = before - 1
	}
	var page console.EventPage
	for looked := 0; seq >= first && seq > 0 && len(page.Events) < limit && looked < 2*limit; seq-- {
		looked++
		msg, err := stream.GetMsg(ctx, seq)
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			continue
		}
		if err != nil {
			return console.EventPage{}, fmt.Errorf("event stream %s at %d: %w", n.cfg.Events.Stream, seq, err)
		}
		var ce events.CloudEvent
		if json.Unmarshal(msg.Data, &ce) != nil {
			continue
		}
		page.Events = append(page.Events, console.Event{Seq: seq, CloudEvent: ce})
	}
	if seq >= first && seq > 0 {
		page.Older = seq + 1
	}
	return page, nil
}
