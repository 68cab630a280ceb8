package single

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/berth-registry/berth/e2e/harness"
)

// startNATS runs a real nats-server with JetStream (sync always) on port.
func startNATS(t *testing.T, dir string, port int) *harness.Proc {
	t.Helper()
	p := harness.StartProc(t, "nats-server", harness.Tool(t, "nats-server"),
		[]string{"-a", "127.0.0.1", "-p", fmt.Sprint(port), "-js", "-sd", dir}, nil)
	url := fmt.Sprintf("nats://127.0.0.1:%d", port)
	harness.WaitFor(t, "nats-server", 30*time.Second, func() error {
		nc, err := nats.Connect(url)
		if err == nil {
			nc.Close()
		}
		return err
	})
	return p
}

// A registryd whose NATS is not there at start serves writes anyway, says
// so in `clusterctl status`, and publishes everything once NATS is up.
func TestEventsWaitForNATSAtStart(t *testing.T) {
	data := t.TempDir()
	port := harness.FreePort(t)
	url := fmt.Sprintf("nats://127.0.0.1:%d", port)
	reg := startRegistryEnv(t, data, "", []string{"BERTH_EVENTS_NATS_URLS=" + url})
	var acked []uint64
	for i := range 5 {
		idx, err := pushOne(reg.addr, "events/early", fmt.Sprintf("t%d", i))
		if err != nil {
			t.Fatalf("push while NATS is down: %v", err)
		}
		acked = append(acked, idx)
	}
	ctl := harness.Tool(t, "clusterctl")
	env := []string{"BERTH_SERVER=http://" + reg.addr, "BERTH_TOKEN="}
	harness.WaitFor(t, "clusterctl status to show the outage", 20*time.Second, func() error {
		out := harness.Run(t, env, ctl, "--token-file", filepath.Join(data, "admin.token"), "status")
		if !strings.Contains(out, "Events (node-1): unavailable") {
			return fmt.Errorf("status: %s", out)
		}
		return nil
	})
	startNATS(t, t.TempDir(), port)
	got := waitEvents(t, url, "", acked)
	harness.CheckEvents(t, got, "events/", acked, 0)
	out := harness.Run(t, env, ctl, "--token-file", filepath.Join(data, "admin.token"), "status")
	if !strings.Contains(out, "Events (node-1): publishing") {
		t.Errorf("status after NATS came up: %s", out)
	}
}

// A stream that exists with settings that would lose events stops the
// start with the reason, instead of publishing into the void.
func TestEventsIncompatibleStreamFailsStart(t *testing.T) {
	port := harness.FreePort(t)
	url := fmt.Sprintf("nats://127.0.0.1:%d", port)
	startNATS(t, t.TempDir(), port)
	nc, err := nats.Connect(url)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "BERTH_EVENTS", Subjects: []string{"other.>"}, Storage: jetstream.FileStorage}); err != nil {
		t.Fatal(err)
	}
	p := harness.StartProc(t, "registryd", harness.Tool(t, "registryd"),
		[]string{"serve", "--addr", fmt.Sprintf("127.0.0.1:%d", harness.FreePort(t)), "--data-dir", t.TempDir()},
		[]string{"BERTH_EVENTS_NATS_URLS=" + url})
	waitExit(t, p, 15*time.Second)
	out := p.Out.String()
	for _, want := range []string{"incompatible stream BERTH_EVENTS", `do not include "berth.>"`, "duplicate window"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, harness.Tail(out, 2000))
		}
	}
}
