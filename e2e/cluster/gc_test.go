package cluster

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/berth-registry/berth/e2e/harness"
)

// newGCCluster starts MinIO and three nodes with gc.uploadmaxage at 1m and
// no blob cache, so every pull reads the bucket GC deletes from.
func newGCCluster(t *testing.T) *cluster {
	c := &cluster{t: t, dir: t.TempDir()}
	c.minio = startMinIO(t, c.dir)
	c.nodeEnv = func(*node) []string {
		return []string{"BERTH_GC_UPLOADMAXAGE=" + harness.GCGrace.String(), "BERTH_STORAGE_CACHESIZE=0"}
	}
	c.startNodes("node", 3)
	return c
}

func (c *cluster) apis() []string {
	var out []string
	for _, nd := range c.nodes {
		out = append(out, nd.api)
	}
	return out
}

// TestGCClusterUnderConcurrentPushes is the single node's concurrency test
// on three nodes and MinIO: 8 clients spread over the nodes push images
// that share layers, pull and delete tags while the leader runs GC back to
// back for a minute; then every live image pulls whole from every node
// and, after one more run, the bucket holds exactly the live images' blobs.
func TestGCClusterUnderConcurrentPushes(t *testing.T) {
	c := newGCCluster(t)
	leader := c.leader()
	ctl := harness.Tool(t, "clusterctl")
	scenario, cancelScenario := c.ctx(10 * time.Minute)
	defer cancelScenario()
	res := harness.GCChurnScenarioCtx(scenario, t, c.apis(), leader.api, adminToken, ctl,
		c.ctlEnv(), []string{"--server", c.url(leader.api, "")})
	ctx, cancel := c.ctx(2 * time.Minute)
	defer cancel()
	for _, nd := range c.nodes {
		for _, im := range res.Live {
			if err := im.Verify(ctx, nd.api); err != nil {
				t.Errorf("on %s after the final GC: %v", nd.id, err)
				break
			}
		}
	}
	listed, err := harness.BucketBlobs(ctx, c.minio, "berth")
	if err != nil {
		t.Fatal(err)
	}
	harness.CheckStoreAfterGC(t, "blob objects in the bucket", listed, res)
}

// pushGarbage uploads n small blobs, linked in repo but in no manifest,
// over the nodes with 16 clients: once older than gc.uploadmaxage each is
// a GC candidate whose bytes the sweep deletes one by one.
func pushGarbage(t *testing.T, ctx context.Context, bases []string, repo string, n int) [][]byte {
	t.Helper()
	blobs := harness.LayerPool(n, 64)
	work := make(chan []byte)
	errs := make(chan error, 16)
	for w := range 16 {
		go func() {
			var err error
			for b := range work {
				if err == nil {
					err = harness.PushBlob(ctx, bases[w%len(bases)], repo, b)
				}
			}
			errs <- err
		}()
	}
	for _, b := range blobs {
		work <- b
	}
	close(work)
	for range 16 {
		if err := <-errs; err != nil {
			t.Fatalf("push garbage: %v", err)
		}
	}
	return blobs
}

// TestGCClusterLeaderFailover kills the leader with SIGKILL twice in one
// GC run: once between the mark and the sweep, then the next leader in
// the middle of its sweep. The third leader must finish the run (gc
// status: swept, no open run), every tagged image must pull whole from
// the bucket, and the garbage must be gone from it.
//
// Making the moments deterministic:
//   - Between mark and sweep: the mark of a few thousand candidates is
//     committed within tens of milliseconds, too short to aim a kill at.
//     So the test polls the leader's gc status until the run is open
//     and, at once, switches read-only mode on. Read-only mode lets GC
//     marks through but refuses GCSweepStarted, and the job checks it
//     before the sweep and before every batch of deletes: the leader
//     stops right after the mark with nothing deleted, and stays there.
//     The test checks that (phase marking, or, if the switch committed
//     after GCSweepStarted, phase sweeping with every candidate still in
//     the bucket), lifts the mode and kills the leader in the same
//     millisecond: its loop looks at the mode only every 2s. The next
//     leader's "gc: resuming the open run" log line names the phase it
//     resumed from.
//   - Middle of the sweep: the sweep deletes thousands of objects one by
//     one, which takes seconds; the test lists the bucket until between a
//     fifth and four fifths of the candidates are gone, and kills the
//     leader then. Its successor's log line must say it resumed from
//     phase sweeping.
func TestGCClusterLeaderFailover(t *testing.T) {
	c := newGCCluster(t)
	ctx, cancel := c.ctx(12 * time.Minute)
	defer cancel()
	pool := harness.LayerPool(8, 1024)
	var live []harness.LayeredImage
	for i := range 12 {
		im := harness.NewLayeredImage("gc/live", fmt.Sprint("v", i), fmt.Sprint("live-", i), harness.PickLayers(pool, 2, true), nil, "")
		if _, err := im.Push(ctx, c.nodes[i%3].api); err != nil {
			t.Fatal(err)
		}
		live = append(live, im)
	}
	const garbage = 5000
	start := time.Now()
	pushGarbage(t, ctx, c.apis(), "gc/garbage", garbage)
	t.Logf("pushed %d garbage blobs in %s", garbage, time.Since(start).Round(time.Millisecond))
	before, err := harness.BucketBlobs(ctx, c.minio, "berth")
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(harness.GCGrace + 2*time.Second)

	// 1. Kill the leader between mark and sweep.
	l1 := c.leader()
	status := func(nd *node) harness.GCStatus {
		st, err := harness.GetGCStatus(ctx, nd.api, adminToken)
		if err != nil {
			t.Fatalf("gc status on %s: %v", nd.id, err)
		}
		return st
	}
	if err := harness.StartGC(ctx, l1.api, adminToken, false); err != nil {
		t.Fatal(err)
	}
	for st := status(l1); st.Open == nil; st = status(l1) {
		if len(st.Runs) > 0 {
			t.Fatalf("the run finished before the test saw it open: %+v", st.Runs)
		}
	}
	// Straight to the admin API: starting clusterctl takes longer than
	// the mark does.
	if err := harness.SetReadOnly(ctx, l1.api, adminToken, true); err != nil {
		t.Fatal(err)
	}
	harness.WaitFor(t, "the run to stop at the read-only mode", 30*time.Second, func() error {
		if !strings.Contains(l1.p.Out.String(), "gc paused") {
			return fmt.Errorf("no \"gc paused\" in %s's log yet", l1.id)
		}
		return nil
	})
	held := status(l1)
	if held.Open == nil || held.Open.Blobs < garbage {
		t.Fatalf("held run: %+v, want open with at least %d blob candidates", held.Open, garbage)
	}
	if now, err := harness.BucketBlobs(ctx, c.minio, "berth"); err != nil || len(now) != len(before) {
		t.Fatalf("the held run deleted bytes: %d blobs in the bucket, %d before (%v)", len(now), len(before), err)
	}
	t.Logf("run %s held in phase %s with %d candidates; killing %s", held.Open.Run, held.Open.Phase, held.Open.Blobs, l1.id)
	if err := harness.SetReadOnly(ctx, l1.api, adminToken, false); err != nil {
		t.Fatal(err)
	}
	l1.p.Kill()

	// 2. Kill the next leader in the middle of its sweep. The first one
	// restarts meanwhile, so two nodes remain.
	l2 := c.newLeader(l1)
	c.start(l1)
	waitLog(t, l2, "gc: resuming the open run", "phase="+held.Open.Phase)
	var left int
	harness.WaitFor(t, "the sweep a fifth done", 3*time.Minute, func() error {
		now, err := harness.BucketBlobs(ctx, c.minio, "berth")
		if err != nil {
			return err
		}
		left = len(now) - (len(before) - garbage)
		if left > garbage*4/5 {
			return fmt.Errorf("%d of %d candidates still in the bucket", left, garbage)
		}
		return nil
	})
	if left < garbage/5 {
		t.Fatalf("the sweep was too fast to kill in its middle: %d of %d candidates left when seen", left, garbage)
	}
	l2.p.Kill()
	t.Logf("killed %s with %d of %d candidates still in the bucket", l2.id, left, garbage)
	c.waitReady(l1)
	l3 := c.newLeader(l2)
	waitLog(t, l3, "gc: resuming the open run", "phase=sweeping")

	// 3. The third leader completes the run.
	harness.WaitFor(t, "the run swept", 3*time.Minute, func() error {
		st, err := harness.GetGCStatus(ctx, l3.api, adminToken)
		if err != nil {
			return err
		}
		if st.Open != nil || len(st.Runs) == 0 {
			return fmt.Errorf("open run %+v", st.Open)
		}
		if r := st.Runs[len(st.Runs)-1]; r.Run != held.Open.Run || r.Outcome != "swept" || r.Candidates != garbage {
			return fmt.Errorf("last run %+v, want %s swept with %d candidates", r, held.Open.Run, garbage)
		}
		return nil
	})
	t.Log(c.ctl(t, l3.api, "gc", "status"))
	for _, nd := range []*node{l1, l3} {
		for _, im := range live {
			if err := im.Verify(ctx, nd.api); err != nil {
				t.Errorf("on %s after the failovers: %v", nd.id, err)
			}
		}
	}
	listed, err := harness.BucketBlobs(ctx, c.minio, "berth")
	if err != nil {
		t.Fatal(err)
	}
	missing, leftover := harness.CheckStore(listed, harness.Reachable(live))
	if len(missing) > 0 || len(leftover) > 0 {
		t.Errorf("bucket after the run: %d live digests missing %v, %d garbage left", len(missing), missing, len(leftover))
	}
}

// newLeader waits until the live nodes agree on a leader other than old
// (right after a kill they may still name it).
func (c *cluster) newLeader(old *node) *node {
	c.t.Helper()
	var nd *node
	harness.WaitFor(c.t, "a new leader", time.Minute, func() error {
		if nd = c.leader(); nd == old {
			return fmt.Errorf("the nodes still name %s", old.id)
		}
		return nil
	})
	return nd
}

// waitLog waits until a line of nd's log holds all of parts.
func waitLog(t *testing.T, nd *node, parts ...string) {
	t.Helper()
	harness.WaitFor(t, fmt.Sprintf("%s logging %q", nd.id, parts), time.Minute, func() error {
		for _, line := range strings.Split(nd.p.Out.String(), "\n") {
			ok := true
			for _, p := range parts {
				ok = ok && strings.Contains(line, p)
			}
			if ok {
				return nil
			}
		}
		return fmt.Errorf("not logged")
	})
}
