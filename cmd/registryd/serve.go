package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/berth-registry/berth/internal/buildinfo"
	"github.com/berth-registry/berth/node"
	"github.com/berth-registry/berth/node/logs"
)

// serveFlags are the command-line overrides; each maps to one config key.
type serveFlags struct {
	config          string
	addr            string
	advertise       string
	dataDir         string
	nodeID          string
	region          string
	raftAddr        string
	raftAdvertise   string
	gossipAddr      string
	gossipAdvertise string
	join            []string
	bootstrapExpect int
	secretFile      string
	consistency     string
	logLevel        string
	logFormat       string
}

func serveCmd() *cobra.Command {
	var f serveFlags
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Run a registry node (with no flags: a single node on 127.0.0.1:5000 storing under ./data)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := node.LoadConfig(f.config, os.Environ())
			if err != nil {
				return err
			}
			applyFlags(cmd, f, &cfg)
			return serve(cmd.Context(), cfg, cmd.ErrOrStderr())
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&f.config, "config", "", "YAML config file (keys as in README; BERTH_<SECTION>_<KEY> env vars override it, flags override both)")
	fl.StringVar(&f.addr, "addr", "", "HTTP listen address for the OCI and admin APIs (http.addr, default 127.0.0.1:5000)")
	fl.StringVar(&f.dataDir, "data-dir", "", "directory for the Raft log, snapshots, blobs and admin token (storage.datadir, default ./data)")
	fl.StringVar(&f.advertise, "advertise", "", "API address peers use to reach this node (http.advertise, default --addr)")
	fl.StringVar(&f.nodeID, "node-id", "", "this node's Raft server ID, unique in the cluster (node.id, default node-1)")
	fl.StringVar(&f.region, "region", "", "region label gossiped to peers (node.region)")
	fl.StringVar(&f.raftAddr, "raft-addr", "", "Raft transport address host:port; setting it makes this node a cluster member (raft.addr)")
	fl.StringVar(&f.raftAdvertise, "raft-advertise", "", "Raft address peers dial (raft.advertise, default --raft-addr)")
	fl.StringVar(&f.gossipAddr, "gossip-addr", "", "memberlist gossip address host:port (gossip.addr)")
	fl.StringVar(&f.gossipAdvertise, "gossip-advertise", "", "gossip address peers use (gossip.advertise, default --gossip-addr)")
	fl.StringSliceVar(&f.join, "join", nil, "gossip addresses of existing nodes, comma-separated (gossip.join)")
	fl.IntVar(&f.bootstrapExpect, "bootstrap-expect", 0, "voters to wait for before bootstrapping a new cluster (raft.bootstrapexpect)")
	fl.StringVar(&f.secretFile, "cluster-secret-file", "", "file holding the shared cluster secret (cluster.secretfile)")
	fl.StringVar(&f.consistency, "consistency", "", "read consistency: strong or stale (cluster.consistency, default strong)")
	fl.StringVar(&f.logLevel, "log-level", "", "debug, info, warn or error (log.level, default info)")
	fl.StringVar(&f.logFormat, "log-format", "", "text or json (log.format, default text)")
	return cmd
}

// applyFlags copies only the flags the user set, so a flag's zero value never
// hides a value from the file or the environment.
func applyFlags(cmd *cobra.Command, f serveFlags, cfg *node.Config) {
	set := func(name string, dst *string, v string) {
		if cmd.Flags().Changed(name) {
			*dst = v
		}
	}
	set("addr", &cfg.HTTP.Addr, f.addr)
	set("data-dir", &cfg.Storage.DataDir, f.dataDir)
	set("advertise", &cfg.HTTP.Advertise, f.advertise)
	set("node-id", &cfg.Node.ID, f.nodeID)
	set("region", &cfg.Node.Region, f.region)
	set("raft-addr", &cfg.Raft.Addr, f.raftAddr)
	set("raft-advertise", &cfg.Raft.Advertise, f.raftAdvertise)
	set("gossip-addr", &cfg.Gossip.Addr, f.gossipAddr)
	set("gossip-advertise", &cfg.Gossip.Advertise, f.gossipAdvertise)
	set("cluster-secret-file", &cfg.Cluster.SecretFile, f.secretFile)
	set("consistency", &cfg.Cluster.Consistency, f.consistency)
	if cmd.Flags().Changed("join") {
		cfg.Gossip.Join = f.join
	}
	if cmd.Flags().Changed("bootstrap-expect") {
		cfg.Raft.BootstrapExpect = f.bootstrapExpect
	}
	set("log-level", &cfg.Log.Level, f.logLevel)
	set("log-format", &cfg.Log.Format, f.logFormat)
}

// errLogged is an error serve has already written to the log; main only
// sets the exit code, so a JSON log stays JSON to its last line.
var errLogged = errors.New("reported in the log")

func serve(ctx context.Context, cfg node.Config, logOut io.Writer) (err error) {
	logger, dedup := newLogger(cfg.Log, logOut)
	// A library that logs through the standard log package (none should)
	// still lands in the one stream, in its format, at info.
	slog.SetDefault(logger)
	ctx, stop := signal.NotifyContext(ctx, syscall.SIGTERM, os.Interrupt)
	defer stop()
	dctx, stopDedup := context.WithCancel(context.WithoutCancel(ctx))
	dedupDone := make(chan struct{})
	go func() { dedup.Run(dctx); close(dedupDone) }()
	defer func() {
		if err != nil && cfg.Log.Format == "json" {
			logger.Error("registryd exiting", "err", err)
			err = errLogged
		}
		stopDedup() // and write the counts still held back
		<-dedupDone
	}()
	n, err := node.New(ctx, cfg, buildinfo.Read().Version, logger, logOut)
	if err != nil {
		return err
	}
	return n.Run(ctx)
}

// newLogger is the one handler every line goes through, Raft's and
// memberlist's too (node/logs), with repeated warnings folded.
func newLogger(c node.LogConfig, w io.Writer) (*slog.Logger, *logs.Dedup) {
	var level slog.Level
	_ = level.UnmarshalText([]byte(c.Level)) // validated by Config.Validate
	opts := &slog.HandlerOptions{Level: level}
	var h slog.Handler = slog.NewTextHandler(w, opts)
	if c.Format == "json" {
		h = slog.NewJSONHandler(w, opts)
	}
	d := logs.NewDedup(h, logs.DedupOptions{})
	return slog.New(d), d
}

func envCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "env",
		Short: "List the environment variables that override config keys, with defaults and current values",
		Long: `Every configuration key can be set by an environment variable, between the
YAML file and the command-line flags in precedence. env lists each variable,
the key it sets, the built-in default and, when the variable is set in this
environment, its current value (credentials show only "(set)").`,
		Args: cobra.NoArgs,
		Run: func(cmd *cobra.Command, _ []string) {
			tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "VARIABLE\tKEY\tDEFAULT\tCURRENT")
			for _, v := range node.EnvVars() {
				cur, set := os.LookupEnv(v.Name)
				switch {
				case !set:
					cur = "-"
				case v.Secret:
					cur = "(set)"
				case cur == "":
					cur = `""`
				}
				def := v.Default
				if def == "" {
					def = "-"
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", v.Name, v.Key, def, cur)
			}
			tw.Flush()
		},
	}
}
