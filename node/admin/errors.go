package admin

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"

	"github.com/berth-registry/berth/fsm"
)

// statusOf maps a proposal or read error to an HTTP status: a refusal is
// the client's mistake (404 for a missing resource), an unavailable
// cluster or an abandoned request is a 503 worth retrying, anything else
// is a bug of ours.
func statusOf(err error) int {
	var ref *fsm.Refusal
	if errors.As(err, &ref) {
		if ref.Code == fsm.CodeResourceUnknown {
			return http.StatusNotFound
		}
		return http.StatusBadRequest
	}
	var u interface{ Unavailable() bool }
	if errors.As(err, &u) && u.Unavailable() {
		return http.StatusServiceUnavailable
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return http.StatusServiceUnavailable
	}
	return http.StatusInternalServerError
}

// fail answers an error from the log or the state.
func (s *server) fail(w http.ResponseWriter, what string, err error) {
	code := statusOf(err)
	if code >= 500 {
		s.logger.Error("admin request failed", "op", what, "err", err)
	}
	writeErr(w, code, what+": "+err.Error())
}

func writeErr(w http.ResponseWriter, code int, msg string) {
	writeJSON(w, code, map[string]string{"error": msg})
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	if code == http.StatusServiceUnavailable {
		w.Header().Set("Retry-After", "1")
	}
	w.WriteHeader(code)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(v) // the client went away; nothing left to tell it
}
