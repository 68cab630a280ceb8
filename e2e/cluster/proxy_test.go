package cluster

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/berth-registry/berth/e2e/harness"
)

// A three-node Berth on MinIO caches an htpasswd-protected Distribution
// (credentials by secretRef on every node). A miss on a follower is
// fetched there and committed through the leader; a pull on each node of
// something none has cached yet gets the same digest everywhere; what one
// node cached pulls whole through the others.
func TestProxyOnAnyNode(t *testing.T) {
	const user, password = "puller", "cluster-upstream-secret"
	up := harness.StartDistributionWithAuth(t, t.TempDir(), user, password)
	dir := t.TempDir()
	push := func(repoTag, content string) string { return up.Push(t, dir, repoTag, content) }
	want := map[string]string{}
	for i := range 3 {
		want[fmt.Sprintf("library/app-%d:v1", i)] = push(fmt.Sprintf("library/app-%d:v1", i), fmt.Sprintf("app %d", i))
	}
	shared := push("library/shared:v1", "pulled everywhere at once")

	c := newCluster(t, 3)
	for _, nd := range c.nodes {
		sdir := filepath.Join(nd.dataDir, "secrets", "hub-creds")
		os.MkdirAll(sdir, 0o700)
		os.WriteFile(filepath.Join(sdir, "username"), []byte(user), 0o600)
		os.WriteFile(filepath.Join(sdir, "password"), []byte(password), 0o600)
	}
	harness.RunInput(t, append(c.ctlEnv(), "BERTH_SERVER="+c.url(c.lb, "")), fmt.Sprintf(`apiVersion: berth.dev/v1
kind: Registry
metadata: {name: hub}
spec:
  type: distribution
  url: http://%s
  insecure: true
  credentials: {type: basic, secretRef: {name: hub-creds}}
---
apiVersion: berth.dev/v1
kind: ReplicationPolicy
metadata: {name: hub-cache}
spec: {mode: proxy, registry: hub, repositories: ["library/**"], prefix: {add: hub/}}
`, up.Addr), harness.Tool(t, "clusterctl"), "apply", "-f", "-")
	leader := c.leader()
	var followers []*node
	for _, nd := range c.nodes {
		if nd != leader {
			followers = append(followers, nd)
		}
	}
	digest := func(addr, ref string) (string, error) {
		out, err := harness.RunErr(nil, harness.Tool(t, "crane"), "digest", "--insecure", addr+"/"+ref)
		return strings.TrimSpace(out), err
	}

	// Each image's first pull on a different node: two followers, then
	// the leader.
	for i, nd := range []*node{followers[0], followers[1], leader} {
		ref := fmt.Sprintf("library/app-%d:v1", i)
		if got, err := digest(nd.api, "hub/"+ref); err != nil || got != want[ref] {
			t.Errorf("first pull of %s on %s: %s %v, want %s", ref, nd.id, got, err, want[ref])
		}
		// Cached once, it pulls whole through another node.
		other := c.nodes[(i+1)%len(c.nodes)]
		harness.Run(t, nil, harness.Tool(t, "crane"), "validate", "--insecure", "--remote", other.api+"/hub/"+ref)
	}

	// Every node pulls the same uncached image at once.
	var wg sync.WaitGroup
	got := make([]string, len(c.nodes)*3)
	for i := range got {
		wg.Go(func() {
			d, err := digest(c.nodes[i%len(c.nodes)].api, "hub/library/shared:v1")
			if err != nil {
				d = "error: " + d
			}
			got[i] = d
		})
	}
	wg.Wait()
	for i, d := range got {
		if d != shared {
			t.Errorf("concurrent pull %d on %s: %s, want %s", i, c.nodes[i%len(c.nodes)].id, d, shared)
		}
	}
	m, err := tagListing(t, c.client(), c.url(c.lb, ""))
	if err != nil {
		t.Fatal(err)
	}
	if len(m) != 4 || m["hub/library/shared:v1"] != shared {
		t.Errorf("cached tags: %v", m)
	}
}
