package main

import (
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"os"
	"runtime"
	"runtime/debug"
	"runtime/pprof"
	"strconv"
	"strings"
	"time"

	"github.com/hashicorp/raft"
	"github.com/opencontainers/go-digest"
	"github.com/spf13/cobra"

	"github.com/berth-registry/berth/events"
	"github.com/berth-registry/berth/fsm"
)

// scaleCmd loads one FSM with many tags and measures what an operator
// cares about at that size: memory, snapshot size and time, restore time,
// and the latency of a tags or catalog page.
func scaleCmd() *cobra.Command {
	var repos, tagsPerRepo, pages int
	var memprofile string
	cmd := &cobra.Command{
		Use:   "scale",
		Short: "Load an FSM with repos×tags and measure RSS, snapshot, restore and page latency",
		RunE: func(cmd *cobra.Command, _ []string) error {
			out := cmd.OutOrStdout()
			logger := slog.New(slog.NewTextHandler(io.Discard, nil))
			base := rssBytes()
			f := fsm.New(logger)
			start := time.Now()
			idx := uint64(0)
			apply := func(p events.Payload) error {
				b, err := events.Encode(events.Event{Time: time.Unix(1700000000, 0).UTC(), Payload: p})
				if err != nil {
					return err
				}
				idx++
				if res := f.Apply(&raft.Log{Index: idx, Type: raft.LogCommand, Data: b}); res != nil {
					return res.(error)
				}
				return nil
			}
			for r := range repos {
				repo := fmt.Sprintf("team-%03d/service-%06d", r%1000, r)
				tags := make([]string, tagsPerRepo)
				for t := range tags {
					tags[t] = "v1." + strconv.Itoa(t)
				}
				if err := apply(events.ManifestPut{Repo: repo, Digest: digest.FromString(repo), MediaType: mediaManifest, Size: 500, Tags: tags}); err != nil {
					return err
				}
			}
			load := time.Since(start)
			runtime.GC()
			debug.FreeOSMemory()
			rss := rssBytes() - base
			total := repos * tagsPerRepo
			fmt.Fprintf(out, "loaded %d tags in %d repositories in %s (%d events)\n", total, repos, load.Round(time.Millisecond), idx)
			fmt.Fprintf(out, "RSS after applying the events one by one: %.0f MiB = %.0f bytes per tag (target <= 1024)\n", float64(rss)/(1<<20), float64(rss)/float64(total))
			if memprofile != "" {
				mf, err := os.Create(memprofile)
				if err != nil {
					return err
				}
				pprof.WriteHeapProfile(mf)
				mf.Close()
			}

			snapFile, err := os.CreateTemp("", "berth-scale-snap-*")
			if err != nil {
				return err
			}
			defer os.Remove(snapFile.Name())
			start = time.Now()
			snap, err := f.Snapshot()
			if err != nil {
				return err
			}
			if err := snap.Persist(&fileSink{f: snapFile}); err != nil {
				return err
			}
			snapTime := time.Since(start)
			fi, _ := os.Stat(snapFile.Name())
			fmt.Fprintf(out, "snapshot: %.0f MiB in %s\n", float64(fi.Size())/(1<<20), snapTime.Round(time.Millisecond))

			rc, err := os.Open(snapFile.Name())
			if err != nil {
				return err
			}
			// Drop the loaded FSM so the restored one is measured alone,
			// as on a node that restarts from its snapshot.
			f, snap = nil, nil
			runtime.GC()
			debug.FreeOSMemory()
			base = rssBytes()
			f2 := fsm.New(logger)
			start = time.Now()
			if err := f2.Restore(rc); err != nil {
				return err
			}
			fmt.Fprintf(out, "restore: %s (target <= 30s)\n", time.Since(start).Round(time.Millisecond))
			runtime.GC()
			debug.FreeOSMemory()
			rss = rssBytes() - base
			fmt.Fprintf(out, "RSS of the restored state: %.0f MiB = %.0f bytes per tag (target <= 1024)\n", float64(rss)/(1<<20), float64(rss)/float64(total))

			view := f2.View()
			rng := rand.New(rand.NewPCG(1, 2))
			var tagLat, catLat []time.Duration
			for range pages {
				r := rng.IntN(repos)
				repo := fmt.Sprintf("team-%03d/service-%06d", r%1000, r)
				t0 := time.Now()
				tags, _ := view.Tags(repo, "", 100)
				tagLat = append(tagLat, time.Since(t0))
				if len(tags) != tagsPerRepo && tagsPerRepo <= 100 {
					return fmt.Errorf("repo %s has %d tags after restore", repo, len(tags))
				}
				last := fmt.Sprintf("team-%03d/service-%06d", rng.IntN(1000), rng.IntN(repos))
				t0 = time.Now()
				view.Repositories(last, 100)
				catLat = append(catLat, time.Since(t0))
			}
			fmt.Fprintf(out, "tags page (n=100) over %d random repos: p50 %s p99 %s (target p99 <= 20ms)\n", pages, ms(percentile(tagLat, 50)), ms(percentile(tagLat, 99)))
			fmt.Fprintf(out, "catalog page (n=100) from random positions: p50 %s p99 %s\n", ms(percentile(catLat, 50)), ms(percentile(catLat, 99)))
			runtime.KeepAlive(f2)
			return nil
		},
	}
	cmd.Flags().IntVar(&repos, "repos", 100000, "repositories")
	cmd.Flags().IntVar(&tagsPerRepo, "tags-per-repo", 10, "tags per repository")
	cmd.Flags().IntVar(&pages, "pages", 10000, "page reads to time")
	cmd.Flags().StringVar(&memprofile, "memprofile", "", "write a heap profile after loading")
	return cmd
}

// rssBytes reads this process's resident set from /proc.
func rssBytes() int64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return kb * 1024
		}
	}
	return 0
}

// fileSink adapts a file to raft.SnapshotSink.
type fileSink struct{ f *os.File }

func (s *fileSink) Write(p []byte) (int, error) { return s.f.Write(p) }
func (s *fileSink) Close() error                { return s.f.Close() }
func (s *fileSink) ID() string                  { return "scale" }
func (s *fileSink) Cancel() error               { return s.f.Close() }
