package main

import (
	"context"
	"log/slog"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/berth-registry/berth/fsm"
	"github.com/berth-registry/berth/node/admin"
)

// fakeGC records what the CLI asked for.
type fakeGC struct{ dry, untagged, wait bool }

func (f *fakeGC) RunGC(_ context.Context, dry, untagged, wait bool) (any, error) {
	f.dry, f.untagged, f.wait = dry, untagged, wait
	if dry {
		return map[string]any{"state": "dry-run", "index": 42, "blobs": []string{"sha256:aa"}, "bytes": 7,
			"manifests": []map[string]string{{"repo": "app", "digest": "sha256:bb"}}}, nil
	}
	return map[string]any{"state": "done", "run": "r1", "deleted": 3, "bytes": 99}, nil
}

func (f *fakeGC) GCStatus(context.Context) (any, error) {
	return map[string]any{"runs": []map[string]any{{"Run": "r1", "Started": "2026-01-01T00:00:00Z", "Finished": "2026-01-01T00:00:02Z",
		"Candidates": 4, "Deleted": 3, "Bytes": 99, "Outcome": "swept"}}}, nil
}

func TestGCCommands(t *testing.T) {
	n := &fsmNode{f: fsm.New(slog.New(slog.DiscardHandler))}
	g := &fakeGC{}
	srv := httptest.NewServer(admin.New(testToken, n, n, nil, admin.WithGC(g)))
	t.Cleanup(srv.Close)
	c := &cli{t: t, env: map[string]string{"BERTH_SERVER": srv.URL, "BERTH_TOKEN": testToken}}
	out := c.ok("", "gc", "run", "--dry-run", "--delete-untagged")
	if !g.dry || !g.untagged || g.wait {
		t.Errorf("flags reached the server as %+v", g)
	}
	for _, want := range []string{"index 42", "blob      sha256:aa", "manifest  app@sha256:bb"} {
		if !strings.Contains(out, want) {
			t.Errorf("dry run output lacks %q:\n%s", want, out)
		}
	}
	if out := c.ok("", "gc", "run", "--wait"); !strings.Contains(out, "3 blobs deleted, 99 bytes") || !g.wait || g.dry {
		t.Errorf("run --wait: %s (%+v)", out, g)
	}
	if out := c.ok("", "gc", "status"); !strings.Contains(out, "r1") || !strings.Contains(out, "2s") || !strings.Contains(out, "swept") {
		t.Errorf("status:\n%s", out)
	}
}
