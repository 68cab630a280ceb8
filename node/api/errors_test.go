package api

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"syscall"
	"testing"

	"github.com/berth-registry/berth/blob"
)

// TestStorageFaultErrors: a full disk and an unreachable object store are
// answered with the OCI error JSON and a status that tells the client what
// happened (507; 503 with Retry-After), never 500, however the driver or
// the node wrapped the cause; the cause's paths stay in the log.
func TestStorageFaultErrors(t *testing.T) {
	enospc := &os.PathError{Op: "write", Path: "/var/lib/berth/tmp/x", Err: syscall.ENOSPC}
	for _, tc := range []struct {
		name       string
		err        error
		status     int
		message    string
		retryAfter bool
	}{
		{"ENOSPC from the filesystem driver", fmt.Errorf("write blob: %w", enospc), http.StatusInsufficientStorage, "disk is full", false},
		{"EDQUOT", fmt.Errorf("sync blob: %w", &os.PathError{Op: "sync", Path: "/q", Err: syscall.EDQUOT}), http.StatusInsufficientStorage, "disk is full", false},
		{"the node refusing a proposal", fmt.Errorf("disk full: %w", blob.ErrNoSpace), http.StatusInsufficientStorage, "disk is full", false},
		{"object store unreachable", fmt.Errorf("s3 stat: %w", fmt.Errorf("Get: %w", blob.ErrUnavailable)), http.StatusServiceUnavailable, "object storage", true},
		{"anything else", errors.New("boom"), http.StatusInternalServerError, "internal error", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rec := httptest.NewRecorder()
			writeError(rec, httptest.NewRequest("PUT", "/v2/a/manifests/b", nil), slog.New(slog.NewTextHandler(io.Discard, nil)), tc.err)
			var body struct{ Errors []apiError }
			if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil || len(body.Errors) != 1 {
				t.Fatalf("not the OCI error JSON: %s", rec.Body)
			}
			e := body.Errors[0]
			if rec.Code != tc.status || !strings.Contains(e.Message, tc.message) {
				t.Errorf("got %d %+v, want %d with a message about %q", rec.Code, e, tc.status, tc.message)
			}
			if got := rec.Header().Get("Retry-After") != ""; got != tc.retryAfter {
				t.Errorf("Retry-After present: %v, want %v", got, tc.retryAfter)
			}
			if strings.Contains(rec.Body.String(), "/var/lib") {
				t.Errorf("a server path leaked to the client: %s", rec.Body)
			}
		})
	}
}
