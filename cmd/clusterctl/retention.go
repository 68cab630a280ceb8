package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/url"
	"strconv"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
)

// retentionAnswer is POST /admin/v1/retention/{name}/run.
type retentionAnswer struct {
	DryRun bool `json:"dryRun"`
	Plan   struct {
		Policy       string `json:"policy"`
		Index        uint64 `json:"index"`
		Repositories int    `json:"repositories"`
		KeptTags     int    `json:"keptTags"`
		Tags         []struct {
			Repo   string    `json:"repository"`
			Tag    string    `json:"tag"`
			Digest string    `json:"digest"`
			Pushed time.Time `json:"pushed"`
			Pulled time.Time `json:"pulled"`
		} `json:"tags"`
		Manifests []struct {
			Repo   string    `json:"repository"`
			Digest string    `json:"digest"`
			Pushed time.Time `json:"pushed"`
		} `json:"manifests"`
	} `json:"plan"`
	DeletedTags      int `json:"deletedTags"`
	DeletedManifests int `json:"deletedManifests"`
	Skipped          int `json:"skipped"`
}

func retentionCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{Use: "retention", Short: "Run retention policies (kind: RetentionPolicy)"}
	var dry bool
	var output string
	run := &cobra.Command{
		Use:   "run NAME [--dry-run]",
		Short: "Delete the tags (and untagged manifests) a policy does not keep",
		Long: `Plan the policy at the current index and delete what it does not keep, each
deletion an event with the actor retention:NAME; --dry-run lists exactly
what a run at that index would delete and changes nothing. Tags an
ImmutabilityRule protects are never deleted. Garbage collection then
reclaims the bytes (clusterctl gc run).`,
		Example: `  clusterctl retention run keep-last-10 --dry-run
  clusterctl retention run keep-last-10`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkOutput(output, "json"); err != nil {
				return err
			}
			var ans retentionAnswer
			path := "/admin/v1/retention/" + url.PathEscape(args[0]) + "/run?dryRun=" + strconv.FormatBool(dry)
			if err := g.call(cmd.Context(), "POST", path, nil, &ans); err != nil {
				return err
			}
			if output == "json" {
				enc := json.NewEncoder(cmd.OutOrStdout())
				enc.SetIndent("", "  ")
				return enc.Encode(ans)
			}
			printRetention(cmd.OutOrStdout(), ans, time.Now())
			return nil
		},
	}
	run.Flags().BoolVar(&dry, "dry-run", false, "list what would be deleted; change nothing")
	run.Flags().StringVarP(&output, "output", "o", "", "output format: json")
	cmd.AddCommand(run)
	return cmd
}

func printRetention(w io.Writer, a retentionAnswer, now time.Time) {
	p := a.Plan
	verb := "deleted"
	if a.DryRun {
		verb = "would delete"
	}
	if len(p.Tags)+len(p.Manifests) > 0 {
		tw := tabwriter.NewWriter(w, 0, 4, 3, ' ', 0)
		fmt.Fprintln(tw, "REPOSITORY\tTAG\tDIGEST\tPUSHED\tPULLED")
		for _, t := range p.Tags {
			pulled := "-"
			if !t.Pulled.IsZero() {
				pulled = age(t.Pulled.Format(time.RFC3339), now) + " ago"
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s ago\t%s\n", t.Repo, t.Tag, short(t.Digest), age(t.Pushed.Format(time.RFC3339), now), pulled)
		}
		for _, m := range p.Manifests {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s ago\t-\n", m.Repo, "(untagged)", short(m.Digest), age(m.Pushed.Format(time.RFC3339), now))
		}
		tw.Flush()
	}
	if a.DryRun {
		fmt.Fprintf(w, "policy %s at index %d: %s %d tags and %d untagged manifests in %d repositories; keeps %d tags\n",
			p.Policy, p.Index, verb, len(p.Tags), len(p.Manifests), p.Repositories, p.KeptTags)
		return
	}
	fmt.Fprintf(w, "policy %s at index %d: %s %d tags and %d untagged manifests in %d repositories; kept %d tags; %d skipped (changed since the plan)\n",
		p.Policy, p.Index, verb, a.DeletedTags, a.DeletedManifests, p.Repositories, p.KeptTags, a.Skipped)
}

func short(d string) string {
	if len(d) > 19 {
		return d[:19]
	}
	return d
}
