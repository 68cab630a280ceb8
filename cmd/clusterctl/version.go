package main

import (
	"github.com/spf13/cobra"

	"github.com/berth-registry/berth/internal/buildinfo"
)

func versionCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print clusterctl's version, commit and build date",
		Args:  cobra.NoArgs,
		Run:   func(cmd *cobra.Command, _ []string) { buildinfo.Read().Print(cmd.OutOrStdout(), "clusterctl") },
	}
}
