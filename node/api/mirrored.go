package api

import (
	"net/http"
)

// refuseMirrored answers a write to a mirrored or cached repository with
// DENIED before a byte is stored: a mirror's content comes from its origin
// alone, so that it stays an exact copy, and a cache's from its upstream
// (issue 12). The replicator writes
// through the log, not this API, so it is not refused.
func (h *handler) refuseMirrored(w http.ResponseWriter, r *http.Request, ep endpoint, name string) bool {
	if h.cfg.Mirrored == nil || !isWrite(ep, r.Method) {
		return false
	}
	policy, mode, ok := h.cfg.Mirrored(name)
	if !ok {
		return false
	}
	msg := "repository " + quote(name) + " is a read-only mirror (ReplicationPolicy " + quote(policy) + "): push to the origin registry instead"
	if mode == "proxy" {
		msg = "repository " + quote(name) + " is a pull-through cache (ReplicationPolicy " + quote(policy) + "): push to the upstream registry, or to a repository outside the cache's prefix"
	}
	writeError(w, r, h.logger, newErr(http.StatusForbidden, codeDenied, msg))
	return true
}
