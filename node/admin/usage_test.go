package admin

import (
	"context"
	"encoding/json"
	"net/http"
	"testing"

	"github.com/opencontainers/go-digest"

	"github.com/berth-registry/berth/events"
)

// A Namespace's GET (and list) shows the bytes its repositories store,
// deduplicated, and its quota in bytes; other kinds get no usage.
func TestNamespaceStatusUsage(t *testing.T) {
	srv, n := newServer(t)
	if code, m := call(t, srv, "POST", "/admin/v1/apply", authKinds); code != http.StatusOK {
		t.Fatalf("apply: %d %v", code, m)
	}
	layer := digest.FromString("layer")
	for _, p := range []events.Payload{
		events.BlobLinked{Repo: "team-a/app", Digest: layer, Size: 1000},
		events.ManifestPut{Repo: "team-a/app", Digest: digest.FromString("m1"), Size: 100, Blobs: []digest.Digest{layer}},
		events.BlobLinked{Repo: "team-a/web", Digest: layer, Size: 1000},
		events.ManifestPut{Repo: "team-a/web", Digest: digest.FromString("m2"), Size: 200, Blobs: []digest.Digest{layer}},
	} {
		if _, err := n.Propose(context.Background(), p); err != nil {
			t.Fatal(err)
		}
	}
	status := func(m map[string]any) string {
		b, _ := json.Marshal(m["status"])
		return string(b)
	}
	want := `{"quota":53687091200,"usage":1300}`
	if code, m := call(t, srv, "GET", "/admin/v1/resources/namespaces/team-a", ""); code != http.StatusOK || status(m) != want {
		t.Errorf("get: %d status %s, want %s", code, status(m), want)
	}
	code, m := call(t, srv, "GET", "/admin/v1/resources/namespaces", "")
	items, _ := m["items"].([]any)
	if code != http.StatusOK || len(items) != 1 || status(items[0].(map[string]any)) != want {
		t.Errorf("list: %d %v", code, m)
	}
	if code, m := call(t, srv, "GET", "/admin/v1/resources/users/alice", ""); code != http.StatusOK || m["status"] != nil {
		t.Errorf("user: %d status %v", code, m["status"])
	}
}
