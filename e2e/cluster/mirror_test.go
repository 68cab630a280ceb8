package cluster

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/berth-registry/berth/e2e/harness"
)

// tagListing is every repository's tags at base and the digest each
// points at, read through the OCI API.
func tagListing(t *testing.T, cl harness.Client, base string) (map[string]string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	ctx = harness.WithClient(ctx, cl)
	get := func(path string, v any) error {
		code, _, body, err := harness.HTTPStatus(ctx, http.MethodGet, base+path, nil, nil)
		if err != nil || code != http.StatusOK {
			return fmt.Errorf("GET %s: %d %v", path, code, err)
		}
		return json.Unmarshal(body, v)
	}
	var cat struct{ Repositories []string }
	if err := get("/v2/_catalog?n=10000", &cat); err != nil {
		return nil, err
	}
	out := map[string]string{}
	for _, repo := range cat.Repositories {
		var tl struct{ Tags []string }
		if err := get("/v2/"+repo+"/tags/list?n=10000", &tl); err != nil {
			return nil, err
		}
		for _, tag := range tl.Tags {
			code, hdr, _, err := harness.HTTPStatus(ctx, http.MethodHead, base+"/v2/"+repo+"/manifests/"+tag,
				map[string]string{"Accept": "application/vnd.oci.image.manifest.v1+json"}, nil)
			if err != nil || code != http.StatusOK {
				return nil, fmt.Errorf("HEAD %s:%s: %d %v", repo, tag, code, err)
			}
			out[repo+":"+tag] = hdr.Get("Docker-Content-Digest")
		}
	}
	return out, nil
}

func listingDiff(origin, mirror map[string]string) string {
	var out []string
	for k, d := range origin {
		if m, ok := mirror[k]; !ok {
			out = append(out, "missing "+k)
		} else if m != d {
			out = append(out, fmt.Sprintf("%s is %s, origin %s", k, m, d))
		}
	}
	for k := range mirror {
		if _, ok := origin[k]; !ok {
			out = append(out, "extra "+k)
		}
	}
	slices.Sort(out)
	return strings.Join(out, "\n")
}

// A three-node origin on MinIO publishing to a three-node NATS cluster,
// and a single-node mirror following it. The origin's leader is killed
// with SIGKILL in the middle of the pushes and restarted: the mirror ends
// up with exactly the origin's tags and digests, and a delete propagates.
func TestMirrorOfThreeNodeOrigin(t *testing.T) {
	c := &cluster{t: t, dir: t.TempDir()}
	nats := startNATSCluster(t, c.dir)
	c.nodeEnv = func(*node) []string {
		return []string{"BERTH_EVENTS_NATS_URLS=" + strings.Join(nats.urls, ","), "BERTH_EVENTS_REPLICAS=3"}
	}
	c.minio = startMinIO(t, c.dir)
	c.startNodes("origin", 3)
	c.startHAProxy()
	originBase := c.url(c.lb, "")

	mirrorAddr := fmt.Sprintf("127.0.0.1:%d", harness.FreePort(t))
	mirrorData := filepath.Join(c.dir, "mirror")
	mirror := harness.StartProc(t, "mirror", harness.Tool(t, "registryd"),
		[]string{"serve", "--addr", mirrorAddr, "--data-dir", mirrorData}, mirrorEnv(c))
	harness.WaitFor(t, "mirror ready", 60*time.Second, func() error {
		if mirror.Exited() {
			t.Fatalf("mirror exited: %s", harness.Tail(mirror.Out.String(), 3000))
		}
		return harness.GetOK("http://" + mirrorAddr + "/readyz")
	})
	quoted := make([]string, len(nats.urls))
	for i, u := range nats.urls {
		quoted[i] = `"` + u + `"`
	}
	ctlEnv := []string{"BERTH_SERVER=http://" + mirrorAddr, "BERTH_TOKEN="}
	ctl := harness.Tool(t, "clusterctl")
	token := filepath.Join(mirrorData, "admin.token")
	harness.RunInput(t, ctlEnv, fmt.Sprintf(`apiVersion: berth.dev/v1
kind: Registry
metadata: {name: origin}
spec:
  type: berth
  url: %s
  insecure: %t
  events: {urls: [%s]}
---
apiVersion: berth.dev/v1
kind: ReplicationPolicy
metadata: {name: follow}
spec: {mode: mirror, registry: origin, deletion: true}
`, originBase, c.https == nil, strings.Join(quoted, ", ")), ctl, "--token-file", token, "apply", "-f", "-")

	// 30 pushes; the origin's leader dies after 10 and is back after 20.
	// A push that fails while the cluster elects is retried, as a client
	// would.
	var killed *node
	for i := range 30 {
		im := harness.NewImage(fmt.Sprintf("mirror/app-%d", i%3), fmt.Sprintf("t%d", i))
		harness.WaitFor(t, "push "+im.Repo+":"+im.Tag, 60*time.Second, func() error {
			ctx, cancel := c.ctx(10 * time.Second)
			defer cancel()
			return im.Push(ctx, c.lb)
		})
		switch i {
		case 10:
			killed = c.leader()
			killed.p.Kill()
		case 20:
			if c.leader() == killed {
				t.Fatal("the killed node still leads")
			}
			c.start(killed)
			c.waitReady(killed)
		}
	}
	ctx, cancel := c.ctx(10 * time.Second)
	defer cancel()
	code, _, _, err := harness.HTTPStatus(ctx, http.MethodDelete, originBase+"/v2/mirror/app-0/manifests/t0", nil, nil)
	if err != nil || code != http.StatusAccepted {
		t.Fatalf("delete tag at the origin: %d %v", code, err)
	}

	harness.WaitFor(t, "the mirror to hold exactly the origin's tags", 120*time.Second, func() error {
		o, err := tagListing(t, c.client(), originBase)
		if err != nil {
			return err
		}
		m, err := tagListing(t, harness.Client{}, "http://"+mirrorAddr)
		if err != nil {
			return err
		}
		if len(o) != 29 {
			return fmt.Errorf("origin holds %d tags, want 29", len(o))
		}
		if d := listingDiff(o, m); d != "" {
			return fmt.Errorf("mirror differs:\n%s", d)
		}
		return nil
	})
	out := harness.Run(t, ctlEnv, ctl, "--token-file", token, "replication", "status")
	if !strings.Contains(out, "following") {
		t.Errorf("replication status:\n%s", out)
	}
}

// A three-node mirror on its own MinIO follows a single-node origin (its
// embedded NATS with a token). The mirror's leader is killed with SIGKILL
// in the middle of the pushes: another node takes over from the committed
// cursor, and the mirror ends up with exactly the origin's tags, pullable
// through any mirror node.
func TestThreeNodeMirrorLeaderFailover(t *testing.T) {
	const natsToken = "origin-token-for-the-mirror"
	natsAddr := fmt.Sprintf("127.0.0.1:%d", harness.FreePort(t))
	originAddr := fmt.Sprintf("127.0.0.1:%d", harness.FreePort(t))
	origin := harness.StartProc(t, "origin", harness.Tool(t, "registryd"),
		[]string{"serve", "--addr", originAddr, "--data-dir", t.TempDir()},
		[]string{"BERTH_EVENTS_NATS_LISTEN=" + natsAddr, "BERTH_EVENTS_NATS_TOKEN=" + natsToken})
	harness.WaitFor(t, "origin ready", 60*time.Second, func() error {
		if origin.Exited() {
			t.Fatalf("origin exited: %s", harness.Tail(origin.Out.String(), 3000))
		}
		return harness.GetOK("http://" + originAddr + "/readyz")
	})

	c := newCluster(t, 3) // the mirror
	for _, nd := range c.nodes {
		dir := filepath.Join(nd.dataDir, "secrets", "origin-nats")
		if err := os.MkdirAll(dir, 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, "token"), []byte(natsToken), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	ctlEnv := append(c.ctlEnv(), "BERTH_SERVER="+c.url(c.lb, ""))
	ctl := harness.Tool(t, "clusterctl")
	harness.RunInput(t, ctlEnv, fmt.Sprintf(`apiVersion: berth.dev/v1
kind: Registry
metadata: {name: origin}
spec:
  type: berth
  url: http://%s
  insecure: true
  events: {urls: ["nats://%s"], credentials: {type: token, secretRef: {name: origin-nats, key: token}}}
---
apiVersion: berth.dev/v1
kind: ReplicationPolicy
metadata: {name: follow}
spec: {mode: mirror, registry: origin}
`, originAddr, natsAddr), ctl, "apply", "-f", "-")

	push := func(i int) {
		im := harness.NewImage(fmt.Sprintf("mirror/app-%d", i%3), fmt.Sprintf("t%d", i))
		ctx, cancel := harness.Ctx(10 * time.Second)
		defer cancel()
		if err := im.Push(ctx, originAddr); err != nil {
			t.Fatalf("push %d: %v", i, err)
		}
	}
	for i := range 10 {
		push(i)
	}
	// The first leader is following (it copied the first pushes) when
	// the stream goes on and it is killed in the middle of it.
	harness.WaitFor(t, "the mirror's leader to follow the origin", 60*time.Second, func() error {
		m, err := tagListing(t, c.client(), c.url(c.lb, ""))
		if err != nil || len(m) < 10 {
			return fmt.Errorf("mirror holds %d tags (%v)", len(m), err)
		}
		return nil
	})
	killed := c.leader()
	for i := 10; i < 30; i++ {
		push(i)
		if i == 15 {
			killed.p.Kill()
		}
	}
	o, err := tagListing(t, harness.Client{}, "http://"+originAddr)
	if err != nil || len(o) != 30 {
		t.Fatalf("origin listing: %d tags, %v", len(o), err)
	}
	harness.WaitFor(t, "every live mirror node to hold exactly the origin's tags", 120*time.Second, func() error {
		for _, nd := range c.nodes {
			if nd == killed {
				continue
			}
			m, err := tagListing(t, c.client(), c.url(nd.api, ""))
			if err != nil {
				return err
			}
			if d := listingDiff(o, m); d != "" {
				return fmt.Errorf("%s differs:\n%s", nd.id, d)
			}
		}
		return nil
	})
	if c.leader() == killed {
		t.Fatal("the killed node still leads")
	}
	// The new leader resumed from the committed cursor: no node but the
	// first leader started from a listing.
	for _, nd := range c.nodes {
		if out := nd.p.Out.String(); nd != killed && (strings.Contains(out, "mirror has no cursor") || strings.Contains(out, "full sync")) {
			t.Errorf("%s synced from a listing instead of resuming from the cursor:\n%s", nd.id, replicationLines(out))
		}
	}
	if !strings.Contains(killed.p.Out.String(), "initial sync done") {
		t.Errorf("the first leader did not log its initial sync:\n%s", replicationLines(killed.p.Out.String()))
	}
	out := harness.Run(t, ctlEnv, ctl, "replication", "status", "follow", "-o", "json")
	var ans struct {
		Leader   bool
		Policies []struct {
			Cursor, OriginHead, LagEntries uint64
			LastError                      string
		}
	}
	if err := json.Unmarshal([]byte(out), &ans); err != nil || !ans.Leader || len(ans.Policies) != 1 ||
		ans.Policies[0].LagEntries != 0 || ans.Policies[0].Cursor < ans.Policies[0].OriginHead {
		t.Errorf("replication status through the load balancer: %v\n%s", err, out)
	}
}

// replicationLines picks the mirror's log lines out of a node's output.
func replicationLines(out string) string {
	var keep []string
	for _, l := range strings.Split(out, "\n") {
		if strings.Contains(l, "mirror") && !strings.Contains(l, "msg=request") || strings.Contains(l, "msg=leading") {
			keep = append(keep, l)
		}
	}
	return strings.Join(keep, "\n")
}

// client is the harness client for the cluster's nodes: HTTPS trusting
// the test CA under BERTH_E2E_TLS=1, plain otherwise.
func (c *cluster) client() harness.Client {
	return harness.Client{HTTPS: c.https != nil, HTTP: c.https}
}

// mirrorEnv is the single-node mirror's environment: it trusts the
// origin cluster's CA (Go reads SSL_CERT_FILE) when the origin serves
// HTTPS.
func mirrorEnv(c *cluster) []string {
	env := []string{"BERTH_EVENTS_ENABLED=false"}
	if c.caFile != "" {
		env = append(env, "SSL_CERT_FILE="+c.caFile)
	}
	return env
}
