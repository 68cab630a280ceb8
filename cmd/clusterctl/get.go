package main

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"
)

func getCmd(g *globals) *cobra.Command {
	var output string
	cmd := &cobra.Command{
		Use:   "get KIND [NAME]",
		Short: "Show resources (get registries, get registry NAME, get webhooks) or repositories",
		Long:  "Show the resources of a kind, or one of them by NAME.\n" + repositoriesHelp,
		Example: `  clusterctl get registries
  clusterctl get registries -o wide
  clusterctl get registry hub -o yaml
  clusterctl get webhooks
  clusterctl get webhook ci
  clusterctl get repositories -o wide
  clusterctl get repository team-a/app -o json`,
		Args: func(_ *cobra.Command, args []string) error {
			if len(args) == 0 || len(args) > 2 {
				return errors.New("get needs a kind and at most one name, e.g. get registries, or get registry NAME")
			}
			return nil
		},
		ValidArgsFunction: completeKindAndNames(g, 1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if isRepositories(args[0]) {
				return g.getRepositories(cmd.Context(), cmd.OutOrStdout(), strings.Join(args[1:], ""), output)
			}
			if err := checkOutput(output, "yaml", "json", "wide"); err != nil {
				return err
			}
			w := cmd.OutOrStdout()
			if len(args) == 2 {
				var doc map[string]any
				if err := g.call(cmd.Context(), "GET", resourcePath(args[0], args[1]), nil, &doc); err != nil {
					return repositoriesHint(err)
				}
				return printOne(w, doc, output, time.Now())
			}
			var list struct {
				Kind  string           `json:"kind"`
				Items []map[string]any `json:"items"`
			}
			if err := g.call(cmd.Context(), "GET", resourcePath(args[0]), nil, &list); err != nil {
				return repositoriesHint(err)
			}
			return printList(w, list.Items, output, time.Now())
		},
	}
	cmd.Flags().StringVarP(&output, "output", "o", "", "output format: yaml, json or wide (default: a table); repositories: json or wide")
	return cmd
}

func checkOutput(o string, allowed ...string) error {
	if o == "" {
		return nil
	}
	for _, a := range allowed {
		if o == a {
			return nil
		}
	}
	return fmt.Errorf("unknown output format %q: use %s", o, joinOr(allowed))
}

func joinOr(s []string) string {
	switch len(s) {
	case 0:
		return ""
	case 1:
		return s[0]
	}
	out := s[0]
	for _, x := range s[1 : len(s)-1] {
		out += ", " + x
	}
	return out + " or " + s[len(s)-1]
}
