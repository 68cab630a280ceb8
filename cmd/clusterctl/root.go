package main

import (
	"github.com/spf13/cobra"
)

// newRoot builds the command tree. getenv is how the commands read the
// environment (os.Getenv, or a map in tests).
func newRoot(getenv func(string) string) *cobra.Command {
	g := &globals{getenv: getenv}
	root := &cobra.Command{
		Use:   "clusterctl",
		Short: "Operate a Berth registry cluster",
		Long: `clusterctl talks to the admin API of any Berth node (or the load balancer).

It finds the node through --server or BERTH_SERVER (default ` + defaultServer + `),
and the admin token through --token, --token-file, BERTH_TOKEN, or the file
` + defaultTokenFile + ` that a single node writes on first start. For an
https:// server whose certificate comes from a private CA, pass that CA's
certificate with --cacert or BERTH_CACERT.`,
		SilenceUsage:  true,
		SilenceErrors: true,
		PersistentPreRun: func(cmd *cobra.Command, _ []string) {
			g.tokenFileSet = cmd.Flags().Changed("token-file")
		},
	}
	pf := root.PersistentFlags()
	pf.StringVar(&g.server, "server", "", "node or load balancer URL (env BERTH_SERVER, default "+defaultServer+")")
	pf.StringVar(&g.token, "token", "", "admin token (env BERTH_TOKEN)")
	pf.StringVar(&g.tokenFile, "token-file", defaultTokenFile, "file holding the admin token")
	pf.StringVar(&g.cacert, "cacert", "", "PEM file of CA certificates to trust for an https:// server, besides the system's (env BERTH_CACERT)")
	root.AddCommand(applyCmd(g), getCmd(g), deleteCmd(g), historyCmd(g),
		statusCmd(g), membersCmd(g), joinCmd(g), leaveCmd(g), removeCmd(g), transferCmd(g), snapshotCmd(g),
		webhookCmd(g), eventsCmd(g), gcCmd(g), userCmd(g), robotCmd(g), authCmd(g), readOnlyCmd(g), retentionCmd(g), replicationCmd(g), versionCmd())
	return root
}
