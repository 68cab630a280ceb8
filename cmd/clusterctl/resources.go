package main

import (
	"encoding/json"
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
		Short: "Create or update resources from a YAML/JSON file (multi-document; '-' reads stdin)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if file == "" {
				return fmt.Errorf("apply needs -f FILE (or -f - for stdin)")
			}
			var r io.Reader = cmd.InOrStdin()
			if file != "-" {
				f, err := os.Open(file)
				if err != nil {
					return err
				}
				defer f.Close()
				r = f
			}
			var out struct {
				Results []struct {
					Kind, Name, Action string
					Generation         int64
				} `json:"results"`
			}
			if err := g.call("POST", "/admin/v1/apply", r, &out); err != nil {
				return err
			}
			for _, res := range out.Results {
				fmt.Fprintf(cmd.OutOrStdout(), "%s/%s %s (generation %d)\n", strings.ToLower(res.Kind), res.Name, res.Action, res.Generation)
			}
			return nil
		},
	}
	cmd.Flags().StringVarP(&file, "filename", "f", "", "file with resources, or - for stdin")
	return cmd
}

func getCmd(g *globals) *cobra.Command {
	var output string
	cmd := &cobra.Command{
		Use:   "get KIND [NAME]",
		Short: "Show resources: get registries, get registry NAME",
		Args:  cobra.RangeArgs(1, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkOutput(output); err != nil {
				return err
			}
			w := cmd.OutOrStdout()
			if len(args) == 2 {
				var doc map[string]any
				if err := g.call("GET", "/admin/v1/resources/"+args[0]+"/"+args[1], nil, &doc); err != nil {
					return err
				}
				return printOne(w, doc, output)
			}
			var list struct {
				Items []map[string]any `json:"items"`
			}
			if err := g.call("GET", "/admin/v1/resources/"+args[0], nil, &list); err != nil {
				return err
			}
			return printList(w, list.Items, output)
		},
	}
	cmd.Flags().StringVarP(&output, "output", "o", "", "output format: yaml, json or wide (default: table)")
	return cmd
}

func deleteCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "delete KIND NAME",
		Short: "Delete a resource: delete registry NAME",
		Args:  cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			var out struct{ Kind, Name string }
			if err := g.call("DELETE", "/admin/v1/resources/"+args[0]+"/"+args[1], nil, &out); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%s/%s deleted\n", strings.ToLower(out.Kind), out.Name)
			return nil
		},
	}
}

func historyCmd(g *globals) *cobra.Command {
	var output string
	cmd := &cobra.Command{
		Use:   "history KIND NAME",
		Short: "Show the generations of a resource, oldest first",
		Args:  cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			var list struct {
				Items []map[string]any `json:"items"`
			}
			if err := g.call("GET", "/admin/v1/resources/"+args[0]+"/"+args[1]+"/history", nil, &list); err != nil {
				return err
			}
			if output == "" {
				output = "yaml"
			}
			return printList(cmd.OutOrStdout(), list.Items, output)
		},
	}
	cmd.Flags().StringVarP(&output, "output", "o", "yaml", "output format: yaml or json")
	return cmd
}

func checkOutput(o string) error {
	switch o {
	case "", "yaml", "json", "wide":
		return nil
	}
	return fmt.Errorf("unknown output format %q: use yaml, json or wide", o)
}

func printJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}
