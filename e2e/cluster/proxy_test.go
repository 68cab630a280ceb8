package cluster

import (
	"encoding/base64"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/berth-registry/berth/e2e/harness"
)

// startHtpasswdDistribution starts CNCF Distribution (bin/registry) with
// htpasswd auth and returns its address and the environment that gives
// crane its credentials.
func startHtpasswdDistribution(t *testing.T, user, password string) (string, []string) {
	t.Helper()
	dir := t.TempDir()
	addr := fmt.Sprintf("127.0.0.1:%d", harness.FreePort(t))
	hash, err := bcrypt.GenerateFromPassword([]byte(password), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	htpasswd := filepath.Join(dir, "htpasswd")
	os.WriteFile(htpasswd, []byte(user+":"+string(hash)+"\n"), 0o600)
	cfg := filepath.Join(dir, "config.yml")
	os.WriteFile(cfg, fmt.Appendf(nil, "version: 0.1\nstorage: {filesystem: {rootdirectory: %s}}\nhttp: {addr: %s}\nauth: {htpasswd: {realm: upstream, path: %s}}\n",
		filepath.Join(dir, "data"), addr, htpasswd), 0o600)
	docker := filepath.Join(dir, "docker")
	os.MkdirAll(docker, 0o700)
	auth := base64.StdEncoding.EncodeToString([]byte(user + ":" + password))
	os.WriteFile(filepath.Join(docker, "config.json"), fmt.Appendf(nil, `{"auths": {%q: {"auth": %q}}}`, addr, auth), 0o600)
	p := harness.StartProc(t, "distribution", harness.Tool(t, "registry"), []string{"serve", cfg}, nil)
	harness.WaitFor(t, "distribution ready", 30*time.Second, func() error {
		if p.Exited() {
			t.Fatalf("distribution exited: %s", harness.Tail(p.Out.String(), 3000))
		}
		ctx, cancel := harness.Ctx(5 * time.Second)
		defer cancel()
		code, _, _, err := harness.HTTPStatus(ctx, http.MethodGet, "http://"+addr+"/v2/", nil, nil)
		if err == nil && code != http.StatusUnauthorized {
			err = fmt.Errorf("GET /v2/: %d, want 401", code)
		}
		return err
	})
	return addr, []string{"DOCKER_CONFIG=" + docker}
}

// A three-node Berth on MinIO caches an htpasswd-protected Distribution
// (credentials by secretRef on every node). A miss on a follower is
// fetched there and committed through the leader; a pull on each node of
// something none has cached yet gets the same digest everywhere; what one
// node cached pulls whole through the others.
func TestProxyOnAnyNode(t *testing.T) {
	const user, password = "puller", "cluster-upstream-secret"
	upAddr, upEnv := startHtpasswdDistribution(t, user, password)
	dir := t.TempDir()
	push := func(repoTag, content string) string {
		layer := filepath.Join(dir, strings.NewReplacer("/", "_", ":", "_").Replace(repoTag)+".tar")
		os.WriteFile(layer, harness.TarWithFile("f", []byte(content)), 0o644)
		out := harness.Run(t, upEnv, harness.Tool(t, "crane"), "append", "--insecure", "-f", layer, "-t", upAddr+"/"+repoTag)
		return strings.TrimSpace(out[strings.LastIndex(out, "@")+1:])
	}
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
`, upAddr), harness.Tool(t, "clusterctl"), "apply", "-f", "-")
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
