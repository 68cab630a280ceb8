package single

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/berth-registry/berth/e2e/harness"
)

// TestPullEventsFromCranePull pulls an image with crane from registryd
// with events.pulls on and off, and reads the stream: on, the pull shows
// as manifest.pulled and blob.pulled events (config and layer); off, the
// stream holds the push but no pull.
func TestPullEventsFromCranePull(t *testing.T) {
	crane, cenv := harness.Tool(t, "crane"), clientEnv(t)
	for _, on := range []bool{true, false} {
		t.Run(fmt.Sprintf("pulls=%v", on), func(t *testing.T) {
			natsAddr := fmt.Sprintf("127.0.0.1:%d", harness.FreePort(t))
			const token = "e2e-pulls-token"
			data := t.TempDir()
			reg := startRegistryEnv(t, data, "", []string{
				"BERTH_EVENTS_PULLS=" + fmt.Sprint(on), "BERTH_EVENTS_NATS_LISTEN=" + natsAddr, "BERTH_EVENTS_NATS_TOKEN=" + token,
			})
			idx, err := pushOne(reg.addr, "pulls/app", "v1")
			if err != nil {
				t.Fatal(err)
			}
			harness.Run(t, cenv, crane, "--insecure", "pull", "--format", "oci", reg.addr+"/pulls/app:v1", filepath.Join(t.TempDir(), "img"))

			url := "nats://" + natsAddr
			waitEvents(t, url, token, []uint64{idx}) // the push is in the stream
			count := func() map[string]int {
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				defer cancel()
				got, err := harness.ReadEvents(ctx, []string{url}, "BERTH_EVENTS", nats.Token(token))
				if err != nil {
					t.Fatal(err)
				}
				n := map[string]int{}
				for _, e := range got {
					if strings.HasSuffix(e.Type, ".pulled") {
						if e.Repo != "pulls/app" || strings.Count(e.ID, ":") != 3 {
							t.Errorf("pull event %+v: want repository pulls/app and id <cluster>:<node>:<boot>:<seq>", e)
						}
						n[e.Type]++
					}
				}
				return n
			}
			status := func() string {
				env := []string{"BERTH_SERVER=http://" + reg.addr, "BERTH_TOKEN="}
				return harness.Run(t, env, harness.Tool(t, "clusterctl"), "--token-file", filepath.Join(data, "admin.token"), "status")
			}
			if !on {
				time.Sleep(500 * time.Millisecond) // several batch waits
				if out := status(); strings.Contains(out, "Pull events") {
					t.Errorf("events.pulls off, yet clusterctl status shows pull events:\n%s", out)
				}
				if n := count(); len(n) != 0 {
					t.Fatalf("events.pulls off, yet the stream holds pull events: %v", n)
				}
				return
			}
			harness.WaitFor(t, "pull events of the crane pull", 15*time.Second, func() error {
				n := count()
				if n["dev.berth.manifest.pulled"] < 1 || n["dev.berth.blob.pulled"] < 2 {
					return fmt.Errorf("pull events so far: %v (want a manifest and the config and layer blobs)", n)
				}
				return nil
			})
			harness.WaitFor(t, "clusterctl status to count the pulls", 10*time.Second, func() error {
				out := status()
				if !strings.Contains(out, "Pull events (node-1): published ") || strings.Contains(out, "published 0,") {
					return fmt.Errorf("status:\n%s", out)
				}
				return nil
			})
		})
	}
}
