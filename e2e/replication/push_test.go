package replication

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/berth-registry/berth/e2e/harness"
)

// pushState is one policy of `clusterctl replication status -o json`.
type pushState struct {
	Policy       string `json:"policy"`
	Mode         string `json:"mode"`
	Running      bool   `json:"running"`
	Job          string `json:"job"`
	JobState     string `json:"jobState"`
	JobArtifacts int    `json:"jobArtifacts"`
	Artifacts    int    `json:"artifacts"`
	Cursor       uint64 `json:"cursor"`
	LastError    string `json:"lastError"`
}

func (n *node) pushState(t *testing.T, policy string) pushState {
	t.Helper()
	var ans struct {
		Policies []pushState `json:"policies"`
	}
	out := n.ctl(t, "replication", "status", policy, "-o", "json")
	if err := json.Unmarshal([]byte(out), &ans); err != nil || len(ans.Policies) != 1 {
		t.Fatalf("replication status %s: %v\n%s", policy, err, out)
	}
	return ans.Policies[0]
}

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
metadata: {name: %s}
spec:
  mode: push
  registry: dr
  repositories: ["apps/**"]
  tags: {exclude: ["*-dev"]}
  trigger: %s
  prefix: {add: "dr/"}
  deletion: true
`

func toDR(repo string) string { return "dr/" + repo }

// checkDestination fails t with every way the destination differs from
// the fixture (harness.PushFixture.Check).
func checkDestination(t *testing.T, ctx context.Context, dest string, f harness.PushFixture, gone ...string) {
	t.Helper()
	errs := f.Check(ctx, dest, toDR, gone...)
	for _, err := range errs {
		t.Error(err)
	}
	if len(errs) > 0 {
		t.FailNow()
	}
}

// 50 artifacts (49 images, a multi-arch index, and a cosign-style
// signature of the first image) pushed to a single Berth node, then a
// manual job copies them to a real CNCF Distribution: every tag has the
// source's digest, every byte pulls back, the signature is a referrer of
// its subject there, filtered tags and repositories stay out. A second
// job after a tag delete removes the tag there (deletion: true) and copies
// nothing again.
func TestPushJobToDistribution(t *testing.T) {
	dist := harness.StartDistribution(t, t.TempDir())
	src := start(t, "berth", fmt.Sprintf("127.0.0.1:%d", harness.FreePort(t)), t.TempDir(), nil)
	ctx, cancel := harness.Ctx(5 * time.Minute)
	defer cancel()
	f := harness.NewPushFixture("apps", 50, 2048)
	if err := f.Push(ctx, src.addr); err != nil {
		t.Fatal(err)
	}
	// Left out by the policy's filters.
	for _, im := range []harness.LayeredImage{
		harness.NewLayeredImage("private/x", "v1", "private", [][]byte{[]byte("p")}, nil, ""),
		harness.NewLayeredImage(f.Repos[1], "v1-dev", "dev", [][]byte{[]byte("d")}, nil, ""),
	} {
		if _, err := im.Push(ctx, src.addr); err != nil {
			t.Fatal(err)
		}
	}

	// Bad input first: a policy naming a Registry that does not exist is
	// accepted, shows why it cannot run, and refuses a run saying so.
	src.applyYAML(t, `apiVersion: berth.dev/v1
kind: ReplicationPolicy
metadata: {name: to-nowhere}
spec: {mode: push, registry: nowhere, trigger: manual}
`)
	if st := src.pushState(t, "to-nowhere"); !strings.Contains(st.LastError, `Registry "nowhere" does not exist`) {
		t.Errorf("status of a policy naming a missing Registry: %+v", st)
	}
	harness.WaitFor(t, "the leader to see the policy", 30*time.Second, func() error {
		out, err := harness.RunErr([]string{"BERTH_SERVER=http://" + src.addr, "BERTH_TOKEN="}, harness.Tool(t, "clusterctl"),
			"--token-file", src.data+"/admin.token", "replication", "run", "to-nowhere")
		if err == nil || !strings.Contains(out, `Registry "nowhere" does not exist`) {
			return fmt.Errorf("replication run of a policy naming a missing Registry: %v %s", err, out)
		}
		return nil
	})
	src.ctl(t, "delete", "replicationpolicy", "to-nowhere")

	src.applyYAML(t, fmt.Sprintf(pushPolicyYAML, dist.Addr, "to-dr", "manual"))
	var out string
	harness.WaitFor(t, "the policy to run on the leader", 30*time.Second, func() error {
		var err error
		out, err = harness.RunErr([]string{"BERTH_SERVER=http://" + src.addr, "BERTH_TOKEN="}, harness.Tool(t, "clusterctl"),
			"--token-file", src.data+"/admin.token", "replication", "run", "to-dr")
		return err
	})
	if !strings.Contains(out, "started job manual-") {
		t.Fatalf("replication run printed %q", out)
	}
	job := waitJobDone(t, src, "to-dr", "")
	if job.JobArtifacts != 50 || job.LastError != "" {
		t.Fatalf("job %+v, want 50 artifacts and no error", job)
	}
	checkDestination(t, ctx, dist.Addr, f)
	reqs := dist.Requests(0, -1)
	for _, r := range reqs {
		if strings.Contains(r.Path, "private") || strings.Contains(r.Path, "v1-dev") {
			t.Errorf("the destination saw %s %s, which the policy filters out", r.Method, r.Path)
		}
	}
	t.Log(src.ctl(t, "replication", "status"))

	// A deleted tag goes at the destination with the next job; nothing
	// already there is uploaded again.
	gone := f.Images[3]
	code, _, body, err := harness.HTTPStatus(ctx, http.MethodDelete, "http://"+src.addr+"/v2/"+gone.Repo+"/manifests/"+gone.Tag, nil, nil)
	if err != nil || code != http.StatusAccepted {
		t.Fatalf("delete tag %s:%s: %d %v %s", gone.Repo, gone.Tag, code, err, body)
	}
	mark := dist.LogLen()
	harness.Run(t, []string{"BERTH_SERVER=http://" + src.addr, "BERTH_TOKEN="}, harness.Tool(t, "clusterctl"),
		"--token-file", src.data+"/admin.token", "replication", "run", "to-dr")
	waitJobDone(t, src, "to-dr", job.Job)
	checkDestination(t, ctx, dist.Addr, f, toDR(gone.Repo)+":"+gone.Tag)
	for _, r := range dist.Requests(mark, -1) {
		if r.Method == http.MethodPut || r.Method == http.MethodPost || r.Method == http.MethodPatch {
			t.Errorf("the second job wrote %s %s, which the destination had", r.Method, r.Path)
		}
	}
}

// waitJobDone waits until the policy's newest job, other than prev, is
// done, and returns the policy's status.
func waitJobDone(t *testing.T, n *node, policy, prev string) pushState {
	t.Helper()
	var st pushState
	harness.WaitFor(t, "push job of "+policy+" done", 3*time.Minute, func() error {
		st = n.pushState(t, policy)
		if st.Job == "" || st.Job == prev || st.JobState != "done" {
			return fmt.Errorf("job %q %s, %d artifacts, last error %q", st.Job, st.JobState, st.JobArtifacts, st.LastError)
		}
		return nil
	})
	return st
}

// Trigger event: what is pushed to Berth after the policy exists appears
// at the destination (a multi-arch index and a signature among it), and
// tag and manifest deletes propagate.
func TestPushOnEvent(t *testing.T) {
	dist := harness.StartDistribution(t, t.TempDir())
	src := start(t, "berth", fmt.Sprintf("127.0.0.1:%d", harness.FreePort(t)), t.TempDir(), nil)
	ctx, cancel := harness.Ctx(3 * time.Minute)
	defer cancel()
	before := harness.NewLayeredImage("apps/web", "v1", "before", [][]byte{[]byte("layer-before")}, nil, "")
	if _, err := before.Push(ctx, src.addr); err != nil {
		t.Fatal(err)
	}
	src.applyYAML(t, fmt.Sprintf(pushPolicyYAML, dist.Addr, "follow-dr", "event"))
	head := func(repo, ref string) int {
		code, _, _, err := harness.HTTPStatus(ctx, http.MethodHead, "http://"+dist.Addr+"/v2/"+repo+"/manifests/"+ref,
			map[string]string{"Accept": harness.MediaManifest}, nil)
		if err != nil {
			t.Fatal(err)
		}
		return code
	}
	waitCode := func(what, repo, ref string, want int) {
		harness.WaitFor(t, what, time.Minute, func() error {
			if got := head(repo, ref); got != want {
				return fmt.Errorf("HEAD %s:%s at the destination: %d, want %d", repo, ref, got, want)
			}
			return nil
		})
	}
	// The first sync copies what was there before.
	waitCode("the first sync", "dr/apps/web", "v1", http.StatusOK)

	im := harness.NewLayeredImage("apps/web", "v2", "after", [][]byte{[]byte("layer-after")}, nil, "")
	if _, err := im.Push(ctx, src.addr); err != nil {
		t.Fatal(err)
	}
	waitCode("the pushed image at the destination", "dr/apps/web", "v2", http.StatusOK)
	dst := im
	dst.Repo = "dr/apps/web"
	if err := dst.Verify(ctx, dist.Addr); err != nil {
		t.Fatal(err)
	}
	// An index comes with its children (pushed untagged before it), a
	// signature (untagged, with a subject) follows its subject.
	f := harness.NewPushFixture("apps", 6, 512)
	if err := f.Push(ctx, src.addr); err != nil {
		t.Fatal(err)
	}
	harness.WaitFor(t, "the pushed fixture at the destination", time.Minute, func() error {
		if errs := f.Check(ctx, dist.Addr, toDR); len(errs) > 0 {
			return fmt.Errorf("%d differences, the first: %v", len(errs), errs[0])
		}
		return nil
	})

	code, _, body, err := harness.HTTPStatus(ctx, http.MethodDelete, "http://"+src.addr+"/v2/apps/web/manifests/v2", nil, nil)
	if err != nil || code != http.StatusAccepted {
		t.Fatalf("delete tag: %d %v %s", code, err, body)
	}
	waitCode("the tag delete at the destination", "dr/apps/web", "v2", http.StatusNotFound)
	code, _, body, err = harness.HTTPStatus(ctx, http.MethodDelete, "http://"+src.addr+"/v2/apps/web/manifests/"+before.ManifestDigest, nil, nil)
	if err != nil || code != http.StatusAccepted {
		t.Fatalf("delete manifest: %d %v %s", code, err, body)
	}
	waitCode("the manifest delete at the destination", "dr/apps/web", before.ManifestDigest, http.StatusNotFound)
	st := src.pushState(t, "follow-dr")
	if st.Cursor == 0 || st.LastError != "" || !st.Running {
		t.Errorf("status %+v, want running with a cursor and no error", st)
	}
	t.Log(src.ctl(t, "replication", "status"))
}
