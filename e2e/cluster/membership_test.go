package cluster

import (
	"encoding/json"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/berth-registry/berth/e2e/harness"
)

// ctlStatus is what `clusterctl status -o json` prints.
type ctlStatus struct {
	Leader string `json:"leader"`
	Nodes  []struct {
		ID           string `json:"id"`
		APIAddr      string `json:"apiAddr"`
		RaftAddr     string `json:"raftAddr"`
		State        string `json:"state"`
		Term         uint64 `json:"term"`
		CommitIndex  uint64 `json:"commitIndex"`
		AppliedIndex uint64 `json:"appliedIndex"`
		Voter        bool   `json:"voter"`
		Gossip       string `json:"gossip"`
	} `json:"nodes"`
}

func (c *cluster) ctl(t *testing.T, server string, args ...string) string {
	t.Helper()
	return harness.Run(t, c.ctlEnv(), harness.Tool(t, "clusterctl"),
		append([]string{"--server", c.url(server, "")}, args...)...)
}

func (c *cluster) ctlStatus(t *testing.T, server string) ctlStatus {
	t.Helper()
	var st ctlStatus
	out := c.ctl(t, server, "status", "-o", "json")
	if err := json.Unmarshal([]byte(out), &st); err != nil {
		t.Fatalf("status -o json is not JSON: %v\n%s", err, out)
	}
	return st
}

// voters returns the ids of nodes that report themselves as voters.
func (st ctlStatus) voters() []string {
	var ids []string
	for _, n := range st.Nodes {
		if n.Voter {
			ids = append(ids, n.ID)
		}
	}
	return ids
}

func (c *cluster) testMembership(t *testing.T) {
	st := c.ctlStatus(t, c.lb)
	if st.Leader == "" || len(st.Nodes) != 3 {
		t.Fatalf("status: %+v", st)
	}
	for _, n := range st.Nodes {
		if n.APIAddr == "" || n.RaftAddr == "" || n.Term == 0 || n.CommitIndex == 0 || n.AppliedIndex == 0 || n.Gossip != "alive" {
			t.Errorf("incomplete status for %s: %+v", n.ID, n)
		}
	}
	table := c.ctl(t, c.lb, "status")
	if !strings.Contains(table, "Leader: "+st.Leader) || !strings.Contains(table, "LAG") {
		t.Errorf("status table:\n%s", table)
	}
	if members := c.ctl(t, c.lb, "members"); strings.Count(members, "alive") != 3 {
		t.Errorf("members:\n%s", members)
	}

	// Hand leadership to a chosen follower.
	var target string
	for _, n := range st.Nodes {
		if n.ID != st.Leader {
			target = n.ID
			break
		}
	}
	out := c.ctl(t, c.lb, "transfer-leader", target)
	if !strings.Contains(out, "leader is now "+target) {
		t.Errorf("transfer-leader: %s", out)
	}
	harness.WaitFor(t, "the new leader everywhere", 20*time.Second, func() error {
		if l := c.leader(); l.id != target {
			return fmt.Errorf("leader %s", l.id)
		}
		return nil
	})

	// A fourth node that joins later is added as a voter by the leader.
	n4 := &node{
		id:      "node4",
		api:     fmt.Sprintf("127.0.0.1:%d", harness.FreePort(t)),
		raft:    fmt.Sprintf("127.0.0.1:%d", harness.FreePort(t)),
		gossip:  fmt.Sprintf("127.0.0.1:%d", harness.FreePort(t)),
		dataDir: filepath.Join(c.dir, "node4"),
	}
	n4.env = c.envFor(n4)
	n4.args = []string{"serve", "--node-id", n4.id, "--addr", n4.api, "--data-dir", n4.dataDir,
		"--raft-addr", n4.raft, "--gossip-addr", n4.gossip, "--join", c.nodes[0].gossip}
	c.start(n4)
	c.waitReady(n4)
	harness.WaitFor(t, "node4 as a voter", 30*time.Second, func() error {
		if v := c.ctlStatus(t, c.lb).voters(); len(v) != 4 {
			return fmt.Errorf("voters %v", v)
		}
		return nil
	})
	im := harness.NewImage("members/app", "v1")
	ctx, cancel := c.ctx(time.Minute)
	defer cancel()
	if err := im.Push(ctx, c.lb); err != nil {
		t.Fatal(err)
	}
	if err := im.Verify(ctx, n4.api); err != nil {
		t.Errorf("new node does not serve: %v", err)
	}

	// It leaves gracefully: the process stops and the leader removes it.
	if out := c.ctl(t, n4.api, "leave"); !strings.Contains(out, "node4 left the cluster") {
		t.Errorf("leave: %s", out)
	}
	harness.WaitFor(t, "node4 to exit", 30*time.Second, func() error {
		if !n4.p.Exited() {
			return fmt.Errorf("still running")
		}
		return nil
	})
	harness.WaitFor(t, "node4 out of the configuration", 30*time.Second, func() error {
		if v := c.ctlStatus(t, c.lb).voters(); len(v) != 3 || strings.Contains(strings.Join(v, ","), "node4") {
			return fmt.Errorf("voters %v", v)
		}
		return nil
	})

	// remove drops a dead node; restarted with its data it is added back.
	victim := c.nodes[2]
	if victim.id == c.leader().id {
		victim = c.nodes[1]
	}
	victim.p.Kill()
	if out := c.ctl(t, c.lb, "remove", victim.id); !strings.Contains(out, "removed "+victim.id) {
		t.Errorf("remove: %s", out)
	}
	harness.WaitFor(t, victim.id+" removed", 20*time.Second, func() error {
		for _, n := range c.ctlStatus(t, c.lb).Nodes {
			if n.ID == victim.id && n.Voter {
				return fmt.Errorf("still a voter")
			}
		}
		return nil
	})
	c.start(victim)
	c.waitReady(victim)
	harness.WaitFor(t, victim.id+" back as a voter", 30*time.Second, func() error {
		if v := c.ctlStatus(t, c.lb).voters(); len(v) != 3 {
			return fmt.Errorf("voters %v", v)
		}
		return nil
	})
	if err := im.Verify(ctx, victim.api); err != nil {
		t.Errorf("re-added node: %v", err)
	}
}
