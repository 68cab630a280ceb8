package main

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
	"runtime"
	"syscall"
	"time"

	"github.com/spf13/cobra"
)

// server is one registry process started for a comparison.
type server struct {
	name  string
	url   string
	procs []*exec.Cmd // everything this registry runs on, stopped together
	dir   string
}

func freeAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}

// startServer runs bin with args (and env added to this process's
// environment) on a free port and a fresh temp dir, and waits until /v2/
// answers 200, or 401 from a registry that asks for a token.
func startServer(ctx context.Context, name, bin string, env []string, args func(addr, dir string) []string) (*server, error) {
	dir, err := os.MkdirTemp("", "berth-bench-"+name+"-")
	if err != nil {
		return nil, err
	}
	addr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, args(addr, dir)...)
	if env != nil {
		cmd.Env = append(os.Environ(), env...)
	}
	logf, _ := os.Create(filepath.Join(dir, "server.log"))
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	s := &server{name: name, url: "http://" + addr, procs: []*exec.Cmd{cmd}, dir: dir}
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Get(s.url + "/v2/")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK || resp.StatusCode == http.StatusUnauthorized {
				return s, nil
			}
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			s.stop()
			b, _ := os.ReadFile(filepath.Join(dir, "server.log"))
			return nil, fmt.Errorf("%s did not start: %v\n%s", name, err, b)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func (s *server) stop() {
	for i := len(s.procs) - 1; i >= 0; i-- {
		stopProc(s.procs[i])
	}
	os.RemoveAll(s.dir)
}

func stopProc(cmd *exec.Cmd) {
	syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM)
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(15 * time.Second):
		syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		<-done
	}
}

const distributionConfig = `version: 0.1
log:
  level: error
storage:
  filesystem:
    rootdirectory: %s
  delete:
    enabled: true
  cache:
    blobdescriptor: inmemory
http:
  addr: %s
`

// Comparison is one workload's side-by-side outcome.
type Comparison struct {
	Workload     string    `json:"workload"`
	Berth        []Result  `json:"berth"`
	Distribution []Result  `json:"distribution"`
	Ratios       []float64 `json:"ratios"`
	MedianRatio  float64   `json:"medianRatio"`
	// LowerBound: Distribution left ops unfinished, so the ratio is at least
	// MedianRatio.
	LowerBound bool `json:"lowerBound,omitempty"`
}

func compareCmd() *cobra.Command {
	var berthBin, distBin, names, jsonOut, mdOut string
	var rounds int
	var dur, grace time.Duration
	cmd := &cobra.Command{
		Use:   "compare",
		Short: "Start Berth and CNCF Distribution on fresh temp dirs and compare them, alternating A B A B",
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			wls, err := selectWorkloads(names)
			if err != nil {
				return err
			}
			berth, err := startServer(ctx, "berth", berthBin, nil, func(addr, dir string) []string {
				return []string{"serve", "--addr", addr, "--data-dir", dir, "--log-level", "warn"}
			})
			if err != nil {
				return err
			}
			defer berth.stop()
			dist, err := startServer(ctx, "distribution", distBin, nil, func(addr, dir string) []string {
				cfg := filepath.Join(dir, "config.yml")
				os.WriteFile(cfg, fmt.Appendf(nil, distributionConfig, filepath.Join(dir, "data"), addr), 0o644)
				return []string{"serve", cfg}
			})
			if err != nil {
				return err
			}
			defer dist.stop()
			return runComparison(ctx, cmd.OutOrStdout(), wls, berth, dist, rounds, dur, grace, mdOut, jsonOut)
		},
	}
	cmd.Flags().StringVar(&berthBin, "berth", "bin/registryd", "registryd binary")
	cmd.Flags().StringVar(&distBin, "distribution", "bin/registry", "CNCF Distribution registry binary")
	cmd.Flags().StringVar(&names, "workload", "all", "comma-separated workloads")
	cmd.Flags().DurationVar(&grace, "grace", time.Minute, "how long an op may run past its round before it is cut off")
	cmd.Flags().IntVar(&rounds, "rounds", 3, "rounds per workload (at least 3 for a median)")
	cmd.Flags().DurationVar(&dur, "duration", 5*time.Second, "time per workload per registry per round")
	cmd.Flags().StringVar(&jsonOut, "json", "", "write all results as JSON")
	cmd.Flags().StringVar(&mdOut, "markdown", "", "write the summary table as Markdown")
	return cmd
}

func medianOf(rs []Result, f func(Result) float64) float64 {
	xs := make([]float64, len(rs))
	for i, r := range rs {
		xs[i] = f(r)
	}
	return median(xs)
}

func writeMarkdown(w io.Writer, comps []Comparison, rounds int, dur time.Duration) {
	fmt.Fprintf(w, "Machine: %d CPUs, %s/%s, %s. %d rounds of %s per registry, alternating.\n\n", runtime.NumCPU(), runtime.GOOS, runtime.GOARCH, runtime.Version(), rounds, dur)
	fmt.Fprintln(w, "| workload | Berth ops/s | Distribution ops/s | Berth MB/s | Distribution MB/s | Berth p50 / p99 | Distribution p50 / p99 | median ratio Berth/Distribution |")
	fmt.Fprintln(w, "|---|---|---|---|---|---|---|---|")
	var notes []string
	for _, c := range comps {
		ops := func(r Result) float64 { return r.OpsPerS }
		mb := func(r Result) float64 { return r.MBPerS }
		p50 := func(r Result) float64 { return float64(r.P50) }
		p99 := func(r Result) float64 { return float64(r.P99) }
		fmt.Fprintf(w, "| %s | %.1f | %.1f | %.1f | %.1f | %s / %s | %s / %s | **%s%.2f×** |\n", c.Workload,
			medianOf(c.Berth, ops), medianOf(c.Distribution, ops), medianOf(c.Berth, mb), medianOf(c.Distribution, mb),
			ms(time.Duration(medianOf(c.Berth, p50))), ms(time.Duration(medianOf(c.Berth, p99))),
			ms(time.Duration(medianOf(c.Distribution, p50))), ms(time.Duration(medianOf(c.Distribution, p99))),
			bound(c.LowerBound), c.MedianRatio)
		if c.LowerBound {
			notes = append(notes, fmt.Sprintf("%s: Distribution did not finish every op within the round plus the grace period; the ratio is a lower bound, counting each cut-off op as if it had just finished.", c.Workload))
		}
	}
	for _, n := range notes {
		fmt.Fprintf(w, "\n%s\n", n)
	}
}

// runComparison sets up fixtures once per registry, then runs every
// workload against both in alternation (A B, B A, ...) for the given
// rounds and reports per-workload medians and the median ratio.
func bound(lower bool) string {
	if lower {
		return "≥ "
	}
	return ""
}

func runComparison(ctx context.Context, out io.Writer, wls []workload, berth, dist *server, rounds int, dur, grace time.Duration, mdOut, jsonOut string) error {
	servers := []*server{berth, dist}
	clients := map[string]*client{berth.name: newClient(berth.url, 64), dist.name: newClient(dist.url, 64)}

	var comps []Comparison
	for _, wl := range wls {
		// Fixtures once per instance, just before the workload that needs
		// them: the big listings' fixtures (10k repositories) keep object
		// storage busy for a while, which must not weigh on the
		// workloads before them.
		if wl.setup != nil {
			for _, s := range servers {
				start := time.Now()
				if err := wl.setup(ctx, clients[s.name]); err != nil {
					return fmt.Errorf("setup %s on %s: %w", wl.name, s.name, err)
				}
				fmt.Fprintf(out, "setup %-22s on %-12s %s\n", wl.name, s.name, time.Since(start).Round(time.Millisecond))
			}
		}
		comp := Comparison{Workload: wl.name}
		for round := range rounds {
			// Alternate who goes first: A B, B A, A B...
			order := servers
			if round%2 == 1 {
				order = []*server{dist, berth}
			}
			got := map[string]Result{}
			for _, s := range order {
				r := runWorkload(ctx, clients[s.name], wl, s.name, dur, grace, 0)
				printResult(out, r)
				got[s.name] = r
			}
			comp.Berth = append(comp.Berth, got["berth"])
			comp.Distribution = append(comp.Distribution, got["distribution"])
			d := got["distribution"]
			if d.Unfinished > 0 {
				comp.LowerBound = true
				if m := d.maxOpsPerS(); m > 0 {
					comp.Ratios = append(comp.Ratios, got["berth"].OpsPerS/m)
				}
			} else if d.OpsPerS > 0 {
				comp.Ratios = append(comp.Ratios, got["berth"].OpsPerS/d.OpsPerS)
			}
		}
		comp.MedianRatio = median(comp.Ratios)
		comps = append(comps, comp)
		if ctx.Err() != nil {
			return ctx.Err()
		}
	}
	fmt.Fprintln(out)
	writeMarkdown(out, comps, rounds, dur)
	if mdOut != "" {
		f, err := os.Create(mdOut)
		if err != nil {
			return err
		}
		writeMarkdown(f, comps, rounds, dur)
		f.Close()
	}
	if jsonOut != "" {
		b, _ := json.MarshalIndent(comps, "", "  ")
		if err := os.WriteFile(jsonOut, b, 0o644); err != nil {
			return err
		}
	}
	for _, c := range comps {
		for _, r := range append(c.Berth, c.Distribution...) {
			if r.Errors > 0 {
				return fmt.Errorf("%s on %s had %d errors: %s", c.Workload, r.Target, r.Errors, r.FirstErr)
			}
		}
	}
	return nil
}
