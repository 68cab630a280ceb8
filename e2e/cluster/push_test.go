package cluster

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/berth-registry/berth/e2e/harness"
)

const pushPolicyYAML = `apiVersion: berth.dev/v1
kind: Registry
metadata: {name: dr}
spec:
  type: distribution
  url: http://%s
  insecure: true
---
apiVersion: berth.dev/v1
kind: ReplicationPolicy
metadata: {name: to-dr}
spec:
  mode: push
  registry: dr
  repositories: ["apps/**"]
  trigger: manual
  prefix: {add: "dr/"}
  bandwidth: %d
`

// pushJobState is the push policy's part of replication status.
type pushJobState struct {
	Job          string `json:"job"`
	JobState     string `json:"jobState"`
	JobArtifacts int    `json:"jobArtifacts"`
	LastError    string `json:"lastError"`
}

func (c *cluster) pushJob(via string) (pushJobState, error) {
	ctx, cancel := c.ctx(5 * time.Second)
	defer cancel()
	code, _, body, err := c.httpStatus(ctx, http.MethodGet, c.url(via, "/admin/v1/replication/status?name=to-dr"),
		map[string]string{"Authorization": "Bearer " + adminToken}, nil)
	if err != nil {
		return pushJobState{}, err
	}
	if code != http.StatusOK {
		return pushJobState{}, fmt.Errorf("replication status: %d %s", code, body)
	}
	var ans struct{ Policies []pushJobState }
	if err := json.Unmarshal(body, &ans); err != nil || len(ans.Policies) != 1 {
		return pushJobState{}, fmt.Errorf("replication status %s: %v", body, err)
	}
	return ans.Policies[0], nil
}

// A push job of 50 artifacts (a multi-arch index and a signature among
// them) from a three-node cluster to a real CNCF Distribution, started
// with clusterctl on a follower, throttled by the policy's bandwidth so
// that the leader can be killed with SIGKILL in its middle. The new leader
// resumes the job: no artifact reported before the kill is asked about
// again at the destination (Distribution's access log), apart from the
// one in flight, and the destination ends up equal to the source.
func TestPushJobSurvivesLeaderKill(t *testing.T) {
	c := newCluster(t, 3)
	dist := harness.StartDistribution(t, c.dir)
	ctx, cancel := c.ctx(8 * time.Minute)
	defer cancel()
	const layer = 16 << 10
	f := harness.NewPushFixture("apps", 50, layer)
	if err := f.Push(ctx, c.nodes[0].api); err != nil {
		t.Fatal(err)
	}
	// About 16 KiB per image at 64 KiB/s: the job takes some 15 s.
	c.apply(t, c.nodes[0].api, fmt.Sprintf(pushPolicyYAML, dist.Addr, 64<<10))

	l1 := c.leader()
	var follower *node
	for _, nd := range c.nodes {
		if nd != l1 {
			follower = nd
			break
		}
	}
	var out string
	harness.WaitFor(t, "replication run through a follower", 30*time.Second, func() error {
		var err error
		out, err = harness.RunErr(c.ctlEnv(), harness.Tool(t, "clusterctl"), "--server", c.url(follower.api, ""), "replication", "run", "to-dr")
		return err
	})
	if !strings.Contains(out, "started job manual-") {
		t.Fatalf("replication run printed %q", out)
	}
	var st pushJobState
	harness.WaitFor(t, "a fifth of the job copied", 2*time.Minute, func() error {
		var err error
		if st, err = c.pushJob(l1.api); err != nil {
			return err
		}
		if st.JobArtifacts < 10 {
			return fmt.Errorf("job %s: %d artifacts copied", st.Job, st.JobArtifacts)
		}
		return nil
	})
	if st.JobState != "running" || st.JobArtifacts >= 45 {
		t.Fatalf("job %+v: want it running and far from done to kill the leader in its middle", st)
	}
	mark := dist.LogLen()
	l1.p.Kill()
	t.Logf("killed leader %s with job %s at %d of 50 artifacts", l1.id, st.Job, st.JobArtifacts)

	l2 := c.newLeader(l1)
	waitLog(t, l2, "resuming the push job a previous leader left open", "job="+st.Job)
	harness.WaitFor(t, "the job done on the new leader", 3*time.Minute, func() error {
		now, err := c.pushJob(l2.api)
		if err != nil {
			return err
		}
		if now.Job != st.Job || now.JobState != "done" {
			return fmt.Errorf("job %s %s, %d artifacts, last error %q", now.Job, now.JobState, now.JobArtifacts, now.LastError)
		}
		if now.JobArtifacts != 50 || now.LastError != "" {
			return fmt.Errorf("job done with %d artifacts reported, last error %q; want 50 and none", now.JobArtifacts, now.LastError)
		}
		return nil
	})

	// Artifacts whose manifest the first leader put, and artifacts the
	// second one touched at all (HEAD, GET, PUT of any of their
	// manifests): only the one in flight at the kill may be in both.
	arts := f.Artifacts(func(r string) string { return "dr/" + r })
	artifactOf := func(path string) (string, bool) {
		a, ok := arts[strings.TrimPrefix(path, "/v2/")]
		return a, ok
	}
	before, after := map[string]bool{}, map[string]bool{}
	for _, r := range dist.Requests(0, mark) {
		if a, ok := artifactOf(r.Path); ok && r.Method == http.MethodPut {
			before[a] = true
		}
	}
	for _, r := range dist.Requests(mark, -1) {
		if a, ok := artifactOf(r.Path); ok {
			after[a] = true
		}
	}
	// And the plain count: manifest PUTs per path over the whole job.
	puts := map[string]int{}
	for _, r := range dist.Requests(0, -1) {
		if _, ok := artifactOf(r.Path); ok && r.Method == http.MethodPut {
			puts[r.Path]++
		}
	}
	twice := map[string][]string{} // artifact -> its paths put twice
	for path, n := range puts {
		if n > 1 {
			a, _ := artifactOf(path)
			twice[a] = append(twice[a], fmt.Sprintf("%s (%d)", path, n))
		}
	}
	if len(twice) > 1 { // the artifact in flight may be put again
		t.Errorf("manifests of %d artifacts put more than once: %v", len(twice), twice)
	}
	var again []string
	for a := range before {
		if after[a] {
			again = append(again, a)
		}
	}
	t.Logf("%d artifacts put before the kill, %d touched after it; in both: %v", len(before), len(after), again)
	if len(before) < 10 || len(before) >= 50 {
		t.Errorf("%d artifacts were put before the kill; want the kill in the job's middle", len(before))
	}
	if len(again) > 1 {
		t.Errorf("the new leader went back to %d artifacts reported before the kill (one in flight allowed): %v", len(again), again)
	}
	if len(before)+len(after)-len(again) != 50 {
		t.Errorf("%d artifacts before and %d after the kill, %d in both: want 50 in all", len(before), len(after), len(again))
	}
	for _, err := range f.Check(ctx, dist.Addr, func(r string) string { return "dr/" + r }) {
		t.Error(err)
	}
	t.Log(c.ctl(t, l2.api, "replication", "status"))
}
