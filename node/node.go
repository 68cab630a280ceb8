// Package node runs one Berth registry node: Raft wiring, the proposal and
// read paths, and the HTTP servers (OCI API, admin API, health).
package node

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"time"

	"github.com/berth-registry/berth/blob"
	"github.com/berth-registry/berth/fsm"
	"github.com/berth-registry/berth/node/admin"
	"github.com/berth-registry/berth/node/api"
)

// Node is one running registryd. Create it with New, then call Run.
type Node struct {
	cfg    Config
	logger *slog.Logger
	fsm    *fsm.FSM
	raft   *consensus
	blobs  blob.Store
	token  string
	ln     net.Listener
	srv    *http.Server
}

// New opens the data dir, the blob store and Raft, and binds the HTTP
// listener, so that when it returns the node's address is known and ports
// are taken. It does not serve until Run.
func New(ctx context.Context, cfg Config, logger *slog.Logger, logOut io.Writer) (*Node, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("invalid configuration:\n%w", err)
	}
	if err := os.MkdirAll(cfg.Storage.DataDir, 0o700); err != nil {
		return nil, fmt.Errorf("create data dir: %w", err)
	}
	n := &Node{cfg: cfg, logger: logger}
	var err error
	if n.token, err = loadOrCreateToken(cfg.Storage.DataDir); err != nil {
		return nil, err
	}
	if n.blobs, err = blob.NewFS(cfg.Storage.DataDir, logger); err != nil {
		return nil, fmt.Errorf("open blob store: %w", err)
	}
	n.fsm = fsm.New(logger)
	if n.raft, err = openRaft(cfg, n.fsm, logger, logOut); err != nil {
		return nil, err
	}
	wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := n.raft.waitLeader(wctx); err != nil {
		n.raft.close(logger)
		return nil, err
	}
	if n.ln, err = net.Listen("tcp", cfg.HTTP.Addr); err != nil {
		n.raft.close(logger)
		return nil, fmt.Errorf("listen on %s: %w (is another registry running? pass --addr)", cfg.HTTP.Addr, err)
	}
	n.srv = &http.Server{
		Handler:           n.handler(),
		ReadHeaderTimeout: 30 * time.Second,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
	}
	return n, nil
}

// Addr is the address the HTTP server listens on (useful with port 0).
func (n *Node) Addr() string { return n.ln.Addr().String() }

func (n *Node) handler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("/v2/", api.New(api.Config{MaxManifestSize: n.cfg.Limits.MaxManifestSize}, n, n, n.blobs, n.logger))
	mux.Handle("/admin/", admin.New(n.token, n, n, n.logger))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Write([]byte("ok\n"))
	})
	mux.HandleFunc("GET /readyz", n.readyz)
	return mux
}

// readyz is what a load balancer asks before sending traffic: a leader is
// known and this node has applied everything it has committed.
func (n *Node) readyz(w http.ResponseWriter, _ *http.Request) {
	r := n.raft.raft
	if addr, _ := r.LeaderWithID(); addr == "" {
		http.Error(w, "no raft leader", http.StatusServiceUnavailable)
		return
	}
	if applied, commit := r.AppliedIndex(), r.CommitIndex(); applied < commit {
		http.Error(w, fmt.Sprintf("catching up: applied %d of %d", applied, commit), http.StatusServiceUnavailable)
		return
	}
	w.Write([]byte("ready\n"))
}

// Run serves until ctx is cancelled, then shuts down in order: stop taking
// requests and drain in-flight ones, take a snapshot, close Raft.
func (n *Node) Run(ctx context.Context) error {
	n.logger.Info("registry listening", "addr", n.Addr(), "data", n.cfg.Storage.DataDir, "node", n.cfg.Node.ID)
	errc := make(chan error, 1)
	go func() { errc <- n.srv.Serve(n.ln) }()

	var serveErr error
	select {
	case <-ctx.Done():
	case serveErr = <-errc:
	}
	n.logger.Info("shutting down: draining requests")
	sctx, cancel := context.WithTimeout(context.Background(), n.cfg.HTTP.ShutdownTimeout)
	defer cancel()
	if err := n.srv.Shutdown(sctx); err != nil {
		n.logger.Warn("drain incomplete", "err", err)
	}
	err := n.raft.close(n.logger)
	if serveErr != nil && !errors.Is(serveErr, http.ErrServerClosed) {
		return errors.Join(fmt.Errorf("http server: %w", serveErr), err)
	}
	if err == nil {
		n.logger.Info("shutdown complete")
	}
	return err
}
