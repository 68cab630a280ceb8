// Package httperr is the one mapping from an error of the log, the state
// or the cluster to the HTTP answer an admin or internal client sees, and
// the one JSON error body: {"error": "..."}.
//
// The mapping: a refusal from Apply is the client's mistake (404 for a
// missing resource, else 400); an unavailable cluster (no leader,
// leadership lost, not delivered) or an abandoned request is 503 with
// Retry-After, worth retrying; an *Error carries its own status; anything
// else is a bug of ours (500). The internal API's "not the leader" 409,
// which a forwarding follower relies on to retry, is answered by that
// API itself, not through this mapping.
package httperr

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"

	"github.com/berth-registry/berth/fsm"
)

// Error is an error that says which status the client should see, such as
// a 400 for a request naming a node that is not a member.
type Error struct {
	Code int
	Err  error
}

func (e *Error) Error() string { return e.Err.Error() }
func (e *Error) Unwrap() error { return e.Err }

// Errorf returns an *Error with the given status.
func Errorf(code int, format string, args ...any) error {
	return &Error{Code: code, Err: fmt.Errorf(format, args...)}
}

// Status maps err to an HTTP status (see the package comment).
func Status(err error) int {
	if err == nil {
		return http.StatusOK
	}
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
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

// Write answers {"error": msg} with code.
func Write(w http.ResponseWriter, code int, msg string) {
	JSON(w, code, map[string]string{"error": msg})
}

// JSON answers v as JSON with code. A 503 tells the client to retry in a
// second.
func JSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	if code == http.StatusServiceUnavailable {
		w.Header().Set("Retry-After", "1")
	}
	w.WriteHeader(code)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(v) // the client went away; nothing left to tell it
}
