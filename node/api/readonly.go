package api

import (
	"net/http"

	"github.com/berth-registry/berth/fsm"
)

// A write while the registry is in read-only mode gets the spec's DENIED: docker prints "denied: <message>", crane "DENIED:
// <message>", so the user reads why and how to lift it. CNCF Distribution
// answers a bare 405 there (it unregisters the write handlers), which
// clients report as an unsupported operation with no reason; Harbor
// answers 403 DENIED, as here (codeDenied, errors.go).

// readOnlyError is the answer to a write while the mode is on.
func readOnlyError(ro fsm.ReadOnly) *apiError {
	return newErr(http.StatusForbidden, codeDenied, ro.Message())
}

// isWrite reports whether a request on an endpoint would change the
// registry: uploads (start, mount, chunk, finish, cancel), manifest put
// and delete, blob delete. Reads, upload status included, are not.
func isWrite(ep endpoint, method string) bool {
	switch ep {
	case epUpload:
		return method == http.MethodPost || method == http.MethodPatch || method == http.MethodPut || method == http.MethodDelete
	case epBlob:
		return method == http.MethodDelete
	case epManifest:
		return method == http.MethodPut || method == http.MethodDelete
	}
	return false
}

// refuseReadOnly answers a write with DENIED while the registry is
// read-only, before a byte of the body is stored. The node's local state
// decides when it says "writable", at no cost to writes: Apply refuses the
// resulting event anyway (fsm.CodeReadOnly), so a node that has not
// applied the switch yet only wastes that upload. When it says
// "read-only" the answer is confirmed at the read index, so a write sent
// to any node right after `clusterctl readonly off` returned is not
// refused by a node that has not applied the lift yet; that costs a round
// only while writes are refused anyway.
func (h *handler) refuseReadOnly(w http.ResponseWriter, r *http.Request, ep endpoint) bool {
	if h.cfg.ReadOnly == nil || !isWrite(ep, r.Method) {
		return false
	}
	ro := h.cfg.ReadOnly()
	if !ro.On {
		return false
	}
	if v, err := h.reads.ReadView(r.Context()); err == nil {
		ro = v.ReadOnly()
	}
	if !ro.On {
		return false
	}
	writeError(w, r, h.logger, readOnlyError(ro))
	return true
}
