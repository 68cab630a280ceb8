package main

import (
	"fmt"
	"io"
	"net/url"
	"strconv"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
)

// gcRunAnswer mirrors node.GCRunAnswer.
type gcRunAnswer struct {
	State     string   `json:"state"`
	Run       string   `json:"run"`
	Index     uint64   `json:"index"`
	Blobs     []string `json:"blobs"`
	Manifests []struct {
		Repo   string `json:"repo"`
		Digest string `json:"digest"`
	} `json:"manifests"`
	Deleted   int    `json:"deleted"`
	Bytes     int64  `json:"bytes"`
	OpenRun   string `json:"openRun"`
	OpenPhase string `json:"openPhase"`
}

// gcRecord mirrors fsm.GCRecord: one finished run.
type gcRecord struct {
	Run        string
	Started    time.Time
	Finished   time.Time
	Candidates int
	Manifests  int
	Deleted    int
	Bytes      int64
	Outcome    string
	Reason     string
}

// gcStatusAnswer mirrors node.GCStatusAnswer.
type gcStatusAnswer struct {
	Open *struct {
		Run       string
		Phase     string
		Started   time.Time
		Blobs     int
		Manifests int
	} `json:"open"`
	Runs      []gcRecord  `json:"runs"`
	LastError string      `json:"lastError"`
	Paused    string      `json:"paused"`
	Progress  *gcProgress `json:"progress"`
	Leader    string      `json:"leader"`
	Note      string      `json:"note"`
}

func gcCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{Use: "gc", Short: "Garbage collection: gc run, gc status"}
	var dry, untagged, wait bool
	run := &cobra.Command{
		Use:   "run",
		Short: "Collect garbage now, online (any node: a follower forwards to the leader)",
		Example: `  clusterctl gc run --dry-run --delete-untagged
  clusterctl gc run --wait`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			q := url.Values{}
			q.Set("dryRun", strconv.FormatBool(dry))
			q.Set("deleteUntagged", strconv.FormatBool(untagged))
			q.Set("wait", strconv.FormatBool(wait))
			var a gcRunAnswer
			var err error
			if wait && !dry {
				a, err = runAndWatch(cmd.Context(), g, "/admin/v1/gc/run?"+q.Encode(), newProgressView(cmd.ErrOrStderr()))
			} else {
				err = g.call(cmd.Context(), "POST", "/admin/v1/gc/run?"+q.Encode(), nil, &a)
			}
			if err != nil {
				return err
			}
			printGCRun(cmd.OutOrStdout(), a)
			return nil
		},
	}
	run.Flags().BoolVar(&dry, "dry-run", false, "list what a run at the current index would delete; change nothing")
	run.Flags().BoolVar(&untagged, "delete-untagged", false, "also collect manifests no tag, kept index or kept subject reaches")
	run.Flags().BoolVar(&wait, "wait", false, "wait until the run is done, showing its progress on stderr")
	status := &cobra.Command{
		Use:   "status",
		Short: "Show the open GC run and the last finished ones",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var s gcStatusAnswer
			if err := g.call(cmd.Context(), "GET", "/admin/v1/gc/status", nil, &s); err != nil {
				return err
			}
			printGCStatus(cmd.OutOrStdout(), s)
			return nil
		},
	}
	cmd.AddCommand(run, status)
	return cmd
}

func printGCRun(w io.Writer, a gcRunAnswer) {
	switch a.State {
	case "dry-run":
		fmt.Fprintf(w, "dry run at index %d: a run started now would delete these %d blobs (%s) and %d manifests, less any that is referenced after index %d\n",
			a.Index, len(a.Blobs), iecBytes(a.Bytes), len(a.Manifests), a.Index)
		if a.OpenRun != "" {
			fmt.Fprintf(w, "run %s is still open (%s): a real run finishes it first, and deletes what is left of its candidates too (not listed)\n", a.OpenRun, a.OpenPhase)
		}
		for _, b := range a.Blobs {
			fmt.Fprintf(w, "blob      %s\n", b)
		}
		for _, m := range a.Manifests {
			fmt.Fprintf(w, "manifest  %s@%s\n", m.Repo, m.Digest)
		}
	case "started":
		fmt.Fprintln(w, "gc run started; see clusterctl gc status")
	default:
		human := ""
		if a.Bytes >= 1024 {
			human = " (" + iecBytes(a.Bytes) + ")"
		}
		fmt.Fprintf(w, "gc run %s done: %d blobs deleted, %d bytes reclaimed%s\n", a.Run, a.Deleted, a.Bytes, human)
	}
}

func printGCStatus(w io.Writer, s gcStatusAnswer) {
	if s.Paused != "" {
		fmt.Fprintln(w, s.Paused)
	}
	if s.Open != nil {
		fmt.Fprintf(w, "open run %s: %s since %s, %d blob and %d manifest candidates\n", s.Open.Run, s.Open.Phase, s.Open.Started.Format(time.RFC3339), s.Open.Blobs, s.Open.Manifests)
	}
	if p := s.Progress; p != nil {
		what := "job"
		if p.Run != "" {
			what = "run " + p.Run
		}
		fmt.Fprintf(w, "in progress: %s since %s: %s %s\n", what, p.Started.Format(time.RFC3339), p.Phase, progressCounts(*p))
	}
	if s.Note != "" {
		fmt.Fprintln(w, s.Note)
	}
	if s.LastError != "" {
		fmt.Fprintf(w, "last error on the leader: %s\n", s.LastError)
	}
	if len(s.Runs) == 0 {
		fmt.Fprintln(w, "no finished runs")
		return
	}
	tw := tabwriter.NewWriter(w, 0, 4, 3, ' ', 0)
	fmt.Fprintln(tw, "RUN\tSTARTED\tDURATION\tCANDIDATES\tMANIFESTS\tDELETED\tRECLAIMED\tOUTCOME\tERROR")
	for i := len(s.Runs) - 1; i >= 0; i-- {
		r := s.Runs[i]
		reason := r.Reason
		if reason == "" {
			reason = "-"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%d\t%d\t%s\t%s\t%s\n", r.Run, r.Started.Format(time.RFC3339), r.Finished.Sub(r.Started).Round(time.Millisecond),
			r.Candidates, r.Manifests, r.Deleted, iecBytes(r.Bytes), r.Outcome, reason)
	}
	tw.Flush()
}
