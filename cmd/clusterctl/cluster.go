package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
)

// nodeStatus mirrors what the node reports per member.
type nodeStatus struct {
	ID           string `json:"id"`
	APIAddr      string `json:"apiAddr"`
	RaftAddr     string `json:"raftAddr"`
	Region       string `json:"region,omitempty"`
	State        string `json:"state"`
	Term         uint64 `json:"term"`
	CommitIndex  uint64 `json:"commitIndex"`
	AppliedIndex uint64 `json:"appliedIndex"`
	LastIndex    uint64 `json:"lastIndex"`
	Leader       string `json:"leader"`
	Version      string `json:"version,omitempty"`
	Voter        bool   `json:"voter"`
	Gossip       string `json:"gossip,omitempty"`
	Error        string `json:"error,omitempty"`
	Halted       string `json:"halted,omitempty"`
	ReadOnly     bool   `json:"readOnly,omitempty"`
	Events       *struct {
		State     string `json:"state"`
		Cursor    uint64 `json:"cursor"`
		Published uint64 `json:"published"`
		Lag       uint64 `json:"lag"`
		Error     string `json:"error,omitempty"`
		Pulls     *struct {
			Published, Dropped, Failed uint64
		} `json:"pulls,omitempty"`
	} `json:"events,omitempty"`
}

type clusterStatus struct {
	Leader string       `json:"leader"`
	Nodes  []nodeStatus `json:"nodes"`
	// ReadOnly is the mode as the answering node applied it; nil from a
	// node older than read-only mode.
	ReadOnly *readOnlyState `json:"readOnly,omitempty"`
}

func statusCmd(g *globals) *cobra.Command {
	var output string
	var wait time.Duration
	cmd := &cobra.Command{
		Use:   "status",
		Short: "Show nodes, leader, term, commit and applied index, lag and gossip health",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var st clusterStatus
			if cmd.Flags().Changed("wait") {
				var err error
				if st, err = g.waitHealthy(cmd.Context(), wait, cmd.ErrOrStderr()); err != nil {
					return err
				}
			} else if err := g.call(cmd.Context(), "GET", "/admin/v1/cluster/status", nil, &st); err != nil {
				return err
			}
			if output == "json" {
				return printJSON(cmd.OutOrStdout(), st)
			}
			if output != "" {
				return fmt.Errorf("unknown output format %q: use json", output)
			}
			printStatus(cmd.OutOrStdout(), st)
			return nil
		},
	}
	cmd.Flags().StringVarP(&output, "output", "o", "", "output format: json (default: table)")
	cmd.Flags().DurationVar(&wait, "wait", 60*time.Second, "wait until a leader is known and every node is a healthy voter, printing progress; fail after this long (--wait alone: 60s)")
	cmd.Flags().Lookup("wait").NoOptDefVal = "60s"
	return cmd
}

func printStatus(w io.Writer, st clusterStatus) {
	fmt.Fprintf(w, "Leader: %s\n", orDash(st.Leader))
	if st.ReadOnly != nil {
		fmt.Fprintf(w, "Mode:   %s\n", describeReadOnly(*st.ReadOnly))
	}
	fmt.Fprintln(w)
	var leaderCommit uint64
	for _, n := range st.Nodes {
		if n.ID == st.Leader {
			leaderCommit = n.CommitIndex
		}
	}
	tw := tabwriter.NewWriter(w, 0, 4, 3, ' ', 0)
	fmt.Fprintln(tw, "NODE\tSTATE\tTERM\tCOMMIT\tAPPLIED\tLAG\tGOSSIP\tAPI\tRAFT")
	for _, n := range st.Nodes {
		lag := "-"
		if n.Error == "" && leaderCommit >= n.AppliedIndex {
			lag = fmt.Sprint(leaderCommit - n.AppliedIndex)
		}
		state := n.State
		switch {
		case n.Error != "":
			state = "unreachable"
		case n.Halted != "":
			state = "halted"
		case n.ReadOnly:
			state += " (read-only)"
		}
		// An unreachable node's numbers are unknown, not zero.
		term, commit, applied := fmt.Sprint(n.Term), fmt.Sprint(n.CommitIndex), fmt.Sprint(n.AppliedIndex)
		if n.Error != "" {
			term, commit, applied = "-", "-", "-"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", n.ID, state, term, commit, applied, lag, orDash(n.Gossip), n.APIAddr, n.RaftAddr)
	}
	tw.Flush()
	for _, n := range st.Nodes {
		// The leader publishes; the others only show the committed cursor.
		if e := n.Events; e != nil && (n.ID == st.Leader || e.Error != "") && e.State != "off" {
			fmt.Fprintf(w, "\nEvents (%s): %s, cursor %d, lag %d, published %d this term", n.ID, e.State, e.Cursor, e.Lag, e.Published)
			if e.Error != "" {
				fmt.Fprintf(w, ": %s", e.Error)
			}
			fmt.Fprintln(w)
		}
	}
	for _, n := range st.Nodes {
		// Every node publishes the pulls it serves (events.pulls).
		if e := n.Events; e != nil && e.Pulls != nil {
			fmt.Fprintf(w, "Pull events (%s): published %d, dropped %d, failed %d\n", n.ID, e.Pulls.Published, e.Pulls.Dropped, e.Pulls.Failed)
		}
	}
	for _, n := range st.Nodes {
		if n.Halted != "" {
			fmt.Fprintf(w, "\n%s is not serving: %s\n", n.ID, n.Halted)
		}
	}
}

func membersCmd(g *globals) *cobra.Command {
	var output string
	cmd := &cobra.Command{
		Use:   "members",
		Short: "List gossip members with their addresses, region, version and liveness",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var ms []struct {
				ID, Region, Version, State string
				API                        string `json:"api"`
				Raft                       string `json:"raft"`
				GossipAddr                 string `json:"gossipAddr"`
			}
			if err := g.call(cmd.Context(), "GET", "/admin/v1/cluster/members", nil, &ms); err != nil {
				return err
			}
			if output == "json" {
				return printJSON(cmd.OutOrStdout(), ms)
			}
			tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 3, ' ', 0)
			fmt.Fprintln(tw, "NODE\tSTATE\tAPI\tRAFT\tGOSSIP\tREGION\tVERSION")
			for _, m := range ms {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", m.ID, m.State, m.API, orDash(m.Raft), orDash(m.GossipAddr), orDash(m.Region), orDash(m.Version))
			}
			return tw.Flush()
		},
	}
	cmd.Flags().StringVarP(&output, "output", "o", "", "output format: json (default: table)")
	return cmd
}

func joinCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "join GOSSIP_ADDR [GOSSIP_ADDR...]",
		Short: "Make the node at --server contact other nodes' gossip addresses",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			body, _ := json.Marshal(map[string]any{"addrs": args})
			var out struct{ Contacted int }
			if err := g.call(cmd.Context(), "POST", "/admin/v1/cluster/join", bytes.NewReader(body), &out); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "contacted %d node(s)\n", out.Contacted)
			return nil
		},
	}
}

func leaveCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "leave",
		Short: "Make the node at --server leave the cluster gracefully and stop",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var out struct{ Left string }
			if err := g.call(cmd.Context(), "POST", "/admin/v1/cluster/leave", nil, &out); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%s left the cluster\n", out.Left)
			return nil
		},
	}
}

func removeCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "remove NODE",
		Short: "Remove a (dead) node from the Raft configuration",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			body, _ := json.Marshal(map[string]string{"id": args[0]})
			if err := g.call(cmd.Context(), "POST", "/admin/v1/cluster/remove", bytes.NewReader(body), nil); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "removed %s\n", args[0])
			return nil
		},
	}
}

func transferCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "transfer-leader [NODE]",
		Short: "Hand leadership to NODE, or to the most up-to-date follower",
		Args:  cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			id := ""
			if len(args) == 1 {
				id = args[0]
			}
			body, _ := json.Marshal(map[string]string{"id": id})
			var out struct{ Leader string }
			if err := g.call(cmd.Context(), "POST", "/admin/v1/cluster/transfer-leader", bytes.NewReader(body), &out); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "leader is now %s\n", out.Leader)
			return nil
		},
	}
}

func snapshotCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{Use: "snapshot", Short: "Save or restore the cluster state (disaster recovery)"}
	cmd.AddCommand(&cobra.Command{
		Use:   "save FILE",
		Short: "Write a consistent backup of all metadata to FILE",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			resp, err := g.do(cmd.Context(), "GET", "/admin/v1/cluster/snapshot", nil)
			if err != nil {
				return err
			}
			defer resp.Body.Close()
			if resp.StatusCode != 200 {
				b, _ := io.ReadAll(resp.Body)
				return serverError(resp.StatusCode, b)
			}
			tmp, err := os.CreateTemp(filepath.Dir(args[0]), ".snapshot-*")
			if err != nil {
				return err
			}
			defer os.Remove(tmp.Name())
			n, err := io.Copy(tmp, resp.Body)
			if err != nil {
				tmp.Close()
				return fmt.Errorf("download snapshot: %w", err)
			}
			if err := tmp.Sync(); err != nil {
				return err
			}
			if err := tmp.Close(); err != nil {
				return err
			}
			if err := os.Rename(tmp.Name(), args[0]); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "saved %d bytes to %s\n", n, args[0])
			return nil
		},
	}, restoreCmd(g))
	return cmd
}

func restoreCmd(g *globals) *cobra.Command {
	var force bool
	cmd := &cobra.Command{
		Use:   "restore FILE",
		Short: "Replace the cluster's state with a backup (for a fresh cluster)",
		Long: `Replace the whole cluster's state with a backup written by snapshot save.

The node checks the entire file (every row, and the checksum of a version 2
file) before anything changes: a truncated, damaged or foreign file is refused
and the cluster keeps its state. A cluster that already holds repositories or
resources is refused too, unless --force says to overwrite it.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			f, err := os.Open(args[0])
			if err != nil {
				return err
			}
			defer f.Close()
			path := "/admin/v1/cluster/snapshot"
			if force {
				path += "?force=true"
			}
			if err := g.call(cmd.Context(), "POST", path, f, nil); err != nil {
				return fmt.Errorf("restore %s: %w", args[0], err)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "restored %s\n", args[0])
			return nil
		},
	}
	cmd.Flags().BoolVar(&force, "force", false, "overwrite a cluster that already holds repositories or resources")
	return cmd
}
