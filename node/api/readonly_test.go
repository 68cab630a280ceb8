package api

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/berth-registry/berth/fsm"
)

// noReads is a cluster without a leader: the confirmation at the read
// index fails, and the local state decides.
type noReads struct{}

func (noReads) ReadView(context.Context) (*fsm.View, error) { return nil, errors.New("no leader") }

// While read-only, every write is refused with 403 DENIED and the mode's
// message before the handler runs (the handler here has no proposer, no
// state and no blob store: reaching one would panic); reads are not writes.
func TestReadOnlyRefusesWritesUpFront(t *testing.T) {
	ro := fsm.ReadOnly{On: true, Reason: "bucket copy", Actor: "admin", Since: time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC), Index: 7}
	h := New(Config{ReadOnly: func() fsm.ReadOnly { return ro }}, nil, noReads{}, nil, slog.New(slog.NewTextHandler(io.Discard, nil)))
	const d = "sha256:2c26b46b68ffc68ff99b453c1d30413413422d706483bfa0f98a5e886266e7ae"
	for _, tc := range []struct{ method, path string }{
		{"POST", "/v2/app/blobs/uploads/"},
		{"POST", "/v2/app/blobs/uploads/?digest=" + d},
		{"POST", "/v2/app/blobs/uploads/?mount=" + d + "&from=other"},
		{"PATCH", "/v2/app/blobs/uploads/abc"},
		{"PUT", "/v2/app/blobs/uploads/abc?digest=" + d},
		{"DELETE", "/v2/app/blobs/uploads/abc"},
		{"PUT", "/v2/app/manifests/v1"},
		{"DELETE", "/v2/app/manifests/" + d},
		{"DELETE", "/v2/team/app/blobs/" + d},
	} {
		t.Run(tc.method+" "+tc.path, func(t *testing.T) {
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, httptest.NewRequest(tc.method, tc.path, strings.NewReader("bytes that must not be stored")))
			var body struct{ Errors []apiError }
			if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil || len(body.Errors) != 1 {
				t.Fatalf("%d, not the OCI error JSON: %s", rec.Code, rec.Body)
			}
			want := "registry is in read-only mode (set by admin at 2026-11-30T12:00:00Z: bucket copy); clusterctl readonly off lifts it"
			if e := body.Errors[0]; rec.Code != http.StatusForbidden || e.Code != codeDenied || e.Message != want {
				t.Errorf("got %d %+v, want 403 DENIED %q", rec.Code, e, want)
			}
		})
	}
	for _, tc := range []struct {
		ep     endpoint
		method string
	}{
		{epUpload, "GET"}, {epBlob, "GET"}, {epBlob, "HEAD"}, {epManifest, "GET"}, {epManifest, "HEAD"},
		{epTags, "GET"}, {epReferrers, "GET"}, {epNone, "POST"},
	} {
		if isWrite(tc.ep, tc.method) {
			t.Errorf("%s on endpoint %d counts as a write", tc.method, tc.ep)
		}
	}
}

// A write that raced the switch is refused by Apply; the client sees the
// same answer as one refused up front.
func TestReadOnlyRefusalFromApply(t *testing.T) {
	e := toAPIError(&fsm.Refusal{Code: fsm.CodeReadOnly, Message: "registry is in read-only mode; clusterctl readonly off lifts it"})
	if e.Status != http.StatusForbidden || e.Code != codeDenied || !strings.Contains(e.Message, "read-only mode") {
		t.Errorf("got %+v", e)
	}
}
