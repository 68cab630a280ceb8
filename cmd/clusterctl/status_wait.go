package main

import (
	"context"
	"fmt"
	"io"
	"strings"
	"time"
)

// waitPoll is how often status --wait asks again.
const waitPoll = 500 * time.Millisecond

// waitHealthy asks for the cluster status until a leader is known and
// every node is healthy (see unhealthy), or until timeout, and returns the
// last status. Each change in what it is waiting for is written to progress,
// so a script's log shows why a start is slow.
func (g *globals) waitHealthy(parent context.Context, timeout time.Duration, progress io.Writer) (clusterStatus, error) {
	ctx, cancel := context.WithTimeout(parent, timeout)
	defer cancel()
	start := time.Now()
	var last string
	for {
		var st clusterStatus
		// A node still starting refuses connections or answers 503: both
		// are reasons to wait, not to fail.
		cctx, ccancel := context.WithTimeout(ctx, 5*time.Second)
		err := g.call(cctx, "GET", "/admin/v1/cluster/status", nil, &st)
		ccancel()
		reason := ""
		if err != nil {
			reason = err.Error()
		} else {
			reason = unhealthy(st)
		}
		if reason == "" {
			fmt.Fprintf(progress, "cluster healthy after %s: leader %s, %d nodes\n", time.Since(start).Round(100*time.Millisecond), st.Leader, len(st.Nodes))
			return st, nil
		}
		if reason != last {
			fmt.Fprintf(progress, "waiting: %s\n", reason)
			last = reason
		}
		select {
		case <-ctx.Done():
			if err := parent.Err(); err != nil {
				return st, err // Ctrl-C
			}
			return st, fmt.Errorf("cluster not healthy after %s: %s", timeout, reason)
		case <-time.After(waitPoll):
		}
	}
}

// unhealthy says what keeps st from being a healthy cluster, or "" when
// it is one: a leader is known, and every node answers, is a voter, is not
// halted, is alive in gossip and agrees on the leader. A node that left
// the cluster on purpose does not count.
func unhealthy(st clusterStatus) string {
	if st.Leader == "" {
		return "no leader yet"
	}
	if len(st.Nodes) == 0 {
		return "no nodes listed"
	}
	var bad []string
	for _, n := range st.Nodes {
		var why string
		switch {
		case n.Gossip == "left":
			continue
		case n.Error != "":
			why = "unreachable"
		case n.Halted != "":
			why = "halted"
		case !n.Voter:
			why = "not a voter yet"
		case n.Gossip != "" && n.Gossip != "alive":
			why = "gossip " + n.Gossip
		case n.Leader != st.Leader:
			why = "leader " + orDash(n.Leader)
		default:
			continue
		}
		bad = append(bad, n.ID+": "+why)
	}
	if len(bad) > 0 {
		return fmt.Sprintf("leader %s; %d of %d nodes not ready (%s)", st.Leader, len(bad), len(st.Nodes), strings.Join(bad, ", "))
	}
	return ""
}
