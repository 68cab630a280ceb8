package api

import (
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// Writes to a repository a mirror policy owns are refused with 403 DENIED
// naming the policy, before the handler runs (it has no proposer, state
// or blob store here: reaching one would panic). Other repositories and
// reads are not refused.
func TestMirroredRepositoryRefusesWrites(t *testing.T) {
	mirrored := func(repo string) (string, string, bool) {
		switch {
		case strings.HasPrefix(repo, "eu/"):
			return "follow-eu", "mirror", true
		case strings.HasPrefix(repo, "hub/"):
			return "hub-cache", "proxy", true
		}
		return "", "", false
	}
	h := New(Config{Mirrored: mirrored}, nil, noReads{}, nil, slog.New(slog.NewTextHandler(io.Discard, nil)))
	const (
		mirrorMsg = `repository "eu/app" is a read-only mirror (ReplicationPolicy "follow-eu"): push to the origin registry instead`
		proxyMsg  = `repository "hub/library/app" is a pull-through cache (ReplicationPolicy "hub-cache"): push to the upstream registry, or to a repository outside the cache's prefix`
	)
	for _, tc := range []struct{ method, path, want string }{
		{"POST", "/v2/eu/app/blobs/uploads/", mirrorMsg},
		{"PATCH", "/v2/eu/app/blobs/uploads/abc", mirrorMsg},
		{"PUT", "/v2/eu/app/manifests/v1", mirrorMsg},
		{"DELETE", "/v2/eu/app/manifests/v1", mirrorMsg},
		{"PUT", "/v2/hub/library/app/manifests/v1", proxyMsg},
		{"POST", "/v2/hub/library/app/blobs/uploads/", proxyMsg},
	} {
		t.Run(tc.method+" "+tc.path, func(t *testing.T) {
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, httptest.NewRequest(tc.method, tc.path, strings.NewReader("bytes that must not be stored")))
			var body struct{ Errors []apiError }
			if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil || len(body.Errors) != 1 {
				t.Fatalf("%d, not the OCI error JSON: %s", rec.Code, rec.Body)
			}
			want := tc.want
			if e := body.Errors[0]; rec.Code != http.StatusForbidden || e.Code != codeDenied || e.Message != want {
				t.Errorf("got %d %+v, want 403 DENIED %q", rec.Code, e, want)
			}
		})
	}
	// Reads of a mirrored repository and writes to any other pass.
	hd := &handler{cfg: Config{Mirrored: mirrored}, logger: slog.New(slog.NewTextHandler(io.Discard, nil))}
	for _, tc := range []struct{ method, path string }{
		{"GET", "/v2/eu/app/manifests/v1"},
		{"HEAD", "/v2/eu/app/blobs/sha256:2c26b46b68ffc68ff99b453c1d30413413422d706483bfa0f98a5e886266e7ae"},
		{"GET", "/v2/eu/app/tags/list"},
		{"PUT", "/v2/local/app/manifests/v1"},
		{"POST", "/v2/local/app/blobs/uploads/"},
	} {
		t.Run("passes "+tc.method+" "+tc.path, func(t *testing.T) {
			ep, name, _ := splitRoute(tc.path)
			rec := httptest.NewRecorder()
			if hd.refuseMirrored(rec, httptest.NewRequest(tc.method, tc.path, nil), ep, name) {
				t.Fatalf("refused: %d %s", rec.Code, rec.Body)
			}
		})
	}
}
