// Command clusterctl operates a Berth cluster: declarative resources,
// membership, leadership and backups, through a node's admin API.
package main

import (
	"fmt"
	"os"

	"github.com/spf13/cobra"
)

func main() {
	if err := newRoot().Execute(); err != nil {
		fmt.Fprintln(os.Stderr, "clusterctl:", err)
		os.Exit(1)
	}
}

func newRoot() *cobra.Command {
	g := &globals{}
	root := &cobra.Command{
		Use:           "clusterctl",
		Short:         "Operate a Berth registry cluster",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	pf := root.PersistentFlags()
	pf.StringVar(&g.server, "server", "", "node or load balancer URL (env BERTH_SERVER, default http://127.0.0.1:5000)")
	pf.StringVar(&g.token, "token", "", "admin token (env BERTH_TOKEN, else read from --token-file)")
	pf.StringVar(&g.tokenFile, "token-file", "./data/admin.token", "file holding the admin token")
	root.AddCommand(applyCmd(g), getCmd(g), deleteCmd(g), historyCmd(g),
		statusCmd(g), membersCmd(g), joinCmd(g), leaveCmd(g), removeCmd(g), transferCmd(g), snapshotCmd(g))
	return root
}
