package main

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
)

func TestUnhealthy(t *testing.T) {
	ok := func(id string) nodeStatus {
		return nodeStatus{ID: id, Leader: "n1", Voter: true, Gossip: "alive"}
	}
	with := func(n nodeStatus, f func(*nodeStatus)) nodeStatus { f(&n); return n }
	cases := []struct {
		name string
		st   clusterStatus
		want string // "" for healthy, else a part of the reason
	}{
		{"healthy", clusterStatus{Leader: "n1", Nodes: []nodeStatus{ok("n1"), ok("n2"), ok("n3")}}, ""},
		{"no leader", clusterStatus{Nodes: []nodeStatus{ok("n1")}}, "no leader yet"},
		{"unreachable", clusterStatus{Leader: "n1", Nodes: []nodeStatus{ok("n1"), with(ok("n2"), func(n *nodeStatus) { n.Error = "refused" })}}, "n2: unreachable"},
		{"not a voter", clusterStatus{Leader: "n1", Nodes: []nodeStatus{ok("n1"), with(ok("n3"), func(n *nodeStatus) { n.Voter = false })}}, "n3: not a voter yet"},
		{"halted", clusterStatus{Leader: "n1", Nodes: []nodeStatus{with(ok("n1"), func(n *nodeStatus) { n.Halted = "gen 9" })}}, "n1: halted"},
		{"suspect", clusterStatus{Leader: "n1", Nodes: []nodeStatus{ok("n1"), with(ok("n2"), func(n *nodeStatus) { n.Gossip = "suspect" })}}, "n2: gossip suspect"},
		{"disagrees on leader", clusterStatus{Leader: "n1", Nodes: []nodeStatus{ok("n1"), with(ok("n2"), func(n *nodeStatus) { n.Leader = "" })}}, "n2: leader -"},
		{"a node that left does not count", clusterStatus{Leader: "n1", Nodes: []nodeStatus{ok("n1"), {ID: "n4", Gossip: "left", Error: "refused"}}}, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := unhealthy(tc.st)
			if tc.want == "" && got != "" || tc.want != "" && !strings.Contains(got, tc.want) {
				t.Errorf("unhealthy = %q, want %q", got, tc.want)
			}
		})
	}
}

// statusSequence serves the given statuses in turn (the last one for
// ever), with a 503 for the first answer as a node still starting gives.
func statusSequence(t *testing.T, seq ...clusterStatus) string {
	var mu sync.Mutex
	calls := 0
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		calls++
		if calls == 1 {
			http.Error(w, `{"error":"starting"}`, http.StatusServiceUnavailable)
			return
		}
		i := min(calls-2, len(seq)-1)
		json.NewEncoder(w).Encode(seq[i])
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}

func TestStatusWait(t *testing.T) {
	healthy := clusterStatus{Leader: "n1", Nodes: []nodeStatus{
		{ID: "n1", Leader: "n1", Voter: true, Gossip: "alive", State: "Leader"},
		{ID: "n2", Leader: "n1", Voter: true, Gossip: "alive", State: "Follower"},
	}}
	joining := clusterStatus{Leader: "n1", Nodes: []nodeStatus{healthy.Nodes[0], {ID: "n2", Leader: "n1", Gossip: "alive"}}}
	url := statusSequence(t, clusterStatus{}, joining, healthy)
	c := &cli{t: t, env: map[string]string{"BERTH_SERVER": url, "BERTH_TOKEN": testToken}}
	out := c.ok("", "status", "--wait=10s")
	for _, want := range []string{"waiting: ", "waiting: no leader yet", "waiting: leader n1; 1 of 2 nodes not ready (n2: not a voter yet)", "cluster healthy after", "Leader: n1"} {
		if !strings.Contains(out, want) {
			t.Errorf("output does not show %q:\n%s", want, out)
		}
	}
	// Each reason is printed once, not at every poll.
	if strings.Count(out, "no leader yet") != 1 {
		t.Errorf("progress repeats itself:\n%s", out)
	}
}

func TestStatusWaitTimesOut(t *testing.T) {
	url := statusSequence(t, clusterStatus{Leader: "n1", Nodes: []nodeStatus{{ID: "n1", Leader: "n1", Voter: true}, {ID: "n2", Error: "connection refused"}}})
	c := &cli{t: t, env: map[string]string{"BERTH_SERVER": url, "BERTH_TOKEN": testToken}}
	c.fails("", "cluster not healthy after 1.5s: leader n1; 1 of 2 nodes not ready (n2: unreachable)", "status", "--wait=1.5s")
}

// TestStatusWaitDefault: --wait alone waits 60 s; without it, one answer.
func TestStatusWaitDefault(t *testing.T) {
	cmd := newRoot(env(nil))
	status, _, err := cmd.Find([]string{"status"})
	if err != nil {
		t.Fatal(err)
	}
	if f := status.Flags().Lookup("wait"); f == nil || f.NoOptDefVal != "60s" {
		t.Fatalf("--wait flag %+v, want NoOptDefVal 60s", f)
	}
	url := statusSequence(t, clusterStatus{})
	c := &cli{t: t, env: map[string]string{"BERTH_SERVER": url, "BERTH_TOKEN": testToken}}
	c.fails("", "starting", "status")
}
