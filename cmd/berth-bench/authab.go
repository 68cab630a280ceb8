package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/crypto/bcrypt"
)

// AuthComparison is one workload against a node with authentication off
// and one with it on.
type AuthComparison struct {
	Workload string   `json:"workload"`
	Off      []Result `json:"off"`
	On       []Result `json:"on"`
	// Ratios are on/off ops/s per round; MedianRatio is what the target
	// (at most 10% slower: ≥ 0.90) reads.
	Ratios      []float64 `json:"ratios"`
	MedianRatio float64   `json:"medianRatio"`
	// TimedTokenFetches counts token requests made inside the timed
	// rounds: 0 when every token was fetched beforehand and lasted.
	TimedTokenFetches int64 `json:"timedTokenFetches"`
}

// authABTarget is issue 10's bar: auth on at most 10% slower than off.
const authABTarget = 0.90

// benchBcryptCost is the least cost Berth accepts: the bench user's
// password is random, and sign-ins happen only outside the timed rounds.
const benchBcryptCost = 10

// benchNamespace owns every repository the workloads use (bench/...).
const benchNamespace = "bench"

// authABCmd runs workloads against two single nodes that differ only in
// auth.mode, alternating rounds as compare does, to show what the token
// check costs per request. The client on both sides follows the Docker
// token flow; against the node without auth it is never challenged.
func authABCmd() *cobra.Command {
	var berthBin, names, as, jsonOut, mdOut, profileDir string
	var rounds int
	var dur, grace time.Duration
	cmd := &cobra.Command{
		Use:   "auth-ab",
		Short: "Start two single nodes, auth.mode off and on, and compare them in alternating rounds",
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			out := cmd.OutOrStdout()
			if as != "developer" && as != "admin" {
				return fmt.Errorf("--as %q: want developer or admin", as)
			}
			wls, err := selectWorkloads(names)
			if err != nil {
				return err
			}
			adminToken := randomHex(24)
			start := func(mode string) (*server, error) {
				env := []string{"BERTH_AUTH_MODE=" + mode, "BERTH_ADMIN_TOKEN=" + adminToken}
				if profileDir != "" {
					env = append(env, "BERTH_HTTP_PPROF=true")
				}
				return startServer(ctx, "auth-"+mode, berthBin, env, func(addr, dir string) []string {
					return []string{"serve", "--addr", addr, "--data-dir", filepath.Join(dir, "data"), "--log-level", "warn"}
				})
			}
			off, err := start("off")
			if err != nil {
				return err
			}
			defer off.stop()
			on, err := start("on")
			if err != nil {
				return err
			}
			defer on.stop()

			user, password := "bench-admin", adminToken
			if as == "developer" {
				user, password = "bench", randomHex(16)
				// Both nodes hold the same state, so only auth.mode differs.
				for _, s := range []*server{off, on} {
					if err := applyBenchUser(ctx, s.url, adminToken, user, password); err != nil {
						return fmt.Errorf("%s: %w", s.name, err)
					}
				}
			}
			fmt.Fprintf(out, "auth off at %s, auth on at %s; signed in as %s (%s)\n", off.url, on.url, user, as)
			clients := map[*server]*client{
				off: newClient(off.url, 64).withAuth(user, password),
				on:  newClient(on.url, 64).withAuth(user, password),
			}

			var comps []AuthComparison
			for _, wl := range wls {
				for _, s := range []*server{off, on} {
					c := clients[s]
					if wl.setup != nil {
						if err := wl.setup(ctx, c); err != nil {
							return fmt.Errorf("setup %s on %s: %w", wl.name, s.name, err)
						}
					}
					// A fresh token per repository, so none expires
					// within the rounds and none is fetched in them.
					if wl.access != nil {
						for repo, actions := range wl.access(wl.concurrency) {
							if err := c.tokens.prefetch(ctx, c, repo, actions); err != nil {
								return fmt.Errorf("token for %s on %s: %w", repo, s.name, err)
							}
						}
					}
				}
				fetched := clients[on].tokens.fetches.Load() + clients[off].tokens.fetches.Load()
				comp := AuthComparison{Workload: wl.name}
				for round := range rounds {
					order := []*server{off, on}
					if round%2 == 1 {
						order = []*server{on, off}
					}
					got := map[*server]Result{}
					for _, s := range order {
						r := runMeasured(ctx, clients[s], wl, s, dur, grace)
						printResult(out, r)
						got[s] = r
					}
					comp.Off, comp.On = append(comp.Off, got[off]), append(comp.On, got[on])
					if got[off].OpsPerS > 0 {
						comp.Ratios = append(comp.Ratios, got[on].OpsPerS/got[off].OpsPerS)
					}
				}
				comp.TimedTokenFetches = clients[on].tokens.fetches.Load() + clients[off].tokens.fetches.Load() - fetched
				comp.MedianRatio = median(comp.Ratios)
				comps = append(comps, comp)
				if ctx.Err() != nil {
					return ctx.Err()
				}
			}
			fmt.Fprintln(out)
			writeAuthMarkdown(out, comps, as, rounds, dur)
			if mdOut != "" {
				var b bytes.Buffer
				writeAuthMarkdown(&b, comps, as, rounds, dur)
				if err := os.WriteFile(mdOut, b.Bytes(), 0o644); err != nil {
					return err
				}
			}
			if jsonOut != "" {
				b, _ := json.MarshalIndent(comps, "", "  ")
				if err := os.WriteFile(jsonOut, b, 0o644); err != nil {
					return err
				}
			}
			if profileDir != "" {
				if err := profileAuth(ctx, out, wls, clients, off, on, adminToken, dur, grace, profileDir); err != nil {
					return err
				}
			}
			for _, c := range comps {
				for _, r := range append(c.Off, c.On...) {
					if r.Errors > 0 {
						return fmt.Errorf("%s on %s had %d errors: %s", c.Workload, r.Target, r.Errors, r.FirstErr)
					}
				}
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&berthBin, "berth", "bin/registryd", "registryd binary")
	cmd.Flags().StringVar(&names, "workload", "manifest-head,push-small", "comma-separated workloads")
	cmd.Flags().StringVar(&as, "as", "developer", "who the client signs in as: developer (a User with the developer role in namespace bench) or admin (the admin token as password)")
	cmd.Flags().IntVar(&rounds, "rounds", 3, "rounds per workload (at least 3 for a median)")
	cmd.Flags().DurationVar(&dur, "duration", 5*time.Second, "time per workload per node per round")
	cmd.Flags().DurationVar(&grace, "grace", time.Minute, "how long an op may run past its round before it is cut off")
	cmd.Flags().StringVar(&jsonOut, "json", "", "write all results as JSON")
	cmd.Flags().StringVar(&mdOut, "markdown", "", "write the summary table as Markdown")
	cmd.Flags().StringVar(&profileDir, "profile", "", "after the rounds, run each workload once more per node while taking a CPU profile of it, into this directory (untimed)")
	return cmd
}

// runMeasured runs one round of wl against s and adds the server's CPU
// time per op, read from /proc around the round (left zero where /proc
// cannot be read).
func runMeasured(ctx context.Context, c *client, wl workload, s *server, dur, grace time.Duration) Result {
	pid := s.procs[0].Process.Pid
	before, berr := procCPU(pid)
	r := runWorkload(ctx, c, wl, s.name, dur, grace, 0)
	after, aerr := procCPU(pid)
	if berr == nil && aerr == nil && r.Ops > 0 {
		r.ServerCPUPerOp = (after - before) / time.Duration(r.Ops)
	}
	return r
}

// applyBenchUser creates, through the admin API, the namespace that owns
// bench/... and a User with the developer role in it: the ordinary
// pusher, whose every request the gate decides from the namespace.
func applyBenchUser(ctx context.Context, base, adminToken, user, password string) error {
	hash, err := bcrypt.GenerateFromPassword([]byte(password), benchBcryptCost)
	if err != nil {
		return err
	}
	doc := fmt.Sprintf(`apiVersion: berth.dev/v1
kind: User
metadata: {name: %s}
spec: {passwordHash: %q}
---
apiVersion: berth.dev/v1
kind: Namespace
metadata: {name: %s}
spec:
  members:
    - {user: %s, role: developer}
`, user, hash, benchNamespace, user)
	req, err := http.NewRequestWithContext(ctx, "POST", base+"/admin/v1/apply", strings.NewReader(doc))
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+adminToken)
	req.Header.Set("Content-Type", "application/yaml")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("apply the bench user: %w", err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("apply the bench user: status %d: %s", resp.StatusCode, bytes.TrimSpace(body))
	}
	return nil
}

// profileAuth runs each workload once more per node while the node
// profiles itself (/debug/pprof/profile with the admin token), and
// writes <dir>/<workload>-<node>.pprof. These rounds are not reported:
// profiling slows the node it watches.
func profileAuth(ctx context.Context, out io.Writer, wls []workload, clients map[*server]*client, off, on *server, adminToken string, dur, grace time.Duration, dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	secs := max(int(dur/time.Second), 1)
	for _, wl := range wls {
		for _, s := range []*server{off, on} {
			type prof struct {
				b   []byte
				err error
			}
			done := make(chan prof, 1)
			go func() {
				req, err := http.NewRequestWithContext(ctx, "GET", fmt.Sprintf("%s/debug/pprof/profile?seconds=%d", s.url, secs), nil)
				if err != nil {
					done <- prof{err: err}
					return
				}
				req.Header.Set("Authorization", "Bearer "+adminToken)
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					done <- prof{err: err}
					return
				}
				defer resp.Body.Close()
				b, err := io.ReadAll(resp.Body)
				if err == nil && resp.StatusCode != http.StatusOK {
					err = fmt.Errorf("status %d: %s", resp.StatusCode, bytes.TrimSpace(b))
				}
				done <- prof{b, err}
			}()
			r := runWorkload(ctx, clients[s], wl, s.name+" (profiled)", dur, grace, 0)
			printResult(out, r)
			p := <-done
			if p.err != nil {
				return fmt.Errorf("profile %s on %s: %w", wl.name, s.name, p.err)
			}
			path := filepath.Join(dir, wl.name+"-"+strings.TrimPrefix(s.name, "auth-")+".pprof")
			if err := os.WriteFile(path, p.b, 0o644); err != nil {
				return err
			}
			fmt.Fprintf(out, "profile: %s\n", path)
		}
	}
	return nil
}

func writeAuthMarkdown(w io.Writer, comps []AuthComparison, as string, rounds int, dur time.Duration) {
	fmt.Fprintf(w, "Machine: %d CPUs, %s/%s, %s. One node each, auth.mode off and on; client signed in as %s. %d rounds of %s per node, alternating.\n\n",
		runtime.NumCPU(), runtime.GOOS, runtime.GOARCH, runtime.Version(), as, rounds, dur)
	fmt.Fprintln(w, "| workload | off ops/s | on ops/s | off p50 / p99 | on p50 / p99 | per-round on/off | median on/off | target ≥ 0.90 | server CPU per op off / on | token fetches in timed rounds |")
	fmt.Fprintln(w, "|---|---|---|---|---|---|---|---|---|---|")
	ops := func(r Result) float64 { return r.OpsPerS }
	p50 := func(r Result) float64 { return float64(r.P50) }
	p99 := func(r Result) float64 { return float64(r.P99) }
	cpu := func(r Result) float64 { return float64(r.ServerCPUPerOp) }
	for _, c := range comps {
		met := "met"
		if c.MedianRatio < authABTarget {
			met = "**not met**"
		}
		offCPU, onCPU := time.Duration(medianOf(c.Off, cpu)), time.Duration(medianOf(c.On, cpu))
		cpuCol := "–"
		if offCPU > 0 && onCPU > 0 {
			cpuCol = fmt.Sprintf("%s / %s (%+.0f%%)", us(offCPU), us(onCPU), 100*(float64(onCPU)/float64(offCPU)-1))
		}
		fmt.Fprintf(w, "| %s | %.1f | %.1f | %s / %s | %s / %s | %s | **%.2f** | %s | %s | %d |\n", c.Workload,
			medianOf(c.Off, ops), medianOf(c.On, ops),
			ms(time.Duration(medianOf(c.Off, p50))), ms(time.Duration(medianOf(c.Off, p99))),
			ms(time.Duration(medianOf(c.On, p50))), ms(time.Duration(medianOf(c.On, p99))),
			formatRatios(c.Ratios), c.MedianRatio, met, cpuCol, c.TimedTokenFetches)
	}
}

// us formats a duration in microseconds, the scale of CPU per request.
func us(d time.Duration) string { return fmt.Sprintf("%.1f µs", float64(d)/1e3) }

func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}
