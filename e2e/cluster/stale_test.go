package cluster

import (
	"net/http"
	"testing"
	"time"

	"github.com/berth-registry/berth/e2e/harness"
)

// A node configured with `--consistency stale` (a mirror) serves its local
// state even when it cannot reach a quorum, while writes still need one.
// Strong nodes answer 503 in the same position (TestDockerPartition).
func (c *cluster) testStaleReads(t *testing.T) {
	im := harness.NewImage("stale/app", "v1")
	ctx, cancel := c.ctx(2 * time.Minute)
	defer cancel()
	if err := im.Push(ctx, c.lb); err != nil {
		t.Fatal(err)
	}
	mirror := c.nodes[0]
	mirror.p.Stop(t)
	mirror.args = append(mirror.args, "--consistency", "stale")
	// A write it cannot commit should give up quickly in this test.
	mirror.env = append(append([]string{}, mirror.env...), "BERTH_RAFT_APPLYTIMEOUT=3s")
	c.start(mirror)
	c.waitReady(mirror)
	harness.WaitFor(t, "the mirror to have the image", 30*time.Second, func() error { return im.Verify(ctx, mirror.api) })

	for _, n := range c.nodes[1:] {
		n.p.Kill()
	}
	// No quorum now: the mirror still answers reads from what it has...
	harness.WaitFor(t, "a read without quorum", 20*time.Second, func() error { return im.Verify(ctx, mirror.api) })
	// ...and refuses writes.
	if err := harness.NewImage("stale/app", "v2").Push(ctx, mirror.api); err == nil {
		t.Error("a node without quorum acknowledged a write")
	}
	code, _, _, err := harness.HTTPStatus(ctx, "GET", c.url(mirror.api, "/v2/stale/app/manifests/v2"), nil, nil)
	if err != nil || code == http.StatusOK {
		t.Errorf("refused write visible on the mirror: %d %v", code, err)
	}
}
