// Command registryd is the Berth registry node daemon.
package main

import (
	"errors"
	"fmt"
	"os"

	"github.com/spf13/cobra"

	"github.com/berth-registry/berth/internal/buildinfo"
)

func main() {
	root := &cobra.Command{
		Use:           "registryd",
		Short:         "Berth registry node: OCI Distribution API on an event-sourced Raft core",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.AddCommand(serveCmd(), versionCmd(), envCmd())
	if err := root.Execute(); err != nil {
		if !errors.Is(err, errLogged) {
			fmt.Fprintln(os.Stderr, "registryd:", err)
		}
		os.Exit(1)
	}
}

func versionCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the version, commit and build date",
		Args:  cobra.NoArgs,
		Run:   func(cmd *cobra.Command, _ []string) { buildinfo.Read().Print(cmd.OutOrStdout(), "registryd") },
	}
}
