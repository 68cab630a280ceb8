package single

import (
	"context"
	"fmt"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/berth-registry/berth/e2e/harness"
)

// TestEventsSurviveKill9 pushes from several clients while registryd (with
// its embedded NATS) is killed with SIGKILL, twice, and checks what a
// consumer of the stream sees: every acknowledged push has its event,
// exactly once, in index order.
func TestEventsSurviveKill9(t *testing.T) {
	data := t.TempDir()
	addr := fmt.Sprintf("127.0.0.1:%d", harness.FreePort(t))
	natsURL := fmt.Sprintf("nats://127.0.0.1:%d", harness.FreePort(t))
	const token = "e2e-nats-token"
	env := []string{"BERTH_EVENTS_NATS_LISTEN=" + natsURL[len("nats://"):], "BERTH_EVENTS_NATS_TOKEN=" + token}
	const workers = 4
	var acked []uint64
	inFlight := 0
	for round := range 2 {
		reg := startRegistryEnv(t, data, addr, env)
		if round == 0 {
			// The first leader turns the outbox on through the log; wait
			// for a first event so every push below is recorded.
			idx, err := pushOne(reg.addr, "events/warmup", "w")
			if err != nil {
				t.Fatal(err)
			}
			acked = append(acked, idx)
			waitEvents(t, natsURL, token, []uint64{idx})
		}
		a, n := pushUntilKill(t, reg, round, workers)
		acked = append(acked, a...)
		inFlight += n
	}
	startRegistryEnv(t, data, addr, env)
	got := waitEvents(t, natsURL, token, acked)
	harness.CheckEvents(t, got, "events/", acked, inFlight)
	if len(acked) < 20 {
		t.Errorf("only %d pushes acknowledged: the test did not exercise enough", len(acked))
	}
}

func pushOne(addr, repo, tag string) (uint64, error) {
	ctx, cancel := harness.Ctx(10 * time.Second)
	defer cancel()
	return harness.NewImage(repo, tag).PushIndexed(ctx, addr)
}

// pushUntilKill pushes from workers clients and kills registryd after a
// while. It returns the indexes of acknowledged pushes and how many pushes
// were in flight at the kill.
func pushUntilKill(t *testing.T, reg *registry, round, workers int) (acked []uint64, inFlight int) {
	var mu sync.Mutex
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				idx, err := pushOne(reg.addr, fmt.Sprintf("events/r%d-w%d", round, w), fmt.Sprintf("t%d", i))
				mu.Lock()
				if err == nil {
					acked = append(acked, idx)
				} else {
					inFlight++
				}
				mu.Unlock()
				if err != nil {
					return // the registry is gone
				}
			}
		}()
	}
	time.Sleep(1500 * time.Millisecond)
	reg.p.Cmd.Process.Signal(syscall.SIGKILL)
	reg.p.Kill()
	wg.Wait()
	return acked, inFlight
}

// waitEvents reads the stream until every index in want has its event.
func waitEvents(t *testing.T, url, token string, want []uint64) []harness.StreamEvent {
	t.Helper()
	var got []harness.StreamEvent
	harness.WaitFor(t, "every acknowledged push's event in the stream", 45*time.Second, func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		var err error
		var opts []nats.Option
		if token != "" {
			opts = append(opts, nats.Token(token))
		}
		if got, err = harness.ReadEvents(ctx, []string{url}, "BERTH_EVENTS", opts...); err != nil {
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
