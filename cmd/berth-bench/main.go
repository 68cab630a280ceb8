// Command berth-bench is a load generator for any OCI registry, in the
// spirit of zot's zb: `run` measures one registry, `compare` starts Berth
// and CNCF Distribution side by side and reports their ratio, `auth-ab`
// compares a Berth node with authentication on against one with it off,
// and `limits` measures the machine's physical limits to read the numbers
// against. With credentials the client follows the Docker token flow
// (tokens.go), as docker and crane do.
package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"
)

func main() {
	root := &cobra.Command{Use: "berth-bench", Short: "Benchmark OCI registries", SilenceUsage: true}
	root.AddCommand(runCmd(), compareCmd(), compareClusterCmd(), limitsCmd(), scaleCmd(), eventsCmd(), authABCmd(), gcCmd(), mirrorCmd())
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := root.ExecuteContext(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "berth-bench:", err)
		os.Exit(1)
	}
}

func selectWorkloads(names string) ([]workload, error) {
	all := allWorkloads()
	if names == "" || names == "all" {
		return all, nil
	}
	var out []workload
	for _, n := range strings.Split(names, ",") {
		found := false
		for _, w := range all {
			if w.name == strings.TrimSpace(n) {
				out = append(out, w)
				found = true
			}
		}
		if !found {
			var known []string
			for _, w := range all {
				known = append(known, w.name)
			}
			return nil, fmt.Errorf("unknown workload %q (known: %s)", n, strings.Join(known, ", "))
		}
	}
	return out, nil
}

func runCmd() *cobra.Command {
	var url, names, jsonOut, creds string
	var conc int
	var dur time.Duration
	cmd := &cobra.Command{
		Use:   "run",
		Short: "Run workloads against one registry URL",
		RunE: func(cmd *cobra.Command, _ []string) error {
			wls, err := selectWorkloads(names)
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			c := newClient(url, 64)
			if creds != "" {
				user, password, err := parseCredentials(creds)
				if err != nil {
					return err
				}
				c.withAuth(user, password)
			}
			var results []Result
			for _, wl := range wls {
				if wl.setup != nil {
					if err := wl.setup(ctx, c); err != nil {
						return fmt.Errorf("setup %s: %w", wl.name, err)
					}
				}
				if c.tokens != nil && wl.access != nil {
					n := conc
					if n <= 0 {
						n = wl.concurrency
					}
					for repo, actions := range wl.access(n) {
						if err := c.tokens.prefetch(ctx, c, repo, actions); err != nil {
							return fmt.Errorf("token for %s: %w", repo, err)
						}
					}
				}
				r := runWorkload(ctx, c, wl, url, dur, time.Minute, conc)
				results = append(results, r)
				printResult(cmd.OutOrStdout(), r)
			}
			if jsonOut != "" {
				b, _ := json.MarshalIndent(results, "", "  ")
				return os.WriteFile(jsonOut, b, 0o644)
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&url, "url", "http://127.0.0.1:5000", "registry base URL")
	cmd.Flags().StringVar(&names, "workload", "all", "comma-separated workloads")
	cmd.Flags().IntVar(&conc, "concurrency", 0, "workers (0: each workload's default)")
	cmd.Flags().DurationVar(&dur, "duration", 10*time.Second, "time per workload")
	cmd.Flags().StringVar(&jsonOut, "json", "", "also write results as JSON to this file")
	cmd.Flags().StringVar(&creds, "auth", "", "user:password for the Docker token flow (tokens are fetched before each workload, untimed)")
	return cmd
}
