package access

import (
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"
)

// auditLog logs refused sign-ins and requests once per source per minute,
// with a count of those it held back, so a client retrying in a loop
// (or an attacker guessing) cannot flood the log. The set of sources is
// bounded; when full it starts afresh.
type auditLog struct {
	logger *slog.Logger
	now    func() time.Time
	mu     sync.Mutex
	seen   map[string]*auditEntry
}

type auditEntry struct {
	logged time.Time
	held   int
}

const (
	auditEvery      = time.Minute
	maxAuditSources = 10000
)

func (a *auditLog) init(l *slog.Logger, now func() time.Time) {
	a.logger, a.now, a.seen = l, now, map[string]*auditEntry{}
}

func (a *auditLog) refused(r *http.Request, what string, err error) {
	src, _, splitErr := net.SplitHostPort(r.RemoteAddr)
	if splitErr != nil {
		src = r.RemoteAddr
	}
	now := a.now()
	a.mu.Lock()
	e, ok := a.seen[src]
	if ok && now.Sub(e.logged) < auditEvery {
		e.held++
		a.mu.Unlock()
		return
	}
	if !ok {
		if len(a.seen) >= maxAuditSources {
			clear(a.seen)
		}
		e = &auditEntry{}
		a.seen[src] = e
	}
	held := e.held
	e.logged, e.held = now, 0
	a.mu.Unlock()
	a.logger.Warn(what, "source", src, "method", r.Method, "path", r.URL.Path, "reason", err.Error(), "suppressed", held)
}

func (s *Server) fail(_ *http.Request, kind, reason string) { s.cfg.Failed(kind, reason) }
