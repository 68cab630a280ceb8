package cluster

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/berth-registry/berth/e2e/harness"
)

// TestGCFromAnyNode: `clusterctl gc` works whichever node it reaches. A
// dry run through a follower lists, at an index, the deleted image's
// blobs; `gc run --wait` through the load balancer deletes exactly those
// from the bucket (every node then answers 404 for them) while the tagged
// image pulls whole; `gc status` on every node shows the run as the
// leader recorded it.
func TestGCFromAnyNode(t *testing.T) {
	c := &cluster{t: t, dir: t.TempDir()}
	c.minio = startMinIO(t, c.dir)
	c.nodeEnv = func(*node) []string { return []string{"BERTH_GC_UPLOADMAXAGE=1m"} }
	c.startNodes("node", 3)
	c.startHAProxy()
	leader := c.leader()
	var follower *node
	for _, nd := range c.nodes {
		if nd != leader {
			follower = nd
			break
		}
	}
	crane := harness.Tool(t, "crane")
	home := t.TempDir()
	env := c.clientEnv(home)
	cr := func(args ...string) string {
		return strings.TrimSpace(harness.Run(t, env, crane, args...))
	}
	write := func(name, content string) string {
		p := filepath.Join(home, name)
		if err := os.WriteFile(p, harness.TarWithFile(name+".txt", []byte(content)), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	cr("append", "-f", write("kept", "kept\n"), "-t", c.lb+"/gc/app:kept")
	cr("append", "-f", write("gone", "garbage\n"), "-t", c.lb+"/gc/app:gone")
	goneDigest := cr("digest", c.lb+"/gc/app:gone")
	cr("delete", c.lb+"/gc/app@"+goneDigest)
	pushed := time.Now()

	if out := c.ctl(t, follower.api, "gc", "run", "--dry-run"); !strings.Contains(out, "would delete these 0 blobs") {
		t.Errorf("within gc.uploadmaxage nothing is garbage; the dry run through follower %s says:\n%s", follower.id, out)
	}
	time.Sleep(time.Until(pushed.Add(61 * time.Second)))
	dry := c.ctl(t, follower.api, "gc", "run", "--dry-run")
	if !regexp.MustCompile(`^dry run at index \d+: `).MatchString(dry) {
		t.Errorf("the dry run does not say at which index:\n%s", dry)
	}
	var listed []string
	for _, l := range strings.Split(dry, "\n") {
		if d, ok := strings.CutPrefix(l, "blob      "); ok {
			listed = append(listed, strings.TrimSpace(d))
		}
	}
	if len(listed) != 3 {
		t.Fatalf("the dry run through follower %s lists %d blobs, want the deleted image's manifest, config and layer:\n%s", follower.id, len(listed), dry)
	}

	run := c.ctl(t, c.lb, "gc", "run", "--wait")
	m := regexp.MustCompile(`gc run (\S+) done: 3 blobs deleted`).FindStringSubmatch(run)
	if m == nil {
		t.Fatalf("gc run --wait through the load balancer: %s", run)
	}
	ctx, cancel := c.ctx(time.Minute)
	defer cancel()
	for _, nd := range c.nodes {
		for _, d := range listed {
			code, _, _, err := harness.HTTPStatus(ctx, "GET", harness.URL(ctx, nd.api, "/v2/gc/app/blobs/"+d), nil, nil)
			if err != nil || code != 404 {
				t.Errorf("%s serves the collected blob %s: %d %v", nd.id, d, code, err)
			}
		}
		if got := cr("digest", nd.api+"/gc/app:kept"); got == "" {
			t.Errorf("%s lost the kept image", nd.id)
		}
		harness.Run(t, env, crane, "pull", nd.api+"/gc/app:kept", filepath.Join(home, nd.id+".tar"))
		st := c.ctl(t, nd.api, "gc", "status")
		if !strings.Contains(st, m[1]) || !strings.Contains(st, "swept") || strings.Contains(st, "could not be asked") {
			t.Errorf("gc status on %s does not show run %s from the leader:\n%s", nd.id, m[1], st)
		}
	}
}
