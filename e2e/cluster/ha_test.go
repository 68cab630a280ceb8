package cluster

import (
	"bytes"
	"crypto/rand"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/berth-registry/berth/e2e/harness"
)

// TestCluster runs the HA scenarios against one three-node cluster on
// loopback with MinIO and HAProxy: it takes ~10 s to form, so the
// scenarios share it, in an order where each leaves the cluster whole.
func TestCluster(t *testing.T) {
	c := newCluster(t, 3)
	t.Run("PushThroughLBVisibleOnEveryNodeAtOnce", c.testImmediateVisibility)
	t.Run("CraneAndRegctlThroughLB", c.testRealClients)
	t.Run("ChunkedUploadRoundRobin", c.testChunkedRoundRobin)
	t.Run("KillLeaderDuringPushes", c.testFailover)
	t.Run("SnapshotRestoreIntoFreshCluster", c.testSnapshotRestore)
	t.Run("ClusterctlMembership", c.testMembership)
	// Last: it leaves the cluster without a quorum.
	t.Run("StaleReadsWithoutQuorum", c.testStaleReads)
}

// Right after each acknowledged push, with no sleep, every node must serve
// the manifest: followers use a read-index barrier, not their local state.
func (c *cluster) testImmediateVisibility(t *testing.T) {
	for i := range 10 {
		im := harness.NewImage("vis/app", fmt.Sprintf("v%d", i))
		ctx, cancel := c.ctx(30 * time.Second)
		if err := im.Push(ctx, c.lb); err != nil {
			cancel()
			t.Fatalf("push %d: %v", i, err)
		}
		for _, nd := range c.nodes {
			if err := im.Verify(ctx, nd.api); err != nil {
				t.Errorf("immediately after push %d: %v", i, err)
			}
		}
		cancel()
	}
}

func (c *cluster) testRealClients(t *testing.T) {
	crane, regctl := harness.Tool(t, "crane"), harness.Tool(t, "regctl")
	home := t.TempDir()
	env := c.clientEnv(home)
	layer := filepath.Join(home, "layer.tar")
	if err := os.WriteFile(layer, harness.TarWithFile("hello.txt", []byte("hello from berth\n")), 0o644); err != nil {
		t.Fatal(err)
	}
	ref := c.lb + "/clients/hello:1"
	harness.Run(t, env, crane, "append", "-f", layer, "-t", ref)
	digest := strings.TrimSpace(harness.Run(t, env, crane, "digest", ref))
	for _, nd := range c.nodes {
		got := strings.TrimSpace(harness.Run(t, env, crane, "digest", nd.api+"/clients/hello:1"))
		if got != digest {
			t.Errorf("%s serves digest %s, want %s", nd.id, got, digest)
		}
	}
	harness.Run(t, env, regctl, "registry", "set", c.lb, "--tls", c.regctlTLS())
	for _, nd := range c.nodes {
		harness.Run(t, env, regctl, "registry", "set", nd.api, "--tls", c.regctlTLS())
	}
	harness.Run(t, env, regctl, "image", "copy", ref, c.lb+"/clients/copy:1")
	for _, nd := range c.nodes {
		out := harness.Run(t, env, regctl, "tag", "ls", nd.api+"/clients/copy")
		if strings.TrimSpace(out) != "1" {
			t.Errorf("%s tags of clients/copy = %q, want 1", nd.id, out)
		}
		got := strings.TrimSpace(harness.Run(t, env, regctl, "image", "digest", nd.api+"/clients/copy:1"))
		if got != digest {
			t.Errorf("%s copy digest %s, want %s", nd.id, got, digest)
		}
	}
}

// A chunked upload whose requests land on a different node each time must
// complete: the session lives in the shared bucket (rule 7).
func (c *cluster) testChunkedRoundRobin(t *testing.T) {
	data := make([]byte, 12<<20+12345)
	rand.Read(data)
	digest := harness.Sha(data)
	repo := "chunked/blob"
	ctx, cancel := c.ctx(2 * time.Minute)
	defer cancel()
	code, hdr, body, err := harness.HTTPStatus(ctx, "POST", c.url(c.nodes[0].api, "/v2/"+repo+"/blobs/uploads/"), nil, nil)
	if err != nil || code != http.StatusAccepted {
		t.Fatalf("start upload: %d %v %s", code, err, body)
	}
	loc := hdr.Get("Location")
	chunk := 5<<20 + 7
	for i, off := 0, 0; off < len(data); i++ {
		end := min(off+chunk, len(data))
		nd := c.nodes[(i+1)%len(c.nodes)]
		url := c.url(nd.api, pathOf(loc))
		code, hdr, body, err := harness.HTTPStatus(ctx, "PATCH", url, map[string]string{
			"Content-Type":  "application/octet-stream",
			"Content-Range": fmt.Sprintf("%d-%d", off, end-1),
		}, bytes.NewReader(data[off:end]))
		if err != nil || code != http.StatusAccepted {
			t.Fatalf("chunk %d on %s: %d %v %s", i, nd.id, code, err, body)
		}
		if want := fmt.Sprintf("0-%d", end-1); hdr.Get("Range") != want {
			t.Fatalf("chunk %d on %s: Range %q, want %q", i, nd.id, hdr.Get("Range"), want)
		}
		loc = hdr.Get("Location")
		off = end
	}
	// Close on yet another node.
	sep := "?"
	if strings.Contains(loc, "?") {
		sep = "&"
	}
	code, _, body, err = harness.HTTPStatus(ctx, "PUT", c.url(c.nodes[2].api, pathOf(loc)+sep+"digest="+digest), nil, nil)
	if err != nil || code != http.StatusCreated {
		t.Fatalf("close upload: %d %v %s", code, err, body)
	}
	for _, nd := range c.nodes {
		code, _, got, err := harness.HTTPStatus(ctx, "GET", c.url(nd.api, "/v2/"+repo+"/blobs/"+digest), nil, nil)
		if err != nil || code != http.StatusOK || !bytes.Equal(got, data) {
			t.Errorf("%s: blob after round-robin upload: %d %v (len %d)", nd.id, code, err, len(got))
		}
	}
}

// pathOf strips scheme and host from an upload Location.
func pathOf(loc string) string {
	if i := strings.Index(loc, "/v2/"); i >= 0 {
		return loc[i:]
	}
	return loc
}

// Kill -9 the leader in the middle of a continuous push loop through
// HAProxy: writes resume, every acknowledged push survives, and the killed
// node comes back and catches up.
func (c *cluster) testFailover(t *testing.T) {
	leader := c.leader()
	t.Logf("leader before the kill: %s", leader.id)

	var (
		mu       sync.Mutex
		acked    []harness.Image
		lastOK   = time.Now()
		outage   time.Duration
		failures int
	)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				im := harness.NewImage(fmt.Sprintf("failover/w%d", w), fmt.Sprintf("t%d", i))
				ctx, cancel := c.ctx(20 * time.Second)
				err := im.Push(ctx, c.lb)
				cancel()
				now := time.Now()
				mu.Lock()
				if err == nil {
					acked = append(acked, im)
					if gap := now.Sub(lastOK); gap > outage {
						outage = gap
					}
					lastOK = now
				} else {
					failures++
				}
				mu.Unlock()
				if err != nil {
					time.Sleep(50 * time.Millisecond)
				}
			}
		}()
	}
	time.Sleep(3 * time.Second)
	mu.Lock()
	before := len(acked)
	outage = 0 // measure only around the kill
	mu.Unlock()
	killedAt := time.Now()
	leader.p.Kill()
	t.Logf("killed %s (SIGKILL) after %d acknowledged pushes", leader.id, before)

	// Writes must resume through the load balancer.
	harness.WaitFor(t, "pushes to resume after the kill", 60*time.Second, func() error {
		mu.Lock()
		defer mu.Unlock()
		if lastOK.After(killedAt) && len(acked) > before+5 {
			return nil
		}
		return fmt.Errorf("%d acked since kill", len(acked)-before)
	})
	time.Sleep(2 * time.Second)
	close(stop)
	wg.Wait()
	mu.Lock()
	t.Logf("FAILOVER: longest write outage seen by a client: %s (acknowledged %d pushes, %d failed attempts)", outage.Round(time.Millisecond), len(acked), failures)
	mu.Unlock()
	if outage > 30*time.Second {
		t.Errorf("write outage %s is longer than 30s", outage)
	}

	// Every acknowledged push is pullable through the load balancer.
	newLeader := c.leader()
	if newLeader == leader {
		t.Fatalf("killed node %s is still reported as leader", leader.id)
	}
	ctx, cancel := c.ctx(5 * time.Minute)
	defer cancel()
	for _, im := range acked {
		if err := im.Verify(ctx, c.lb); err != nil {
			t.Errorf("acknowledged push lost: %v", err)
		}
	}

	// The killed node restarts with its data and catches up.
	c.start(leader)
	c.waitReady(leader)
	harness.WaitFor(t, leader.id+" to catch up", 60*time.Second, func() error {
		st, err := c.status(newLeader.api)
		if err != nil {
			return err
		}
		var lead, mine uint64
		for _, n := range st.Nodes {
			if n.ID == newLeader.id {
				lead = n.CommitIndex
			}
			if n.ID == leader.id {
				mine = n.AppliedIndex
			}
		}
		if mine == 0 || mine+1 < lead {
			return fmt.Errorf("%s applied %d, leader commit %d", leader.id, mine, lead)
		}
		return nil
	})
	last := acked[len(acked)-1]
	if err := last.Verify(ctx, leader.api); err != nil {
		t.Errorf("restarted node: %v", err)
	}
}

// A backup taken with clusterctl restores into a fresh cluster that shares
// the bucket, which then serves the same tags and manifests.
func (c *cluster) testSnapshotRestore(t *testing.T) {
	ctl := harness.Tool(t, "clusterctl")
	im := harness.NewImage("backup/app", "v1")
	ctx, cancel := c.ctx(time.Minute)
	defer cancel()
	if err := im.Push(ctx, c.lb); err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(t.TempDir(), "berth.snap")
	harness.Run(t, c.ctlEnv(), ctl, "--server", c.url(c.lb, ""), "snapshot", "save", file)

	fresh := &cluster{t: t, dir: t.TempDir(), minio: c.minio}
	fresh.startNodes("fresh", 3)
	harness.Run(t, fresh.ctlEnv(), ctl, "--server", fresh.url(fresh.nodes[1].api, ""), "snapshot", "restore", file)
	// The fresh cluster has CAs of its own under BERTH_E2E_TLS=1.
	fctx, fcancel := fresh.ctx(time.Minute)
	defer fcancel()
	for _, nd := range fresh.nodes {
		harness.WaitFor(t, nd.id+" serves restored state", 30*time.Second, func() error { return im.Verify(fctx, nd.api) })
	}
	// And the restored cluster takes new writes.
	im2 := harness.NewImage("backup/app", "v2")
	if err := im2.Push(fctx, fresh.nodes[2].api); err != nil {
		t.Fatalf("write after restore: %v", err)
	}
}
