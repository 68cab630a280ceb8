package node

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"
)

// listenMetrics binds http.metricsaddr, if set, at start like the main
// listener: a taken port fails before anything is created in the data dir.
func listenMetrics(addr string) (net.Listener, error) {
	if addr == "" {
		return nil, nil
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("listen on http.metricsaddr %s: %w", addr, err)
	}
	return ln, nil
}

// MetricsAddr is the address of the unauthenticated /metrics listener, or
// "" when http.metricsaddr is unset.
func (n *Node) MetricsAddr() string {
	if n.metricsLn == nil {
		return ""
	}
	return n.metricsLn.Addr().String()
}

// serveMetrics serves /metrics alone, with no token, on http.metricsaddr:
// what a Prometheus on loopback or a private network scrapes. It returns
// the function that stops it.
func (n *Node) serveMetrics() (stop func(context.Context)) {
	if n.metricsLn == nil {
		return func(context.Context) {}
	}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", n.metrics.Handler())
	srv := &http.Server{
		Handler:           mux,
		ReadHeaderTimeout: n.cfg.Limits.ReadHeaderTimeout,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(n.logger.Handler(), slog.LevelWarn),
	}
	go func() {
		if err := srv.Serve(n.metricsLn); err != nil && !errors.Is(err, http.ErrServerClosed) {
			n.logger.Warn("metrics listener stopped", "addr", n.MetricsAddr(), "err", err)
		}
	}()
	n.logger.Info("serving /metrics without authentication", "addr", n.MetricsAddr())
	return func(ctx context.Context) { srv.Shutdown(ctx) }
}
