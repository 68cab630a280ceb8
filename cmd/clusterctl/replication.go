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
		Short: "Replication policies: replication status [NAME]",
		Long: `A mirror policy (kind: ReplicationPolicy, mode: mirror) makes this cluster
follow a Berth origin's event stream. Its leader applies each event and
commits how far it got (the cursor, an origin index) through the log.`,
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) == 0 {
				return cmd.Help()
			}
			return fmt.Errorf("unknown command %q for clusterctl replication: use status", args[0])
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
	cmd.AddCommand(status)
	return cmd
}

// printReplication writes one row per policy, then each policy's last
// error on a line of its own (errors are long).
func printReplication(w io.Writer, ans replicationAnswer, now time.Time) {
	if len(ans.Policies) == 0 {
		fmt.Fprintln(w, "no enabled mirror policies (kind: ReplicationPolicy, mode: mirror)")
		return
	}
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
		fmt.Fprintln(w, "(no leader answered: cursors are this node's committed ones; lag is unknown)")
	}
}
