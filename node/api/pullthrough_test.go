package api

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"

	"github.com/berth-registry/berth/blob"
	"github.com/berth-registry/berth/fsm"
)

// emptyState reads an FSM that applied nothing.
type emptyState struct{ f *fsm.FSM }

func (s emptyState) ReadView(context.Context) (*fsm.View, error) { return s.f.View(), nil }

// fakePull answers every read of "up/..." with res or err.
type fakePull struct {
	res Pulled
	err error
}

func (p fakePull) Manifest(_ context.Context, repo, _ string, _ digest.Digest, _ bool) (Pulled, error) {
	if !strings.HasPrefix(repo, "up/") {
		return Pulled{}, nil
	}
	return p.res, p.err
}

func (p fakePull) Blob(ctx context.Context, repo string, d digest.Digest) (Pulled, error) {
	return p.Manifest(ctx, repo, "", d, false)
}

// How the OCI API answers what a PullThrough returns on a miss: bytes to
// serve as is, a blob stored but not linked, nothing (404), or an upstream
// failure (503 UNAVAILABLE, never a 500).
func TestPullThroughAnswers(t *testing.T) {
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	store, err := blob.NewFS(t.TempDir(), logger, blob.FSLimits{})
	if err != nil {
		t.Fatal(err)
	}
	manifest := []byte(`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json"}`)
	md := digest.FromBytes(manifest)
	layer := []byte("layer bytes")
	ld := digest.FromBytes(layer)
	if _, err := store.Put(context.Background(), ld, int64(len(layer)), bytes.NewReader(layer)); err != nil {
		t.Fatal(err)
	}
	served := Pulled{Manifest: manifest, MediaType: "application/vnd.oci.image.manifest.v1+json", Digest: md}
	down := errors.New("upstream http://127.0.0.1:1: connection refused")
	cases := []struct {
		name, method, path string
		pull               fakePull
		code               int
		errCode, body      string
	}{
		{"manifest served as is", "GET", "/v2/up/app/manifests/v1", fakePull{res: served}, 200, "", string(manifest)},
		{"manifest HEAD served as is", "HEAD", "/v2/up/app/manifests/v1", fakePull{res: served}, 200, "", ""},
		{"manifest unknown upstream too", "GET", "/v2/up/app/manifests/v1", fakePull{}, 404, codeNameUnknown, ""},
		{"manifest with the upstream down", "GET", "/v2/up/app/manifests/v1", fakePull{err: down}, 503, codeUnavailable, ""},
		{"invalid manifest upstream", "GET", "/v2/up/app/manifests/v1", fakePull{err: fmt.Errorf("from the upstream: %w", newErr(400, codeManifestInvalid, "not JSON"))}, 503, codeUnavailable, ""},
		{"read-only here", "GET", "/v2/up/app/manifests/v1", fakePull{err: &fsm.Refusal{Code: fsm.CodeReadOnly, Message: "read-only"}}, 403, codeDenied, ""},
		{"not covered", "GET", "/v2/local/app/manifests/v1", fakePull{err: down}, 404, codeNameUnknown, ""},
		{"blob stored, not linked", "GET", "/v2/up/app/blobs/" + ld.String(), fakePull{res: Pulled{BlobStored: true}}, 200, "", string(layer)},
		{"blob unknown upstream too", "GET", "/v2/up/app/blobs/" + ld.String(), fakePull{}, 404, codeBlobUnknown, ""},
		{"blob with the upstream down", "GET", "/v2/up/app/blobs/" + ld.String(), fakePull{err: down}, 503, codeUnavailable, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h := New(Config{PullThrough: tc.pull}, nil, emptyState{fsm.New(logger)}, store, logger)
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, httptest.NewRequest(tc.method, tc.path, nil))
			if rec.Code != tc.code {
				t.Fatalf("%d %s, want %d", rec.Code, rec.Body, tc.code)
			}
			if tc.errCode != "" {
				if !strings.Contains(rec.Body.String(), `"code":"`+tc.errCode+`"`) {
					t.Errorf("body %s lacks %s", rec.Body, tc.errCode)
				}
				return
			}
			if rec.Body.String() != tc.body {
				t.Errorf("body %q, want %q", rec.Body, tc.body)
			}
			if strings.Contains(tc.path, "/manifests/") && (rec.Header().Get("Docker-Content-Digest") != md.String() || rec.Header().Get("Content-Type") != served.MediaType) {
				t.Errorf("headers %v", rec.Header())
			}
		})
	}
}
