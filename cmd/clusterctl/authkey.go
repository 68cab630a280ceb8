package main

import (
	"fmt"

	"github.com/spf13/cobra"
)

func authCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{Use: "auth", Short: "Token signing keys of the OCI API"}
	cmd.AddCommand(&cobra.Command{
		Use:   "rotate-key",
		Short: "Sign new tokens with a new key now",
		Long: `The leader replaces the token signing key every auth.keyrotation on its own;
rotate-key does it now, after a suspected leak for instance. Tokens signed
with the old key keep working until they expire (at most auth.tokenttl), so
no client notices.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var out struct {
				Kid string `json:"kid"`
			}
			if err := g.call(cmd.Context(), "POST", "/admin/v1/auth/rotate-key", nil, &out); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "new signing key %s\n", out.Kid)
			return nil
		},
	})
	return cmd
}
