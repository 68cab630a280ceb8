package cluster

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/berth-registry/berth/e2e/harness"
)

// TestWebhookCluster runs a webhook on a three-node cluster with an
// external NATS cluster: applied and driven through a follower (test and
// redeliver are forwarded to the leader, deliveries read on the follower),
// and delivering every acknowledged push when the leader is killed with
// SIGKILL in the middle of a push stream, from the new leader on.
func TestWebhookCluster(t *testing.T) {
	c := &cluster{t: t, dir: t.TempDir()}
	c.minio = startMinIO(t, c.dir)
	nats := startNATSCluster(t, c.dir)
	c.nodeEnv = func(*node) []string {
		return []string{"BERTH_EVENTS_NATS_URLS=" + strings.Join(nats.urls, ","), "BERTH_EVENTS_REPLICAS=3"}
	}
	c.startNodes("node", 3)
	c.waitPublishing()

	var mu sync.Mutex
	got := map[string]int{}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		mu.Lock()
		got[r.Header.Get("Berth-Event-Id")]++
		mu.Unlock()
	})}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })

	leader := c.leader()
	var follower *node
	for _, nd := range c.nodes {
		if nd != leader {
			follower = nd
			break
		}
	}
	ctl := harness.Tool(t, "clusterctl")
	run := func(via *node, args ...string) string {
		return harness.Run(t, append(c.ctlEnv(), "BERTH_SERVER="+c.url(via.api, "")), ctl, args...)
	}
	hook := fmt.Sprintf("apiVersion: berth.dev/v1\nkind: Webhook\nmetadata: {name: ha}\nspec:\n  url: http://%s/\n  events: [manifest.pushed]\n  repositories: [\"hook/**\"]\n  retry: {initialBackoff: 200ms, maxBackoff: 1s}\n", ln.Addr())
	file := filepath.Join(t.TempDir(), "hook.yaml")
	if err := os.WriteFile(file, []byte(hook), 0o644); err != nil {
		t.Fatal(err)
	}
	run(follower, "apply", "-f", file)
	harness.WaitFor(t, "webhook test forwarded to the leader", 30*time.Second, func() error {
		out, err := c.tryRun(ctl, follower, "webhook", "test", "ha")
		if err != nil || !strings.Contains(out, "delivered: 200") {
			return fmt.Errorf("%v: %s", err, out)
		}
		return nil
	})

	var followers []*node
	for _, nd := range c.nodes {
		if nd != leader {
			followers = append(followers, nd)
		}
	}
	acked, _ := c.pushWhile(t, "hook", followers, 2, 6*time.Second, func() {
		time.Sleep(2 * time.Second)
		leader.p.Kill()
	})
	c.start(leader)
	c.waitReady(leader)
	clusterID := ""
	harness.WaitFor(t, "every acknowledged push delivered", 90*time.Second, func() error {
		if clusterID == "" {
			out, err := c.tryRun(ctl, follower, "events", "--since", "0", "--limit", "1", "-o", "json")
			var ce struct {
				Source string `json:"source"`
			}
			if err != nil || json.Unmarshal([]byte(out), &ce) != nil {
				return fmt.Errorf("read the cluster id: %v %s", err, out)
			}
			clusterID = strings.TrimPrefix(ce.Source, "berth://")
		}
		mu.Lock()
		defer mu.Unlock()
		missing := 0
		for _, idx := range acked {
			if got[fmt.Sprintf("%s:%d", clusterID, idx)] == 0 {
				missing++
			}
		}
		if missing > 0 {
			return fmt.Errorf("%d of %d acknowledged pushes not delivered", missing, len(acked))
		}
		return nil
	})
	if len(acked) < 10 {
		t.Errorf("only %d pushes acknowledged", len(acked))
	}
	// Polled: right after the leader's restart JetStream may briefly
	// have no responder for the deliveries stream ("no responders").
	harness.WaitFor(t, "deliveries read on a follower", 30*time.Second, func() error {
		out, err := c.tryRun(ctl, follower, "webhook", "deliveries", "ha", "--limit", "100")
		if err != nil || !strings.Contains(out, "200") {
			return fmt.Errorf("%v:\n%s", err, out)
		}
		return nil
	})
	if out := run(follower, "webhook", "redeliver", "ha", "--from", fmt.Sprint(acked[0])); !strings.Contains(out, "redelivering from index") {
		t.Errorf("redeliver forwarded to the leader: %s", out)
	}
}

// tryRun runs clusterctl against via and returns its output and error
// without failing the test, for polling.
func (c *cluster) tryRun(ctl string, via *node, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, ctl, args...)
	cmd.Env = append(append(os.Environ(), c.ctlEnv()...), "BERTH_SERVER="+c.url(via.api, ""))
	out, err := cmd.CombinedOutput()
	return string(out), err
}
