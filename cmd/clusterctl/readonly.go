package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"time"

	"github.com/spf13/cobra"
)

// readOnlyState mirrors fsm.ReadOnly.
type readOnlyState struct {
	On     bool      `json:"on"`
	Reason string    `json:"reason,omitempty"`
	Actor  string    `json:"actor,omitempty"`
	Since  time.Time `json:"since,omitzero"`
	Index  uint64    `json:"index,omitempty"`
}

func readOnlyCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "readonly",
		Short: "Read-only mode: readonly on, readonly off, readonly status",
		Long: `While the registry is in read-only mode every node refuses pushes, tag and
manifest changes and deletes (403 DENIED, with the reason), keeps serving
pulls, and pauses garbage collection. Resources can still be applied.
The switch is one entry in the log: every node changes at the same point.`,
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) == 0 {
				return cmd.Help()
			}
			return fmt.Errorf("unknown command %q for clusterctl readonly: use on, off or status", args[0])
		},
	}
	set := func(on bool, reason string) func(*cobra.Command, []string) error {
		return func(cmd *cobra.Command, _ []string) error {
			body, err := json.Marshal(map[string]any{"on": on, "reason": reason})
			if err != nil {
				return err
			}
			var st readOnlyState
			if err := g.call(cmd.Context(), "POST", "/admin/v1/readonly", bytes.NewReader(body), &st); err != nil {
				return err
			}
			printReadOnly(cmd.OutOrStdout(), st)
			return nil
		}
	}
	var reason string
	on := &cobra.Command{
		Use:     "on",
		Short:   "Refuse every write on every node until readonly off",
		Example: `  clusterctl readonly on --reason "copying the bucket to the new region"`,
		Args:    cobra.NoArgs,
		RunE:    func(cmd *cobra.Command, args []string) error { return set(true, reason)(cmd, args) },
	}
	on.Flags().StringVar(&reason, "reason", "", "why, shown to every client whose write is refused (one line, at most 256 bytes)")
	off := &cobra.Command{
		Use:   "off",
		Short: "Take writes again and let garbage collection resume",
		Args:  cobra.NoArgs,
		RunE:  set(false, ""),
	}
	var output string
	status := &cobra.Command{
		Use:   "status",
		Short: "Show whether the registry is read-only, since when, by whom and why",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var st readOnlyState
			if err := g.call(cmd.Context(), "GET", "/admin/v1/readonly", nil, &st); err != nil {
				return err
			}
			switch output {
			case "json":
				return printJSON(cmd.OutOrStdout(), st)
			case "":
				printReadOnly(cmd.OutOrStdout(), st)
				return nil
			}
			return fmt.Errorf("unknown output format %q: use json", output)
		},
	}
	status.Flags().StringVarP(&output, "output", "o", "", "output format: json (default: text)")
	cmd.AddCommand(on, off, status)
	return cmd
}

// printReadOnly writes one line: the mode, then who changed it when.
func printReadOnly(w io.Writer, st readOnlyState) {
	fmt.Fprintln(w, describeReadOnly(st))
}

func describeReadOnly(st readOnlyState) string {
	mode := "read-write"
	if st.On {
		mode = "read-only"
	}
	if st.Index == 0 {
		return mode + " (read-only mode was never turned on)"
	}
	verb := "lifted"
	if st.On {
		verb = "set"
	}
	s := fmt.Sprintf("%s: %s", mode, verb)
	if st.Actor != "" {
		s += " by " + st.Actor
	}
	s += fmt.Sprintf(" at %s (index %d)", st.Since.UTC().Format(time.RFC3339), st.Index)
	if st.Reason != "" {
		s += ": " + st.Reason
	}
	return s
}
