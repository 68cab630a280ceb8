package httperr

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/berth-registry/berth/fsm"
)

type unavailable struct{}

func (unavailable) Error() string     { return "no leader" }
func (unavailable) Unavailable() bool { return true }

func TestStatus(t *testing.T) {
	for _, tc := range []struct {
		name string
		err  error
		want int
	}{
		{"nil", nil, http.StatusOK},
		{"refusal", &fsm.Refusal{Code: fsm.CodeInvalid, Message: "bad"}, http.StatusBadRequest},
		{"missing resource", fmt.Errorf("get: %w", &fsm.Refusal{Code: fsm.CodeResourceUnknown}), http.StatusNotFound},
		{"unavailable, wrapped", fmt.Errorf("propose: %w", unavailable{}), http.StatusServiceUnavailable},
		{"abandoned", context.Canceled, http.StatusServiceUnavailable},
		{"timed out", fmt.Errorf("wait: %w", context.DeadlineExceeded), http.StatusServiceUnavailable},
		{"carries its status", Errorf(http.StatusBadRequest, "node %q is not a member", "x"), http.StatusBadRequest},
		{"carried status wins over what it wraps", &Error{Code: http.StatusConflict, Err: unavailable{}}, http.StatusConflict},
		{"a bug", errors.New("boom"), http.StatusInternalServerError},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := Status(tc.err); got != tc.want {
				t.Fatalf("Status(%v) = %d, want %d", tc.err, got, tc.want)
			}
		})
	}
}

func TestWrite(t *testing.T) {
	for _, tc := range []struct {
		code       int
		retryAfter string
	}{
		{http.StatusServiceUnavailable, "1"},
		{http.StatusBadRequest, ""},
	} {
		w := httptest.NewRecorder()
		Write(w, tc.code, "a <message>")
		if w.Code != tc.code || w.Header().Get("Retry-After") != tc.retryAfter ||
			w.Header().Get("Content-Type") != "application/json" || w.Body.String() != "{\"error\":\"a <message>\"}\n" {
			t.Errorf("Write(%d) = %d %v %q", tc.code, w.Code, w.Header(), w.Body)
		}
	}
}
