package api

import (
	"net/http"

	"github.com/berth-registry/berth/events"
)

// withOrigin stamps a write request's context with who sent it, so the
// events it causes carry the user agent and a request ID (and, once
// authentication lands, the actor). The ID comes back in X-Request-Id; a
// well-formed one the client or a proxy sent is kept, so logs on both
// sides line up. Reads are left alone: they cause no event.
func withOrigin(w http.ResponseWriter, r *http.Request) *http.Request {
	if r.Method == http.MethodGet || r.Method == http.MethodHead {
		return r
	}
	id := r.Header.Get("X-Request-Id")
	if !validRequestID(id) {
		id = newRequestID()
	}
	w.Header().Set("X-Request-Id", id)
	// The actor, if authentication named one, is already in the context.
	o := events.OriginFrom(r.Context())
	o.UserAgent, o.RequestID = r.UserAgent(), id
	return r.WithContext(events.WithOrigin(r.Context(), o))
}

// validRequestID accepts IDs of up to 64 letters, digits, '-', '_' and '.'.
func validRequestID(s string) bool {
	if s == "" || len(s) > 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_' || c == '.') {
			return false
		}
	}
	return true
}
