package cluster

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/berth-registry/berth/e2e/harness"
)

// natsCluster is three real nats-server processes forming a JetStream
// cluster on loopback, as deploy/ runs them.
type natsCluster struct {
	urls  []string
	procs []*harness.Proc
}

func startNATSCluster(t *testing.T, dir string) *natsCluster {
	t.Helper()
	const n = 3
	client, route, mon := make([]int, n), make([]int, n), make([]int, n)
	for i := range n {
		client[i], route[i], mon[i] = harness.FreePort(t), harness.FreePort(t), harness.FreePort(t)
	}
	nc := &natsCluster{}
	for i := range n {
		var routes []string
		for j := range n {
			if j != i {
				routes = append(routes, fmt.Sprintf("nats-route://127.0.0.1:%d", route[j]))
			}
		}
		// sync_interval: always, so an acknowledged event is on disk on a
		// majority before the outbox's cursor counts it.
		cfg := fmt.Sprintf(`server_name: nats%d
listen: 127.0.0.1:%d
http: 127.0.0.1:%d
jetstream { store_dir: %q, sync_interval: always }
cluster { name: berth-e2e, listen: 127.0.0.1:%d, routes: [%s] }
`, i+1, client[i], mon[i], filepath.Join(dir, fmt.Sprintf("nats%d", i+1)), route[i], strings.Join(routes, ", "))
		path := filepath.Join(dir, fmt.Sprintf("nats%d.conf", i+1))
		if err := os.WriteFile(path, []byte(cfg), 0o644); err != nil {
			t.Fatal(err)
		}
		nc.procs = append(nc.procs, harness.StartProc(t, fmt.Sprintf("nats%d", i+1), harness.Tool(t, "nats-server"), []string{"-c", path}, nil))
		nc.urls = append(nc.urls, fmt.Sprintf("nats://127.0.0.1:%d", client[i]))
	}
	for i := range n {
		harness.WaitFor(t, "nats-server JetStream cluster", 60*time.Second, func() error {
			return harness.GetOK(fmt.Sprintf("http://127.0.0.1:%d/healthz", mon[i]))
		})
	}
	return nc
}

func (nc *natsCluster) signal(sig syscall.Signal) {
	for _, p := range nc.procs {
		p.Cmd.Process.Signal(sig)
	}
}

// TestEventsCluster runs three registryd nodes publishing to an external
// three-node NATS cluster with an R3 stream, and checks what a consumer
// sees when the Raft leader is killed with SIGKILL during pushes and when
// NATS stops answering for 20 s.
func TestEventsCluster(t *testing.T) {
	c := &cluster{t: t, dir: t.TempDir()}
	c.minio = startMinIO(t, c.dir)
	nats := startNATSCluster(t, c.dir)
	c.nodeEnv = func(*node) []string {
		return []string{"BERTH_EVENTS_NATS_URLS=" + strings.Join(nats.urls, ","), "BERTH_EVENTS_REPLICAS=3"}
	}
	c.startNodes("node", 3)
	c.waitPublishing()

	t.Run("kill -9 of the leader during pushes", func(t *testing.T) {
		leader := c.leader()
		var followers []*node
		for _, nd := range c.nodes {
			if nd != leader {
				followers = append(followers, nd)
			}
		}
		acked, failed := c.pushWhile(t, "kill", followers, 2, 5*time.Second, func() {
			time.Sleep(1500 * time.Millisecond)
			leader.p.Kill()
		})
		c.start(leader)
		c.waitReady(leader)
		c.waitPublishing()
		harness.CheckEvents(t, waitClusterEvents(t, nats.urls, acked), "kill/", acked, failed)
	})

	t.Run("NATS stopped for 20s during pushes", func(t *testing.T) {
		acked, failed := c.pushWhile(t, "stop", c.nodes, 1, 22*time.Second, func() {
			time.Sleep(time.Second)
			nats.signal(syscall.SIGSTOP)
			time.Sleep(20 * time.Second)
			nats.signal(syscall.SIGCONT)
		})
		if failed > 0 {
			t.Errorf("%d pushes failed while NATS was stopped; writes must not depend on it", failed)
		}
		if len(acked) < 20 {
			t.Errorf("only %d pushes were acknowledged while NATS was stopped", len(acked))
		}
		harness.CheckEvents(t, waitClusterEvents(t, nats.urls, acked), "stop/", acked, 0)
	})
}

// pushWhile pushes from perNode clients on each of nodes for d, running
// during alongside. It returns the indexes of acknowledged pushes and how
// many failed (those may have committed without an answer).
func (c *cluster) pushWhile(t *testing.T, repo string, nodes []*node, perNode int, d time.Duration, during func()) (acked []uint64, failed int) {
	var mu sync.Mutex
	var wg sync.WaitGroup
	end := time.Now().Add(d)
	for _, nd := range nodes {
		for w := range perNode {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := 0; time.Now().Before(end); i++ {
					ctx, cancel := c.ctx(10 * time.Second)
					idx, err := harness.NewImage(fmt.Sprintf("%s/%s-w%d", repo, nd.id, w), fmt.Sprintf("t%d-%d", time.Now().UnixNano(), i)).PushIndexed(ctx, nd.api)
					cancel()
					mu.Lock()
					if err == nil {
						acked = append(acked, idx)
					} else {
						failed++
					}
					mu.Unlock()
					if err != nil {
						time.Sleep(200 * time.Millisecond)
					}
				}
			}()
		}
	}
	during()
	wg.Wait()
	return acked, failed
}

func waitClusterEvents(t *testing.T, urls []string, want []uint64) []harness.StreamEvent {
	t.Helper()
	var got []harness.StreamEvent
	harness.WaitFor(t, "every acknowledged push's event in the R3 stream", 60*time.Second, func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		var err error
		if got, err = harness.ReadEvents(ctx, urls, "BERTH_EVENTS"); err != nil {
			return err
		}
		have := map[uint64]bool{}
		for _, e := range got {
			have[e.Index] = true
		}
		for _, i := range want {
			if !have[i] {
				return fmt.Errorf("index %d not yet published (%d events in the stream)", i, len(got))
			}
		}
		return nil
	})
	return got
}

// waitPublishing waits until the leader's outbox runs: the cluster is
// named and the outbox turned on through the log, so every later push is
// recorded for publishing.
func (c *cluster) waitPublishing() {
	leader := c.leader()
	harness.WaitFor(c.t, "the leader's outbox publishing", 60*time.Second, func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		code, _, body, err := c.httpStatus(ctx, "GET", c.url(leader.api, "/admin/v1/cluster/status"),
			map[string]string{"Authorization": "Bearer " + adminToken}, nil)
		if err != nil {
			return err
		}
		var st struct {
			Nodes []struct {
				ID     string `json:"id"`
				Events *struct {
					State string `json:"state"`
					Error string `json:"error"`
				} `json:"events"`
			} `json:"nodes"`
		}
		if err := json.Unmarshal(body, &st); err != nil || code != 200 {
			return fmt.Errorf("status %d: %v", code, err)
		}
		for _, n := range st.Nodes {
			if n.ID == leader.id && n.Events != nil && n.Events.State == "publishing" {
				return nil
			}
		}
		return fmt.Errorf("leader %s not publishing yet: %s", leader.id, body)
	})
}
