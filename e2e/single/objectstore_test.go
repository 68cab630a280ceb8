package single

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/berth-registry/berth/e2e/harness"
)

// s3Timeout is the node's own deadline on S3 calls in this test
// (storage.s3.timeout); a request makes at most two tries.
const s3Timeout = 2 * time.Second

// TestObjectStoreDown takes MinIO away under a running registryd, frozen
// with SIGSTOP (connections accepted, never answered) or killed with
// SIGKILL, and checks what users see: a push is answered 503 with
// Retry-After and the OCI error JSON within the node's deadline rather
// than hanging or failing with 500; what needs no S3 (a manifest this
// node holds in its manifest cache, the tags list) is still served, and
// a blob GET, which needs S3, is answered 503 too; once MinIO is back
// (SIGCONT, or a restart on the same data dir and port) pushes work again
// without restarting registryd.
func TestObjectStoreDown(t *testing.T) {
	for _, tc := range []struct {
		name         string
		stop, resume func(t *testing.T, m *harness.MinIO)
	}{
		{"SIGSTOP",
			func(t *testing.T, m *harness.MinIO) { m.Signal(t, syscall.SIGSTOP) },
			func(t *testing.T, m *harness.MinIO) { m.Signal(t, syscall.SIGCONT) }},
		{"kill -9",
			func(t *testing.T, m *harness.MinIO) { m.P.Kill() },
			func(t *testing.T, m *harness.MinIO) { m.Start(t) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			m := harness.StartMinIO(t, dir, "")
			env := append(m.Env("berth"), "BERTH_STORAGE_S3_TIMEOUT="+s3Timeout.String(),
				// No node-local blob cache: blob reads go to S3.
				"BERTH_STORAGE_CACHESIZE=0")
			reg := startRegistryEnv(t, t.TempDir(), "", env)
			base := reg.addr
			ctx, cancel := harness.Ctx(3 * time.Minute)
			defer cancel()
			before := harness.NewImage("s3down/app", "before")
			if err := before.Push(ctx, base); err != nil {
				t.Fatalf("push with MinIO up: %v", err)
			}

			tc.stop(t, m)
			// Two tries of s3Timeout each, a retry backoff, and slack.
			limit := 2*s3Timeout + 5*time.Second
			im := harness.NewImage("s3down/app", "during")
			code, hdr, body, took := timedRequest(t, limit+20*time.Second, "POST",
				fmt.Sprintf("http://%s/v2/%s/blobs/uploads/?digest=%s", base, im.Repo, harness.Sha(im.Layer)), im.Layer)
			expectUnavailable(t, "blob push with MinIO down", code, hdr, body, took, limit)

			code, _, body, took = timedRequest(t, limit+20*time.Second, "GET",
				fmt.Sprintf("http://%s/v2/%s/manifests/%s", base, before.Repo, before.Tag), nil)
			if code != http.StatusOK || string(body) != string(before.Manifest) {
				t.Errorf("manifest GET with MinIO down (cached on this node): %d %s after %s, want 200", code, body, took)
			}
			code, _, body, _ = timedRequest(t, limit+20*time.Second, "GET", fmt.Sprintf("http://%s/v2/%s/tags/list", base, before.Repo), nil)
			if code != http.StatusOK || !strings.Contains(string(body), `"before"`) {
				t.Errorf("tags list with MinIO down: %d %s, want 200", code, body)
			}
			code, hdr, body, took = timedRequest(t, limit+20*time.Second, "GET",
				fmt.Sprintf("http://%s/v2/%s/blobs/%s", base, before.Repo, harness.Sha(before.Layer)), nil)
			expectUnavailable(t, "blob GET with MinIO down", code, hdr, body, took, limit)

			tc.resume(t, m)
			harness.WaitFor(t, "a push once MinIO is back", 60*time.Second, func() error {
				pctx, cancel := harness.Ctx(20 * time.Second)
				defer cancel()
				return im.Push(pctx, base)
			})
			for _, i := range []harness.Image{before, im} {
				if err := i.Verify(ctx, base); err != nil {
					t.Errorf("once MinIO is back: %v", err)
				}
			}
			if reg.p.Exited() {
				t.Fatalf("registryd exited: %v", reg.p.Err)
			}
		})
	}
}

// timedRequest sends one request and fails the test if it is not answered
// within wait: a hang is what this test is about.
func timedRequest(t *testing.T, wait time.Duration, method, url string, body []byte) (int, http.Header, []byte, time.Duration) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	var r io.Reader
	hdr := map[string]string{}
	if body != nil {
		r = bytes.NewReader(body)
		hdr["Content-Type"] = "application/octet-stream"
	}
	start := time.Now()
	code, h, b, err := harness.HTTPStatus(ctx, method, url, hdr, r)
	took := time.Since(start)
	if err != nil {
		t.Fatalf("%s %s: no answer after %s: %v", method, url, took.Round(time.Millisecond), err)
	}
	return code, h, b, took
}

// expectUnavailable checks for 503 with Retry-After and the OCI error JSON
// saying the object storage is not answering, within limit.
func expectUnavailable(t *testing.T, what string, code int, hdr http.Header, body []byte, took, limit time.Duration) {
	t.Helper()
	e := ociError(t, body)
	if code != http.StatusServiceUnavailable || hdr.Get("Retry-After") == "" || !strings.Contains(e.Message, "object storage") {
		t.Errorf("%s: got %d (Retry-After %q) %s, want 503 with Retry-After and an OCI error about the object storage", what, code, hdr.Get("Retry-After"), body)
	}
	if took > limit {
		t.Errorf("%s: answered after %s, want within %s (storage.s3.timeout %s)", what, took.Round(time.Millisecond), limit, s3Timeout)
	} else {
		t.Logf("%s: %d after %s", what, code, took.Round(time.Millisecond))
	}
}
