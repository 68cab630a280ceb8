package node

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"time"

	"github.com/hashicorp/raft"
	raftboltdb "github.com/hashicorp/raft-boltdb/v2"
	bolt "go.etcd.io/bbolt"

	"github.com/berth-registry/berth/node/logs"
	"github.com/berth-registry/berth/node/raftnet"
)

// lockTimeout bounds the wait for raft.db's file lock: a second registryd on
// the same data dir fails at once instead of hanging in flock.
const lockTimeout = time.Second

// consensus bundles the Raft instance with the stores it owns, so shutdown
// can close them in the right order.
type consensus struct {
	raft      *raft.Raft
	logs      raft.LogStore
	store     *raftboltdb.BoltStore
	transport raft.Transport
	// disk refuses proposals while the data dir is full (diskguard.go).
	disk *diskGuard
	// fresh is true when the node had no Raft state when it opened.
	fresh bool
}

// openLog opens <datadir>/raft/raft.db, the Raft log and stable store. It
// also takes the file lock that keeps a second registryd off this data dir,
// so New calls it before anything else touches the dir. Waiting for the
// lock is bounded: a second registryd fails at once instead of hanging.
func openLog(cfg Config) (*raftboltdb.BoltStore, error) {
	dir := filepath.Join(cfg.Storage.DataDir, "raft")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("create raft dir: %w", err)
	}
	path := filepath.Join(dir, "raft.db")
	store, err := raftboltdb.New(raftboltdb.Options{Path: path, BoltOptions: &bolt.Options{Timeout: lockTimeout}})
	if errors.Is(err, bolt.ErrTimeout) {
		return nil, fmt.Errorf("data dir %s is in use: %s is locked by another registryd (stop it, or pass a different --data-dir)", cfg.Storage.DataDir, path)
	}
	if err != nil {
		return nil, fmt.Errorf("open raft log %s: %w", path, err)
	}
	return store, nil
}

// openRaft wires hashicorp/raft with store (from openLog, which it now
// owns) as log and stable store and a file snapshot store under
// <datadir>/raft. A node with no existing state and no peers bootstraps
// itself as a single-voter cluster, which is what makes `registryd serve`
// work with no flags.
func openRaft(cfg Config, store *raftboltdb.BoltStore, fsm raft.FSM, logger *slog.Logger) (*consensus, error) {
	dir := filepath.Join(cfg.Storage.DataDir, "raft")
	disk := newDiskGuard(dir, uint64(cfg.Storage.ReservedSpace), !cfg.Clustered(), logger)
	// The cache saves a bolt read per entry when followers and the FSM catch up.
	logCache, err := raft.NewLogCache(1024, disk.logStore(store))
	if err != nil {
		store.Close()
		return nil, fmt.Errorf("raft log cache: %w", err)
	}
	snaps, err := raft.NewFileSnapshotStoreWithLogger(dir, 3, logs.HCLog(logger, "raft-snapshot"))
	if err != nil {
		store.Close()
		return nil, fmt.Errorf("open snapshot store: %w", err)
	}

	id := raft.ServerID(cfg.Node.ID)
	var trans raft.Transport
	var addr raft.ServerAddress
	if cfg.Raft.Addr == "" {
		// A single node needs no socket: an in-process transport whose
		// address is the node ID, stable across restarts.
		addr, trans = raft.NewInmemTransport(raft.ServerAddress(cfg.Node.ID))
	} else {
		advertise := cfg.Raft.Advertise
		if advertise == "" {
			advertise = cfg.Raft.Addr
		}
		tcpAddr, err := net.ResolveTCPAddr("tcp", advertise)
		if err != nil {
			store.Close()
			return nil, fmt.Errorf("raft.advertise %q: %w", advertise, err)
		}
		if tcpAddr.IP.IsUnspecified() {
			store.Close()
			return nil, fmt.Errorf("raft address %q is not reachable by peers: set raft.advertise (--raft-advertise) to this node's address", advertise)
		}
		stream, err := raftStream(cfg, tcpAddr, logger)
		if err != nil {
			store.Close()
			return nil, err
		}
		tt := raft.NewNetworkTransportWithConfig(&raft.NetworkTransportConfig{
			Stream: stream, MaxPool: 5, Timeout: 10 * time.Second,
			Logger: logs.HCLog(logger, "raft-net"),
		})
		addr, trans = raft.ServerAddress(advertise), tt
	}

	rc := raft.DefaultConfig()
	rc.LocalID = id
	rc.BatchApplyCh = true
	rc.SnapshotThreshold = cfg.Raft.SnapshotThreshold
	rc.SnapshotInterval = cfg.Raft.SnapshotInterval
	// Raft logs through the node's handler: same format, same level
	// filter, and its repeated heartbeat failures folded (node/logs).
	rc.Logger = logs.HCLog(logger, "raft")
	if cfg.Raft.Addr == "" {
		// With one voter there is nobody to wait for: elect quickly.
		rc.HeartbeatTimeout = 100 * time.Millisecond
		rc.ElectionTimeout = 100 * time.Millisecond
		rc.LeaderLeaseTimeout = 100 * time.Millisecond
	}

	has, err := raft.HasExistingState(logCache, store, snaps)
	if err != nil {
		store.Close()
		return nil, fmt.Errorf("inspect raft state: %w", err)
	}
	r, err := raft.NewRaft(rc, fsm, logCache, store, snaps, trans)
	if err != nil {
		store.Close()
		return nil, fmt.Errorf("start raft: %w", err)
	}
	if !has && !cfg.Clustered() {
		logger.Info("bootstrapping a new single-node cluster", "id", id)
		boot := raft.Configuration{Servers: []raft.Server{{ID: id, Address: addr, Suffrage: raft.Voter}}}
		if err := r.BootstrapCluster(boot).Error(); err != nil && !errors.Is(err, raft.ErrCantBootstrap) {
			r.Shutdown()
			store.Close()
			return nil, fmt.Errorf("bootstrap raft: %w", err)
		}
	}
	return &consensus{raft: r, logs: logCache, store: store, transport: trans, disk: disk, fresh: !has}, nil
}

// raftStream listens on raft.addr behind node/raftnet, so only peers with
// the cluster CA's certificate (cluster.tls) or, without TLS, the cluster
// secret ever reach Raft: its own TCP transport would apply anyone's
// AppendEntries.
func raftStream(cfg Config, advertise net.Addr, logger *slog.Logger) (*raftnet.Layer, error) {
	var auth raftnet.Authenticator
	var err error
	if t := cfg.Cluster.TLS; t.Enabled() {
		auth, err = raftnet.NewTLS(t.CAFile, t.CertFile, t.KeyFile)
	} else {
		auth, err = raftnet.NewSecret(cfg.Cluster.secret)
	}
	if err != nil {
		return nil, fmt.Errorf("raft transport: %w", err)
	}
	l, err := raftnet.Listen(cfg.Raft.Addr, advertise, auth, raftnet.Options{Logger: logger})
	if err != nil {
		return nil, fmt.Errorf("raft transport on %s: %w", cfg.Raft.Addr, err)
	}
	logger.Info("raft transport authenticates peers", "addr", cfg.Raft.Addr, "mode", auth.Mode())
	return l, nil
}

// waitLeader blocks until this node knows a leader, so the first request
// after start does not fail with "no leader".
func (c *consensus) waitLeader(ctx context.Context) error {
	t := time.NewTicker(20 * time.Millisecond)
	defer t.Stop()
	for {
		if addr, _ := c.raft.LeaderWithID(); addr != "" {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("waiting for a raft leader: %w", ctx.Err())
		case <-t.C:
		}
	}
}

// close takes a final snapshot (so the next start replays little) and shuts
// Raft and its stores down.
func (c *consensus) close(logger *slog.Logger) error {
	var errs []error
	c.disk.close()
	if err := c.raft.Snapshot().Error(); err != nil && !errors.Is(err, raft.ErrNothingNewToSnapshot) {
		logger.Warn("final snapshot failed", "err", err)
	}
	if err := c.raft.Shutdown().Error(); err != nil {
		errs = append(errs, fmt.Errorf("raft shutdown: %w", err))
	}
	if closer, ok := c.transport.(io.Closer); ok {
		closer.Close()
	}
	if err := c.store.Close(); err != nil {
		errs = append(errs, fmt.Errorf("close raft log: %w", err))
	}
	return errors.Join(errs...)
}
