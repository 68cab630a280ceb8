package main

import (
	"fmt"
	"io"
	"net/url"
	"strconv"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/berth-registry/berth/replication"
)

// replicationAnswer mirrors node.ReplicationStatusAnswer.
type replicationAnswer struct {
	Leader   bool                 `json:"leader"`
	Policies []replication.Status `json:"policies"`
}

func replicationCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "replication",
		Short: "Replication policies: replication status [NAME], replication run NAME",
		Long: `A mirror policy (kind: ReplicationPolicy, mode: mirror) makes this cluster
follow a Berth origin's event stream. Its leader applies each event and
commits how far it got (the cursor, an origin index) through the log.

A push policy (mode: push) copies this cluster's artifacts to another
registry: on every change (trigger: event), on a cron schedule, or when
'clusterctl replication run NAME' starts a job. A job reports each artifact
it copied through the log, so a new leader resumes it where it stopped.`,
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) == 0 {
				return cmd.Help()
			}
			return fmt.Errorf("unknown command %q for clusterctl replication: use status or run", args[0])
		},
	}
	var output string
	status := &cobra.Command{
		Use:   "status [NAME]",
		Short: "Per mirror policy: cursor, origin head, lag in entries and seconds, last error, bytes copied",
		Example: `  clusterctl replication status
  clusterctl replication status follow-eu -o json`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			path := "/admin/v1/replication/status"
			if len(args) == 1 {
				path += "?name=" + url.QueryEscape(args[0])
			}
			var ans replicationAnswer
			if err := g.call(cmd.Context(), "GET", path, nil, &ans); err != nil {
				return err
			}
			switch output {
			case "json":
				return printJSON(cmd.OutOrStdout(), ans)
			case "":
				printReplication(cmd.OutOrStdout(), ans, time.Now())
				return nil
			}
			return fmt.Errorf("unknown output format %q: use json", output)
		},
	}
	status.Flags().StringVarP(&output, "output", "o", "", "output format: json (default: a table)")
	cmd.AddCommand(status, replicationRunCmd(g))
	return cmd
}

// replicationRunAnswer mirrors node.ReplicationRunAnswer.
type replicationRunAnswer struct {
	Policy string `json:"policy"`
	Job    string `json:"job"`
}

func replicationRunCmd(g *globals) *cobra.Command {
	var output string
	cmd := &cobra.Command{
		Use:   "run NAME",
		Short: "Start a job of push policy NAME now; its progress shows in replication status NAME",
		Example: `  clusterctl replication run to-dr
  clusterctl replication run to-dr -o json`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var ans replicationRunAnswer
			if err := g.call(cmd.Context(), "POST", "/admin/v1/replication/run/"+url.PathEscape(args[0]), nil, &ans); err != nil {
				return err
			}
			switch output {
			case "json":
				return printJSON(cmd.OutOrStdout(), ans)
			case "":
				fmt.Fprintf(cmd.OutOrStdout(), "started job %s of %s (clusterctl replication status %s shows its progress)\n", ans.Job, ans.Policy, ans.Policy)
				return nil
			}
			return fmt.Errorf("unknown output format %q: use json", output)
		},
	}
	cmd.Flags().StringVarP(&output, "output", "o", "", "output format: json")
	return cmd
}

// printReplication writes one row per policy, then each policy's last
// error on a line of its own (errors are long).
func printReplication(w io.Writer, ans replicationAnswer, now time.Time) {
	if len(ans.Policies) == 0 {
		fmt.Fprintln(w, "no enabled replication policies (kind: ReplicationPolicy, mode: mirror, push or proxy)")
		return
	}
	var mirrors, pushes, proxies []replication.Status
	for _, st := range ans.Policies {
		switch st.Mode {
		case "push":
			pushes = append(pushes, st)
		case "proxy":
			proxies = append(proxies, st)
		default:
			mirrors = append(mirrors, st)
		}
	}
	if len(mirrors) > 0 {
		printMirrors(w, ans.Leader, mirrors, now)
	}
	if len(pushes) > 0 {
		if len(mirrors) > 0 {
			fmt.Fprintln(w)
		}
		printPushes(w, ans.Leader, pushes, now)
	}
	if len(proxies) > 0 {
		if len(mirrors)+len(pushes) > 0 {
			fmt.Fprintln(w)
		}
		printProxies(w, proxies)
	}
	for _, st := range ans.Policies {
		if st.LastError != "" {
			when := ""
			if !st.ErrorTime.IsZero() {
				when = " (" + st.ErrorTime.UTC().Format(time.RFC3339) + ")"
			}
			fmt.Fprintf(w, "%s: last error%s: %s\n", st.Policy, when, st.LastError)
		}
	}
	if !ans.Leader {
		fmt.Fprintln(w, "(no leader answered: cursors and jobs are this node's committed ones; lag is unknown)")
	}
}

// printPushes writes one row per push policy: its newest job and what
// this leader term copied.
func printPushes(w io.Writer, leader bool, pushes []replication.Status, now time.Time) {
	tw := tabwriter.NewWriter(w, 0, 4, 3, ' ', 0)
	fmt.Fprintln(tw, "PUSH POLICY\tREGISTRY\tSTATE\tJOB\tJOB STATE\tJOB ARTIFACTS\tJOB BYTES\tCURSOR\tCOPIED\tLAST EVENT")
	for _, st := range pushes {
		state := "stopped"
		switch {
		case st.Running && st.LastError != "":
			state = "retrying"
		case st.Running:
			state = "running"
		case st.LastError != "":
			state = "error"
		case !leader:
			state = "unknown"
		}
		job, jobState := "-", "-"
		if st.Job != "" {
			job, jobState = st.Job, st.JobState
		}
		last := "-"
		if !st.LastEvent.IsZero() {
			last = now.Sub(st.LastEvent).Truncate(time.Second).String() + " ago"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%d\t%sB\t%d\t%d (%sB)\t%s\n", st.Policy, st.Registry, state, job, jobState,
			st.JobArtifacts, humanBytes(st.JobBytes), st.Cursor, st.Artifacts, humanBytes(st.Bytes), last)
	}
	tw.Flush()
}

// printProxies writes one row per pull-through policy: every node serves
// them, so there is no leader state, only whether the upstream resolves.
func printProxies(w io.Writer, proxies []replication.Status) {
	tw := tabwriter.NewWriter(w, 0, 4, 3, ' ', 0)
	fmt.Fprintln(tw, "PROXY POLICY\tREGISTRY\tSTATE\tTTL")
	for _, st := range proxies {
		state := "serving"
		if !st.Running {
			state = "error"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", st.Policy, st.Registry, state, st.TTL)
	}
	tw.Flush()
}

// printMirrors writes one row per mirror policy.
func printMirrors(w io.Writer, leader bool, mirrors []replication.Status, now time.Time) {
	ans := replicationAnswer{Leader: leader, Policies: mirrors}
	tw := tabwriter.NewWriter(w, 0, 4, 3, ' ', 0)
	fmt.Fprintln(tw, "POLICY\tREGISTRY\tSTATE\tCURSOR\tORIGIN HEAD\tLAG\tLAG TIME\tCOPIED\tLAST EVENT")
	for _, st := range ans.Policies {
		state := "stopped"
		switch {
		case st.Syncing:
			state = "syncing"
		case st.Running && st.LastError != "":
			state = "retrying"
		case st.Running:
			state = "following"
		case st.LastError != "":
			state = "error"
		case !ans.Leader:
			state = "unknown"
		}
		last := "-"
		if !st.LastEvent.IsZero() {
			last = now.Sub(st.LastEvent).Truncate(time.Second).String() + " ago"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%d\t%d\t%s\t%s\t%s\n", st.Policy, st.Registry, state, st.Cursor, st.OriginHead,
			st.LagEntries, strconv.FormatFloat(st.LagSeconds, 'f', 1, 64)+"s", humanBytes(st.Bytes)+"B", last)
	}
	tw.Flush()
}
