package main

import (
	"errors"
	"fmt"
	"strings"

	"github.com/spf13/cobra"
)

func deleteCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "delete KIND NAME [NAME...]",
		Short: "Delete resources: delete registry NAME, delete webhook NAME",
		Example: `  clusterctl delete registry hub
  clusterctl delete webhook ci`,
		Args: func(_ *cobra.Command, args []string) error {
			if len(args) < 2 {
				return errors.New("delete needs a kind and a name, e.g. delete registry NAME")
			}
			return nil
		},
		ValidArgsFunction: completeKindAndNames(g, 0),
		RunE: func(cmd *cobra.Command, args []string) error {
			// Each name is deleted on its own; one that does not exist
			// does not stop the others, but makes the command fail.
			var errs []error
			for _, name := range args[1:] {
				var out struct{ Kind, Name string }
				if err := g.call(cmd.Context(), "DELETE", resourcePath(args[0], name), nil, &out); err != nil {
					errs = append(errs, err)
					continue
				}
				fmt.Fprintf(cmd.OutOrStdout(), "%s/%s deleted\n", strings.ToLower(out.Kind), out.Name)
			}
			return errors.Join(errs...)
		},
	}
}
