package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/spf13/cobra"
)

// EventsResult is what `berth-bench events` measures on one node.
type EventsResult struct {
	PushNoWebhook   Result `json:"pushNoWebhook"`
	PushWithWebhook Result `json:"pushWithWebhook"`
	// PushRatio is push-small ops/s with a webhook over without.
	PushRatio float64 `json:"pushRatio"`
	// OutboxEventsPerS is what the outbox published per second while
	// push-small ran at full speed; OutboxMaxLag the largest publish lag
	// seen meanwhile (entries): small means the outbox kept up.
	OutboxEventsPerS float64 `json:"outboxEventsPerSec"`
	OutboxMaxLag     float64 `json:"outboxMaxLag"`
	// Latency is from a push's 201 to its event's arrival at the receiver.
	LatencyP50 time.Duration `json:"latencyP50Ns"`
	LatencyP99 time.Duration `json:"latencyP99Ns"`
	Delivered  int           `json:"delivered"`
	Missing    int           `json:"missing"`
}

// eventsCmd measures events on a single node: push-small with and without
// a webhook configured, the rate the outbox publishes at meanwhile, and
// push-to-webhook latency with a local receiver.
func eventsCmd() *cobra.Command {
	var berthBin, jsonOut string
	var dur time.Duration
	var conc, rounds int
	cmd := &cobra.Command{
		Use:   "events",
		Short: "Single node: push-to-webhook latency, outbox events/s, push-small with and without a webhook",
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			out := cmd.OutOrStdout()
			srv, err := startServer(ctx, "berth", berthBin, nil, func(addr, dir string) []string {
				return []string{"serve", "--addr", addr, "--data-dir", filepath.Join(dir, "data"), "--log-level", "warn"}
			})
			if err != nil {
				return err
			}
			defer srv.stop()
			tok, err := os.ReadFile(filepath.Join(srv.dir, "data", "admin.token"))
			if err != nil {
				return fmt.Errorf("read the node's admin token: %w", err)
			}
			b := &eventsBench{url: srv.url, token: strings.TrimSpace(string(tok)), c: newClient(srv.url, 64)}
			var res EventsResult
			push := allWorkloads()[0]
			for _, w := range allWorkloads() {
				if w.name == "push-small" {
					push = w
				}
			}

			recv, err := newBenchReceiver()
			if err != nil {
				return err
			}
			defer recv.close()
			// Rounds alternate without and with the webhook (A B, B A, ...),
			// as compare does between registries, so the node's growing
			// state and the machine's drift weigh on both sides alike. The
			// webhook is deleted for the rounds without it, so nothing is
			// delivered then.
			var ratios []float64
			var published, onTime float64
			for r := range rounds {
				order := []bool{false, true}
				if r%2 == 1 {
					order = []bool{true, false}
				}
				var off, on Result
				for _, hook := range order {
					if err := b.setWebhook(ctx, recv.url, hook); err != nil {
						return err
					}
					if !hook {
						off = runWorkload(ctx, b.c, push, srv.url, dur, time.Minute, conc)
						continue
					}
					pub0, _ := b.metric(ctx, "berth_events_published_total")
					stopLag := b.watchLag(ctx)
					start := time.Now()
					on = runWorkload(ctx, b.c, push, srv.url, dur, time.Minute, conc)
					onTime += time.Since(start).Seconds()
					res.OutboxMaxLag = max(res.OutboxMaxLag, stopLag())
					pub1, _ := b.metric(ctx, "berth_events_published_total")
					published += pub1 - pub0
				}
				off.Workload, on.Workload = fmt.Sprintf("push-small r%d", r+1), fmt.Sprintf("push-small (webhook) r%d", r+1)
				printResult(out, off)
				printResult(out, on)
				res.PushNoWebhook, res.PushWithWebhook = off, on
				if off.OpsPerS > 0 {
					ratios = append(ratios, on.OpsPerS/off.OpsPerS)
				}
			}
			res.PushRatio = median(ratios)
			if onTime > 0 {
				res.OutboxEventsPerS = published / onTime
			}
			if err := b.setWebhook(ctx, recv.url, true); err != nil {
				return err
			}

			// Latency at a moderate rate (4 pushers), after the backlog of
			// the full-speed round has drained.
			if err := recv.waitIdle(ctx, 2*time.Second, 2*time.Minute); err != nil {
				return err
			}
			acked, err := b.pushTimed(ctx, 4, dur)
			if err != nil {
				return err
			}
			lat, missing := recv.latencies(ctx, acked, 30*time.Second)
			res.LatencyP50, res.LatencyP99 = percentile(lat, 50), percentile(lat, 99)
			res.Delivered, res.Missing = len(lat), missing

			fmt.Fprintf(out, "push-small with a webhook: %.0f%% of without (median of %d alternating rounds; per round %s)\n",
				100*res.PushRatio, len(ratios), formatRatios(ratios))
			fmt.Fprintf(out, "outbox: %.0f events/s published during full-speed pushes, publish lag at most %.0f entries\n",
				res.OutboxEventsPerS, res.OutboxMaxLag)
			fmt.Fprintf(out, "push-to-webhook latency: p50 %s p99 %s (%d events, %d not delivered within 30 s)\n",
				ms(res.LatencyP50), ms(res.LatencyP99), res.Delivered, res.Missing)
			if jsonOut != "" {
				j, _ := json.MarshalIndent(res, "", "  ")
				return os.WriteFile(jsonOut, j, 0o644)
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&berthBin, "berth", "bin/registryd", "registryd binary")
	cmd.Flags().DurationVar(&dur, "duration", 10*time.Second, "length of each round")
	cmd.Flags().IntVar(&rounds, "rounds", 3, "alternating rounds without and with the webhook")
	cmd.Flags().IntVar(&conc, "concurrency", 0, "push-small clients (default: the workload's 16)")
	cmd.Flags().StringVar(&jsonOut, "json", "", "also write the result as JSON to this file")
	return cmd
}

type eventsBench struct {
	url, token string
	c          *client
}

func (b *eventsBench) admin(ctx context.Context, method, path string, body []byte) (int, []byte, error) {
	code, _, out, _, err := b.c.do(ctx, method, b.url+path, map[string]string{"Authorization": "Bearer " + b.token}, bytes.NewReader(body), int64(len(body)), true)
	return code, out, err
}

// applyWebhook applies a webhook for every push and waits until the leader
// delivers its test ping.
// setWebhook applies the bench webhook (and waits until a test ping gets
// through) or deletes it.
func (b *eventsBench) setWebhook(ctx context.Context, url string, on bool) error {
	if on {
		return b.applyWebhook(ctx, url)
	}
	code, out, err := b.admin(ctx, "DELETE", "/admin/v1/resources/Webhook/bench", nil)
	if err != nil || (code != 200 && code != 204 && code != 404) {
		return fmt.Errorf("delete the bench webhook: %d %s %v", code, out, err)
	}
	return nil
}

func formatRatios(rs []float64) string {
	parts := make([]string, len(rs))
	for i, r := range rs {
		parts[i] = fmt.Sprintf("%.2f", r)
	}
	return strings.Join(parts, ", ")
}

func (b *eventsBench) applyWebhook(ctx context.Context, url string) error {
	doc := fmt.Sprintf("apiVersion: berth.dev/v1\nkind: Webhook\nmetadata: {name: bench}\nspec: {url: %q, events: [manifest.pushed]}\n", url)
	if code, out, err := b.admin(ctx, "POST", "/admin/v1/apply", []byte(doc)); err != nil || code != 200 {
		return fmt.Errorf("apply the bench webhook: %d %s %v", code, out, err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		code, out, err := b.admin(ctx, "POST", "/admin/v1/webhooks/bench/test", nil)
		if err == nil && code == 200 && bytes.Contains(out, []byte(`"status":204`)) {
			return nil
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return fmt.Errorf("the bench webhook never answered its test: %d %s %v", code, out, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// metric reads one unlabelled series from /metrics.
func (b *eventsBench) metric(ctx context.Context, name string) (float64, error) {
	code, out, err := b.admin(ctx, "GET", "/metrics", nil)
	if err != nil || code != 200 {
		return 0, fmt.Errorf("GET /metrics: %d %v", code, err)
	}
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), name+" "); ok {
			return strconv.ParseFloat(v, 64)
		}
	}
	return 0, fmt.Errorf("/metrics has no %s", name)
}

// watchLag samples the publish lag every 100 ms until the returned func
// is called, which returns the largest value seen.
func (b *eventsBench) watchLag(ctx context.Context) func() float64 {
	ctx, cancel := context.WithCancel(ctx)
	var mu sync.Mutex
	maxLag := 0.0
	done := make(chan struct{})
	go func() {
		defer close(done)
		for ctx.Err() == nil {
			if v, err := b.metric(ctx, "berth_events_publish_lag"); err == nil {
				mu.Lock()
				maxLag = max(maxLag, v)
				mu.Unlock()
			}
			select {
			case <-ctx.Done():
			case <-time.After(100 * time.Millisecond):
			}
		}
	}()
	return func() float64 {
		cancel()
		<-done
		mu.Lock()
		defer mu.Unlock()
		return maxLag
	}
}

// pushTimed pushes with n clients for d and returns each acknowledged
// manifest's index with the time of its 201.
func (b *eventsBench) pushTimed(ctx context.Context, n int, d time.Duration) (map[uint64]time.Time, error) {
	var mu sync.Mutex
	acked := map[uint64]time.Time{}
	var firstErr error
	deadline := time.Now().Add(d)
	var wg sync.WaitGroup
	var seq int64 = time.Now().UnixNano()
	for id := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; time.Now().Before(deadline) && ctx.Err() == nil; i++ {
				mu.Lock()
				seq++
				im := newSmallImage(seq)
				mu.Unlock()
				repo := fmt.Sprintf("bench/latency-%d", id)
				err := b.c.pushBlob(ctx, repo, im.config, im.cd)
				if err == nil {
					err = b.c.pushBlob(ctx, repo, im.layer, im.ld)
				}
				var idx uint64
				if err == nil {
					var code int
					var hdr http.Header
					var body []byte
					code, hdr, body, _, err = b.c.do(ctx, "PUT", "/v2/"+repo+"/manifests/t"+strconv.Itoa(i),
						map[string]string{"Content-Type": mediaManifest}, bytes.NewReader(im.manifest), int64(len(im.manifest)), true)
					if err == nil {
						err = expect(code, 201, "put manifest", body)
					}
					if err == nil {
						idx, err = strconv.ParseUint(hdr.Get("Berth-Index"), 10, 64)
					}
				}
				at := time.Now()
				mu.Lock()
				if err != nil && firstErr == nil {
					firstErr = err
				}
				if err == nil {
					acked[idx] = at
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if len(acked) == 0 {
		return nil, fmt.Errorf("no push acknowledged: %v", firstErr)
	}
	return acked, nil
}

// benchReceiver records when each event id first arrived.
type benchReceiver struct {
	url  string
	srv  *http.Server
	mu   sync.Mutex
	at   map[string]time.Time
	last time.Time
}

func newBenchReceiver() (*benchReceiver, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	r := &benchReceiver{url: "http://" + ln.Addr().String() + "/", at: map[string]time.Time{}}
	r.srv = &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		now := time.Now()
		id := req.Header.Get("Berth-Event-Id")
		r.mu.Lock()
		if _, ok := r.at[id]; !ok {
			r.at[id] = now
		}
		r.last = now
		r.mu.Unlock()
		w.WriteHeader(http.StatusNoContent)
	})}
	go r.srv.Serve(ln)
	return r, nil
}

func (r *benchReceiver) close() { r.srv.Close() }

// waitIdle waits until nothing arrived for quiet.
func (r *benchReceiver) waitIdle(ctx context.Context, quiet, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) && ctx.Err() == nil {
		r.mu.Lock()
		idle := time.Since(r.last)
		r.mu.Unlock()
		if idle >= quiet {
			return nil
		}
		time.Sleep(100 * time.Millisecond)
	}
	return fmt.Errorf("webhook deliveries did not settle within %s", timeout)
}

// latencies waits up to timeout for every acknowledged index to arrive and
// returns arrival minus acknowledgement for each, and how many never came.
func (r *benchReceiver) latencies(ctx context.Context, acked map[uint64]time.Time, timeout time.Duration) ([]time.Duration, int) {
	deadline := time.Now().Add(timeout)
	for {
		byIndex := map[uint64]time.Time{}
		r.mu.Lock()
		for id, at := range r.at {
			if _, idx, ok := strings.Cut(id, ":"); ok {
				if n, err := strconv.ParseUint(idx, 10, 64); err == nil {
					byIndex[n] = at
				}
			}
		}
		r.mu.Unlock()
		var lat []time.Duration
		for idx, ack := range acked {
			if at, ok := byIndex[idx]; ok {
				lat = append(lat, max(at.Sub(ack), 0))
			}
		}
		if len(lat) == len(acked) || time.Now().After(deadline) || ctx.Err() != nil {
			return lat, len(acked) - len(lat)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
