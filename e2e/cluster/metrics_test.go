package cluster

import (
	"bufio"
	"context"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/berth-registry/berth/e2e/harness"
)

// scrape reads a node's /metrics (behind the admin token on the API
// listener) into series -> value, keyed as exposed (name{labels}).
func (c *cluster) scrape(t *testing.T, nd *node) map[string]float64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	code, _, body, err := c.httpStatus(ctx, "GET", c.url(nd.api, "/metrics"), map[string]string{"Authorization": "Bearer " + adminToken}, nil)
	if err != nil || code != 200 {
		t.Fatalf("GET %s/metrics: %d %v", nd.id, code, err)
	}
	out := map[string]float64{}
	sc := bufio.NewScanner(strings.NewReader(string(body)))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			t.Fatalf("%s: bad sample line %q", nd.id, line)
		}
		out[line[:i]] = v
	}
	return out
}

func (c *cluster) scrapeAll(t *testing.T) map[string]map[string]float64 {
	t.Helper()
	out := map[string]map[string]float64{}
	for _, nd := range c.nodes {
		out[nd.id] = c.scrape(t, nd)
	}
	return out
}

// TestMetricsCluster scrapes every node of a three-node cluster around
// pushes and pulls through a follower and a leadership transfer: what a single
// node cannot show. The Raft indexes move on every node; the follower
// that took the pushes forwarded proposals, and both it and the leader
// ran read-index rounds for pulls; only followers report a last contact, and
// a recent one; the transfer raises the term and counts a leader change
// on every node.
func TestMetricsCluster(t *testing.T) {
	c := &cluster{t: t, dir: t.TempDir()}
	c.minio = startMinIO(t, c.dir)
	c.startNodes("node", 3)
	leader := c.leader()
	var follower *node
	for _, nd := range c.nodes {
		if nd != leader {
			follower = nd
			break
		}
	}

	before := c.scrapeAll(t)
	ctx, cancel := c.ctx(time.Minute)
	defer cancel()
	for i := range 3 {
		im := harness.NewImage(fmt.Sprintf("metrics/app%d", i), "v1")
		if err := im.Push(ctx, follower.api); err != nil {
			t.Fatalf("push through %s: %v", follower.id, err)
		}
		// A pull reads at the read index: a follower asks the leader, the
		// leader confirms its term with a quorum.
		for _, nd := range []*node{follower, leader} {
			if err := im.Verify(ctx, nd.api); err != nil {
				t.Fatalf("pull through %s: %v", nd.id, err)
			}
		}
	}
	// Followers apply what the leader committed a moment later.
	var after map[string]map[string]float64
	harness.WaitFor(t, "every node applied the pushes", 10*time.Second, func() error {
		after = c.scrapeAll(t)
		want := after[leader.id]["berth_raft_commit_index"]
		for id, m := range after {
			if m["berth_raft_applied_index"] < want {
				return fmt.Errorf("%s applied %v of %v", id, m["berth_raft_applied_index"], want)
			}
		}
		return nil
	})

	grew := func(when string, b, a map[string]map[string]float64, id string, series ...string) {
		t.Helper()
		for _, s := range series {
			if a[id][s] <= b[id][s] {
				t.Errorf("%s: %s on %s did not grow: %v, then %v", when, s, id, b[id][s], a[id][s])
			}
		}
	}
	for _, nd := range c.nodes {
		grew("pushes", before, after, nd.id, "berth_raft_commit_index", "berth_raft_applied_index", "berth_raft_last_index")
		if after[nd.id]["berth_raft_term"] != after[leader.id]["berth_raft_term"] {
			t.Errorf("%s is in term %v, the leader in %v", nd.id, after[nd.id]["berth_raft_term"], after[leader.id]["berth_raft_term"])
		}
	}
	grew("pushes", before, after, follower.id,
		`berth_propose_duration_seconds_count{result="ok"}`, `berth_propose_duration_seconds_sum{result="ok"}`,
		`berth_read_index_rounds_total{result="ok",role="follower"}`, `berth_read_index_round_seconds_count{role="follower"}`,
		`berth_read_index_batch_size_count{role="follower"}`)
	grew("pushes", before, after, leader.id, `berth_read_index_rounds_total{result="ok",role="leader"}`)
	checkRoles(t, after, leader.id)

	// Hand leadership to the follower: a new term, a leader change
	// counted on every node, and the roles' gauges swap.
	if out := c.ctl(t, leader.api, "transfer-leader", follower.id); !strings.Contains(out, "leader is now "+follower.id) {
		t.Fatalf("transfer-leader: %s", out)
	}
	var moved map[string]map[string]float64
	harness.WaitFor(t, "the transfer in every node's metrics", 20*time.Second, func() error {
		moved = c.scrapeAll(t)
		for id, m := range moved {
			// Losing the old leader counts as a change too, before the
			// node hears of the new term.
			if m["berth_raft_leader_changes_total"] <= after[id]["berth_raft_leader_changes_total"] {
				return fmt.Errorf("%s counted no leader change", id)
			}
			if m["berth_raft_term"] <= after[id]["berth_raft_term"] {
				return fmt.Errorf("%s is still in term %v", id, m["berth_raft_term"])
			}
			if (id == follower.id) != (m["berth_raft_leader"] == 1) {
				return fmt.Errorf("%s: berth_raft_leader %v", id, m["berth_raft_leader"])
			}
			if _, ok := m["berth_raft_last_contact_seconds"]; id != follower.id && !ok {
				return fmt.Errorf("%s: no last contact yet", id)
			}
		}
		return nil
	})
	checkRoles(t, moved, follower.id)
}

// checkRoles: one leader, which reports no last contact; every follower
// heard from it within the last few heartbeats; no FSM halted.
func checkRoles(t *testing.T, scrapes map[string]map[string]float64, leader string) {
	t.Helper()
	for id, m := range scrapes {
		contact, ok := m["berth_raft_last_contact_seconds"]
		switch {
		case m["berth_fsm_halted"] != 0:
			t.Errorf("%s: berth_fsm_halted %v", id, m["berth_fsm_halted"])
		case id == leader && (m["berth_raft_leader"] != 1 || ok):
			t.Errorf("leader %s: berth_raft_leader %v, last contact %v (present %v); want 1 and none", id, m["berth_raft_leader"], contact, ok)
		case id != leader && (m["berth_raft_leader"] != 0 || !ok || contact < 0 || contact > 5):
			t.Errorf("follower %s: berth_raft_leader %v, last contact %v s (present %v); want 0 and a recent one", id, m["berth_raft_leader"], contact, ok)
		}
	}
}
