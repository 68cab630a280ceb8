package node

import (
	"context"
	"io"
	"log/slog"
	"testing"
	"time"
)

// runTestNode runs a real single node on a temp dir and loopback, with a
// known admin token and cluster secret, after change adjusts its config.
// prepare runs on the node before it serves, for settings Validate would
// refuse. It returns once the node committed its first barrier: before that a
// read index is refused ("still establishing its term").
func runTestNode(t *testing.T, change func(*Config), prepare ...func(*Node)) *Node {
	t.Helper()
	cfg := DefaultConfig()
	cfg.HTTP.Addr = "127.0.0.1:0"
	cfg.Storage.DataDir = t.TempDir()
	cfg.Admin.Token = "admin-token"
	cfg.Cluster.Secret = "cluster-secret"
	if change != nil {
		change(&cfg)
	}
	ctx, cancel := context.WithCancel(context.Background())
	n, err := New(ctx, cfg, "test", slog.New(slog.DiscardHandler), io.Discard)
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	for _, p := range prepare {
		p(n)
	}
	done := make(chan error, 1)
	go func() { done <- n.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("shutdown: %v", err)
		}
	})
	wctx, wcancel := context.WithTimeout(ctx, 10*time.Second)
	defer wcancel()
	if err := n.waitCaughtUp(wctx); err != nil {
		t.Fatal(err)
	}
	return n
}
