package api_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"strings"
	"sync"
	"testing"

	"github.com/berth-registry/berth/node"
)

// syncBuffer is a bytes.Buffer safe for the node's goroutines to log into.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

// lines decodes every JSON line written so far.
func (b *syncBuffer) lines(t *testing.T) []map[string]any {
	t.Helper()
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []map[string]any
	for _, l := range strings.Split(strings.TrimSpace(b.buf.String()), "\n") {
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatalf("log line is not JSON: %q", l)
		}
		out = append(out, m)
	}
	return out
}

// startLoggedNode is startNode with the node's log, as JSON at info, in out.
func startLoggedNode(t *testing.T, out io.Writer) string {
	t.Helper()
	cfg := node.DefaultConfig()
	cfg.HTTP.Addr = "127.0.0.1:0"
	cfg.Storage.DataDir = t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	n, err := node.New(ctx, cfg, "test", slog.New(slog.NewJSONHandler(out, nil)), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error)
	go func() { done <- n.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("shutdown: %v", err)
		}
	})
	return "http://" + n.Addr()
}

// TestAccessLog: every request gets one line at info with what an operator
// needs to find it, and a manifest's line names repository, reference and
// digest.
func TestAccessLog(t *testing.T) {
	var out syncBuffer
	c := client{t, startLoggedNode(t, &out)}
	m := c.image("lib/app", nil)
	put := c.do("PUT", "/v2/lib/app/manifests/v1", map[string]string{"Content-Type": ociManifest, "X-Request-Id": "trace-42", "User-Agent": "crane/test"}, m)
	c.expect(put, 201, "")
	get := c.do("GET", "/v2/lib/app/manifests/v1", map[string]string{"Accept": ociManifest}, nil)
	c.expect(get, 200, "")
	c.expect(c.do("GET", "/v2/Bad/manifests/v1", nil, nil), 400, "NAME_INVALID")

	requests := map[string]map[string]any{} // "METHOD path" -> line
	for _, l := range out.lines(t) {
		if l["msg"] == "request" {
			requests[l["method"].(string)+" "+l["path"].(string)] = l
		}
	}
	digest := put.hdr.Get("Docker-Content-Digest")
	cases := []struct {
		request string
		want    map[string]any
	}{
		{"PUT /v2/lib/app/manifests/v1", map[string]any{
			"level": "INFO", "status": float64(201), "repository": "lib/app", "reference": "v1", "digest": digest,
			"request_id": "trace-42", "user_agent": "crane/test"}},
		{"GET /v2/lib/app/manifests/v1", map[string]any{
			"level": "INFO", "status": float64(200), "repository": "lib/app", "reference": "v1", "digest": digest,
			"request_id": get.hdr.Get("X-Request-Id"), "bytes": float64(len(m))}},
		{"GET /v2/Bad/manifests/v1", map[string]any{"level": "INFO", "status": float64(400)}},
	}
	for _, tc := range cases {
		l, ok := requests[tc.request]
		if !ok {
			t.Errorf("no access-log line for %s; lines: %v", tc.request, requests)
			continue
		}
		for k, v := range tc.want {
			if l[k] != v {
				t.Errorf("%s: %s = %#v, want %#v", tc.request, k, l[k], v)
			}
		}
		for _, k := range []string{"time", "duration", "client", "bytes", "request_id"} {
			if _, ok := l[k]; !ok {
				t.Errorf("%s: no %s in %v", tc.request, k, l)
			}
		}
	}
	if get.hdr.Get("X-Request-Id") == "" {
		t.Error("a read got no X-Request-Id")
	}
	// Blob uploads are logged too, with their repository.
	if l, ok := requests["POST /v2/lib/app/blobs/uploads/"]; !ok || l["repository"] != "lib/app" || l["status"] != float64(201) {
		t.Errorf("upload line = %v", l)
	}
}
