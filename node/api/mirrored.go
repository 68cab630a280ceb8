package api

import (
	"net/http"
)

// refuseMirrored answers a write to a mirrored repository with DENIED
// before a byte is stored: the mirror's content comes from its origin
// alone, so that it stays an exact copy (issue 12). The replicator writes
// through the log, not this API, so it is not refused.
func (h *handler) refuseMirrored(w http.ResponseWriter, r *http.Request, ep endpoint, name string) bool {
	if h.cfg.Mirrored == nil || !isWrite(ep, r.Method) {
		return false
	}
	policy, ok := h.cfg.Mirrored(name)
	if !ok {
		return false
	}
	writeError(w, r, h.logger, newErr(http.StatusForbidden, codeDenied,
		"repository "+quote(name)+" is a read-only mirror (ReplicationPolicy "+quote(policy)+"): push to the origin registry instead"))
	return true
}
