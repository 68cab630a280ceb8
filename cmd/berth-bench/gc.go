package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/hashicorp/raft"
	"github.com/opencontainers/go-digest"
	"github.com/spf13/cobra"

	"github.com/berth-registry/berth/blob"
	"github.com/berth-registry/berth/blob/s3"
	"github.com/berth-registry/berth/events"
	"github.com/berth-registry/berth/fsm"
	"github.com/berth-registry/berth/gc"
)

// GCStoreResult is one GC run over a loaded FSM and a real blob store.
type GCStoreResult struct {
	Driver       string        `json:"driver"`
	Repos        int           `json:"repos"`
	Blobs        int           `json:"blobs"`
	Candidates   int           `json:"candidates"`
	Deleted      int           `json:"deleted"`
	Mark         time.Duration `json:"markNs"`  // GCStarted until GCSweepStarted is proposed
	Sweep        time.Duration `json:"sweepNs"` // GCSweepStarted until GCSwept is applied
	HeapLoaded   uint64        `json:"heapLoadedBytes"`
	HeapPeakMark uint64        `json:"heapPeakMarkBytes"`
	HeapPeakRun  uint64        `json:"heapPeakRunBytes"`
	PeakRSS      int64         `json:"peakRssBytes"` // VmHWM of this process (includes the load)
}

// GCPushResult is push-small without and with GC running back to back.
type GCPushResult struct {
	Without, With []Result
	GCRuns        int     `json:"gcRuns"`
	Ratio         float64 `json:"ratio"` // median of per-round with/without
}

// gcCmd measures garbage collection: mark and sweep time and memory over
// repos×blobs on each driver, in process (the FSM and gc.Job as the leader
// runs them, with a proposer that applies locally: no Raft round trips),
// and push-small throughput on a registryd with and without GC running.
func gcCmd() *cobra.Command {
	var repos, blobsPer, rounds, conc int
	var drivers, minioBin, berthBin, jsonOut string
	var dur time.Duration
	cmd := &cobra.Command{
		Use:   "gc",
		Short: "GC over repos×blobs: mark and sweep time and memory (filesystem, MinIO); push-small with and without GC running",
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			out := cmd.OutOrStdout()
			var all struct {
				Stores []GCStoreResult `json:"stores"`
				Push   *GCPushResult   `json:"push,omitempty"`
			}
			for _, d := range strings.Split(drivers, ",") {
				if d == "" {
					continue
				}
				r, err := benchGCStore(ctx, out, strings.TrimSpace(d), repos, blobsPer, minioBin)
				if err != nil {
					return fmt.Errorf("gc on %s: %w", d, err)
				}
				fmt.Fprintf(out, "%s: %d blobs in %d repos, %d candidates, %d deleted: mark %s, sweep %s; heap loaded %.0f MiB, peak in mark %.0f MiB, peak in run %.0f MiB; peak RSS %.0f MiB\n",
					r.Driver, r.Blobs, r.Repos, r.Candidates, r.Deleted, r.Mark.Round(time.Millisecond), r.Sweep.Round(time.Millisecond),
					mib(r.HeapLoaded), mib(r.HeapPeakMark), mib(r.HeapPeakRun), float64(r.PeakRSS)/(1<<20))
				all.Stores = append(all.Stores, r)
			}
			if berthBin != "" && rounds > 0 {
				p, err := benchGCPush(ctx, out, berthBin, rounds, dur, conc)
				if err != nil {
					return err
				}
				all.Push = &p
			}
			if jsonOut != "" {
				b, _ := json.MarshalIndent(all, "", "  ")
				return os.WriteFile(jsonOut, b, 0o644)
			}
			return nil
		},
	}
	cmd.Flags().IntVar(&repos, "repos", 10000, "repositories")
	cmd.Flags().IntVar(&blobsPer, "blobs-per-repo", 10, "blobs linked in each repository; the first half are an image's config and layers, the rest garbage")
	cmd.Flags().StringVar(&drivers, "drivers", "filesystem,s3", "blob drivers to sweep: filesystem, s3 (a MinIO this command starts)")
	cmd.Flags().StringVar(&minioBin, "minio", "bin/minio", "MinIO server binary")
	cmd.Flags().StringVar(&berthBin, "berth", "bin/registryd", "registryd binary for push-small with and without GC (empty: skip)")
	cmd.Flags().IntVar(&rounds, "rounds", 3, "push-small rounds, each without and with GC, alternating")
	cmd.Flags().DurationVar(&dur, "duration", 5*time.Second, "time per push-small round")
	cmd.Flags().IntVar(&conc, "concurrency", 0, "push-small clients (default: the workload's 16)")
	cmd.Flags().StringVar(&jsonOut, "json", "", "write the results as JSON")
	return cmd
}

func mib(b uint64) float64 { return float64(b) / (1 << 20) }

// localProposer applies events to an FSM in process, stamped now, and
// notes when the sweep started and ended.
type localProposer struct {
	mu         sync.Mutex
	f          *fsm.FSM
	index      uint64
	now        func() time.Time
	sweepStart time.Time
	swept      time.Time
}

func (p *localProposer) Propose(_ context.Context, pl events.Payload) (uint64, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	switch pl.(type) {
	case events.GCSweepStarted:
		p.sweepStart = time.Now()
	}
	b, err := events.Encode(events.Event{Time: p.now(), Payload: pl})
	if err != nil {
		return 0, err
	}
	p.index++
	if res := p.f.Apply(&raft.Log{Index: p.index, Type: raft.LogCommand, Data: b}); res != nil {
		if err, ok := res.(error); ok {
			return 0, err
		}
	}
	if _, ok := pl.(events.GCSwept); ok {
		p.swept = time.Now()
	}
	return p.index, nil
}

// benchGCStore loads repos×blobsPer links (half of each repository's
// blobs in a tagged image, half garbage, all linked two days ago), writes
// the garbage's bytes into the store, and runs one GC with a one-hour
// grace period.
func benchGCStore(ctx context.Context, out io.Writer, driver string, repos, blobsPer int, minioBin string) (GCStoreResult, error) {
	res := GCStoreResult{Driver: driver, Repos: repos, Blobs: repos * blobsPer}
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	dir, err := os.MkdirTemp("", "berth-bench-gc-")
	if err != nil {
		return res, err
	}
	defer os.RemoveAll(dir)
	var store blob.Store
	switch driver {
	case "filesystem":
		if store, err = blob.NewFS(filepath.Join(dir, "data"), logger, blob.FSLimits{}); err != nil {
			return res, err
		}
	case "s3":
		stop, endpoint, err := startBenchMinIO(ctx, minioBin, dir)
		if err != nil {
			return res, err
		}
		defer stop()
		if store, err = s3.New(ctx, s3.Config{Endpoint: endpoint, Bucket: "berth-gc", AccessKey: benchS3User, SecretKey: benchS3Secret, PathStyle: true}, logger); err != nil {
			return res, err
		}
	default:
		return res, fmt.Errorf("unknown driver %q (filesystem or s3)", driver)
	}

	loaded := time.Now().Add(-48 * time.Hour)
	p := &localProposer{f: fsm.New(logger), now: func() time.Time { return loaded }}
	var garbage []digest.Digest
	blobOf := func(r, j int) []byte { return fmt.Appendf(nil, "repo %d blob %d", r, j) }
	start := time.Now()
	for r := range repos {
		repo := fmt.Sprintf("team-%03d/service-%06d", r%1000, r)
		var kept []digest.Digest
		for j := range blobsPer {
			b := blobOf(r, j)
			d := digest.FromBytes(b)
			if _, err := p.Propose(ctx, events.BlobLinked{Repo: repo, Digest: d, Size: int64(len(b))}); err != nil {
				return res, err
			}
			if j < blobsPer/2 {
				kept = append(kept, d)
			} else {
				garbage = append(garbage, d)
			}
		}
		m := digest.FromString("manifest of " + repo)
		if _, err := p.Propose(ctx, events.ManifestPut{Repo: repo, Digest: m, MediaType: mediaManifest, Size: 500, Blobs: kept, Tags: []string{"latest"}}); err != nil {
			return res, err
		}
	}
	fmt.Fprintf(out, "%s: applied %d links and %d manifests in %s; writing the %d garbage blobs' bytes\n", driver, res.Blobs, repos, time.Since(start).Round(time.Millisecond), len(garbage))
	start = time.Now()
	if err := parallel(len(garbage), 32, func(i int) error {
		r, j := i/(blobsPer-blobsPer/2), blobsPer/2+i%(blobsPer-blobsPer/2)
		b := blobOf(r, j)
		_, err := store.Put(ctx, garbage[i], int64(len(b)), bytes.NewReader(b))
		return err
	}); err != nil {
		return res, fmt.Errorf("write garbage: %w", err)
	}
	fmt.Fprintf(out, "%s: wrote them in %s\n", driver, time.Since(start).Round(time.Millisecond))

	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	res.HeapLoaded = ms.HeapAlloc
	var peakMark, peakRun atomic.Uint64
	sampling, stopSampling := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Go(func() {
		t := time.NewTicker(10 * time.Millisecond)
		defer t.Stop()
		for sampling.Err() == nil {
			var ms runtime.MemStats
			runtime.ReadMemStats(&ms)
			p.mu.Lock()
			marking := p.sweepStart.IsZero()
			p.mu.Unlock()
			if marking && ms.HeapAlloc > peakMark.Load() {
				peakMark.Store(ms.HeapAlloc)
			}
			if ms.HeapAlloc > peakRun.Load() {
				peakRun.Store(ms.HeapAlloc)
			}
			select {
			case <-sampling.Done():
			case <-t.C:
			}
		}
	})
	p.now = func() time.Time { return time.Now().UTC() }
	job := &gc.Job{Props: p, View: p.f.View, Blobs: store, Fence: func() error { return nil }, Logger: logger, Grace: time.Hour}
	start = time.Now()
	r, err := job.Run(ctx, gc.Options{Grace: time.Hour})
	stopSampling()
	wg.Wait()
	if err != nil {
		return res, err
	}
	res.Mark, res.Sweep = p.sweepStart.Sub(start), p.swept.Sub(p.sweepStart)
	res.HeapPeakMark, res.HeapPeakRun = peakMark.Load(), peakRun.Load()
	res.Candidates, res.Deleted = len(r.Blobs), r.Deleted
	res.PeakRSS = peakRSS()
	if res.Deleted != len(garbage) {
		return res, fmt.Errorf("GC deleted %d blobs, want the %d garbage ones", res.Deleted, len(garbage))
	}
	for _, d := range garbage[:10] {
		if _, err := store.Stat(ctx, d); err == nil {
			return res, fmt.Errorf("garbage %s still in the store after GC", d)
		}
	}
	return res, nil
}

// peakRSS is this process's peak resident set (VmHWM), or -1.
func peakRSS() int64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return -1
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "VmHWM:"); ok {
			var kb int64
			fmt.Sscanf(strings.TrimSpace(v), "%d", &kb)
			return kb << 10
		}
	}
	return -1
}

// startBenchMinIO runs MinIO on a free port with a "berth-gc" bucket.
func startBenchMinIO(ctx context.Context, bin, dir string) (stop func(), endpoint string, err error) {
	endpoint, err = freeAddr()
	if err != nil {
		return nil, "", err
	}
	console, err := freeAddr()
	if err != nil {
		return nil, "", err
	}
	cmd := exec.Command(bin, "server", filepath.Join(dir, "minio"), "--address", endpoint, "--console-address", console, "--quiet")
	cmd.Env = append(os.Environ(), "MINIO_ROOT_USER="+benchS3User, "MINIO_ROOT_PASSWORD="+benchS3Secret, "MINIO_BROWSER=off")
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return nil, "", fmt.Errorf("start MinIO (%s): %w", bin, err)
	}
	stop = func() { stopProc(cmd) }
	if err := makeBuckets(ctx, endpoint, "berth-gc"); err != nil {
		stop()
		return nil, "", err
	}
	return stop, endpoint, nil
}

// benchGCPush runs push-small on one registryd (filesystem) in alternating
// rounds without and with GC running back to back (every other run with
// --delete-untagged), through the admin API as clusterctl does.
func benchGCPush(ctx context.Context, out io.Writer, bin string, rounds int, dur time.Duration, conc int) (GCPushResult, error) {
	var res GCPushResult
	srv, err := startServer(ctx, "berth", bin, nil, func(addr, dir string) []string {
		return []string{"serve", "--addr", addr, "--data-dir", filepath.Join(dir, "data"), "--log-level", "warn"}
	})
	if err != nil {
		return res, err
	}
	defer srv.stop()
	tok, err := os.ReadFile(filepath.Join(srv.dir, "data", "admin.token"))
	if err != nil {
		return res, fmt.Errorf("read the node's admin token: %w", err)
	}
	b := &eventsBench{url: srv.url, token: strings.TrimSpace(string(tok)), c: newClient(srv.url, 64)}
	var push workload
	for _, w := range allWorkloads() {
		if w.name == "push-small" {
			push = w
		}
	}
	var ratios []float64
	for r := range rounds {
		order := []bool{false, true}
		if r%2 == 1 {
			order = []bool{true, false}
		}
		var off, on Result
		for _, withGC := range order {
			if !withGC {
				off = runWorkload(ctx, b.c, push, srv.url, dur, time.Minute, conc)
				continue
			}
			loop, stop := context.WithCancel(ctx)
			var wg sync.WaitGroup
			var runs int
			var runErr error
			wg.Go(func() {
				for i := 0; loop.Err() == nil; i++ {
					code, body, err := b.admin(loop, "POST", fmt.Sprintf("/admin/v1/gc/run?wait=true&deleteUntagged=%v", i%2 == 1), nil)
					if loop.Err() != nil {
						return
					}
					if code == 409 {
						// The run of the last round, whose request was cut
						// off, is still going.
						time.Sleep(100 * time.Millisecond)
						continue
					}
					if err != nil || code != 200 {
						runErr = fmt.Errorf("gc run: %d %s %v", code, body, err)
						return
					}
					runs++
				}
			})
			on = runWorkload(ctx, b.c, push, srv.url, dur, time.Minute, conc)
			stop()
			wg.Wait()
			if runErr != nil {
				return res, runErr
			}
			res.GCRuns += runs
		}
		off.Workload, on.Workload = fmt.Sprintf("push-small r%d", r+1), fmt.Sprintf("push-small (GC running) r%d", r+1)
		printResult(out, off)
		printResult(out, on)
		res.Without, res.With = append(res.Without, off), append(res.With, on)
		if off.OpsPerS > 0 {
			ratios = append(ratios, on.OpsPerS/off.OpsPerS)
		}
	}
	res.Ratio = median(ratios)
	fmt.Fprintf(out, "push-small with GC running back to back (%d runs): %.0f%% of without (median of %d alternating rounds; per round %s)\n",
		res.GCRuns, res.Ratio*100, len(ratios), formatRatios(ratios))
	return res, nil
}
