package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/spf13/cobra"
)

func applyCmd(g *globals) *cobra.Command {
	var file string
	cmd := &cobra.Command{
		Use:   "apply -f FILE",
		Short: "Create or update resources from a YAML or JSON file",
		Long: `Create or update the resources in FILE (multi-document YAML or JSON; - reads stdin).

Every document is validated first: if any is invalid, nothing is applied and
every problem is listed with its field path and line. The documents are then
committed together, as one log entry: either all are applied or, if the
cluster refuses any, none is. Applying the same file again changes nothing.`,
		Example: `  clusterctl apply -f registries.yaml
  clusterctl get registry hub -o yaml | sed 's/old/new/' | clusterctl apply -f -`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if file == "" {
				return errors.New("apply needs -f FILE (or -f - for stdin)")
			}
			var r io.Reader = cmd.InOrStdin()
			if file != "-" {
				f, err := os.Open(file)
				if err != nil {
					return fmt.Errorf("open resources: %w", err)
				}
				defer f.Close()
				r = f
			}
			var out struct {
				Results []applyResult `json:"results"`
			}
			err := g.call(cmd.Context(), "POST", "/admin/v1/apply", r, &out)
			var ae *apiError
			if errors.As(err, &ae) {
				out.Results = ae.Results // applied before the failure (servers before ResourcesApplied)
			}
			printApplied(cmd.OutOrStdout(), out.Results)
			if err != nil && file != "-" && errors.As(err, &ae) && len(ae.Documents) > 0 {
				return fmt.Errorf("%s: %w", file, err)
			}
			return err
		},
	}
	cmd.Flags().StringVarP(&file, "filename", "f", "", "file with resources, or - for stdin")
	return cmd
}

// printApplied reports each document kubectl style:
// "registry/hub created (generation 1)".
func printApplied(w io.Writer, results []applyResult) {
	for _, res := range results {
		fmt.Fprintf(w, "%s/%s %s (generation %d)\n", strings.ToLower(res.Kind), res.Name, res.Action, res.Generation)
	}
}
