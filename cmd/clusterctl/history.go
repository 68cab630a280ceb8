package main

import (
	"fmt"
	"io"
	"reflect"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
)

// historyAnswer is the admin API's answer for a resource's history: the
// documents, oldest first, when and by whom each generation was applied
// (servers before that field send only the documents), and the delete
// that ended it, if any.
type historyAnswer struct {
	Items       []map[string]any `json:"items"`
	Generations []struct {
		Generation int64     `json:"generation"`
		Applied    time.Time `json:"applied"`
		Actor      string    `json:"actor"`
	} `json:"generations,omitempty"`
	Deleted *struct {
		Time  time.Time `json:"time"`
		Actor string    `json:"actor"`
	} `json:"deleted,omitempty"`
}

func historyCmd(g *globals) *cobra.Command {
	var output string
	cmd := &cobra.Command{
		Use:   "history KIND NAME",
		Short: "Show the generations of a resource, oldest first, and what each changed",
		Long: `history shows the generations of a resource the cluster keeps (the last
ten), oldest first: when each was applied, by whom, and which fields it
changed. -o yaml prints the full documents, which apply -f takes back to
restore one. The history of a deleted resource is kept until a resource of
the same name is applied again.`,
		Example: `  clusterctl history registry hub
  clusterctl history webhook ci -o yaml`,
		Args:              cobra.ExactArgs(2),
		ValidArgsFunction: completeKindAndNames(g, 1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkOutput(output, "yaml", "json", "table"); err != nil {
				return err
			}
			var h historyAnswer
			if err := g.call(cmd.Context(), "GET", resourcePath(args[0], args[1], "history"), nil, &h); err != nil {
				return err
			}
			switch output {
			case "yaml":
				return printList(cmd.OutOrStdout(), h.Items, output, time.Now())
			case "json":
				return printJSON(cmd.OutOrStdout(), h)
			}
			return printHistory(cmd.OutOrStdout(), h)
		},
	}
	cmd.Flags().StringVarP(&output, "output", "o", "table", "output format: table, yaml (the full documents) or json")
	return cmd
}

// historyRow is one line of the history table.
type historyRow struct {
	generation, time, actor, change string
}

// historyRows builds the table: one row per generation, and one for the
// delete that ended the resource.
func historyRows(h historyAnswer) []historyRow {
	rows := make([]historyRow, 0, len(h.Items)+1)
	for i, doc := range h.Items {
		r := historyRow{
			generation: str(doc, "metadata.generation"),
			time:       str(doc, "metadata.updateTimestamp"),
			actor:      "-",
			change:     "created",
		}
		if i < len(h.Generations) && fmt.Sprint(h.Generations[i].Generation) == r.generation {
			r.time = h.Generations[i].Applied.UTC().Format(time.RFC3339)
			r.actor = orDash(h.Generations[i].Actor)
		}
		if i > 0 {
			r.change = changeSummary(h.Items[i-1], doc)
		}
		rows = append(rows, r)
	}
	if d := h.Deleted; d != nil {
		rows = append(rows, historyRow{generation: "-", time: d.Time.UTC().Format(time.RFC3339), actor: orDash(d.Actor), change: "deleted"})
	}
	return rows
}

// printHistory prints one line per generation.
func printHistory(w io.Writer, h historyAnswer) error {
	tw := tabwriter.NewWriter(w, 0, 4, 3, ' ', 0)
	fmt.Fprintln(tw, "GENERATION\tTIME\tACTOR\tCHANGE")
	for _, r := range historyRows(h) {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", r.generation, r.time, r.actor, r.change)
	}
	return tw.Flush()
}

// maxChangedFields is how many changed fields a summary names before it
// counts the rest: the table stays one line a generation.
const maxChangedFields = 4

// changeSummary names what the user controls that differs between two
// generations: the top-level spec fields, labels, annotations and the
// apiVersion, e.g. "spec.url, spec.events". The fields the FSM sets
// (generation, timestamps) and status are not the user's change.
func changeSummary(prev, cur map[string]any) string {
	var changed []string
	if !reflect.DeepEqual(prev["apiVersion"], cur["apiVersion"]) {
		changed = append(changed, "apiVersion")
	}
	for _, f := range []string{"labels", "annotations"} {
		if !reflect.DeepEqual(field(prev, "metadata."+f), field(cur, "metadata."+f)) {
			changed = append(changed, "metadata."+f)
		}
	}
	ps, _ := prev["spec"].(map[string]any)
	cs, _ := cur["spec"].(map[string]any)
	var spec []string
	for k, v := range cs {
		if pv, ok := ps[k]; !ok || !reflect.DeepEqual(pv, v) {
			spec = append(spec, "spec."+k)
		}
	}
	for k := range ps {
		if _, ok := cs[k]; !ok {
			spec = append(spec, "spec."+k)
		}
	}
	sort.Strings(spec)
	changed = append(changed, spec...)
	switch {
	case len(changed) == 0:
		return "-"
	case len(changed) > maxChangedFields:
		return fmt.Sprintf("%s and %d more", strings.Join(changed[:maxChangedFields], ", "), len(changed)-maxChangedFields)
	}
	return strings.Join(changed, ", ")
}
