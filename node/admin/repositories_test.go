package admin

import (
	"context"
	"encoding/json"
	"net/http"
	"testing"

	"github.com/opencontainers/go-digest"

	"github.com/berth-registry/berth/events"
)

// pushShared stores two images that share a 1000-byte layer in team/app
// and one more image with the same layer in web.
func pushShared(t *testing.T, n *logNode) {
	t.Helper()
	layer, config := digest.FromString("layer"), digest.FromString("config")
	var ps []events.Payload
	for _, img := range []struct {
		repo, manifest string
		size           int64
	}{{"team/app", "m1", 100}, {"team/app", "m2", 200}, {"web", "m3", 300}} {
		ps = append(ps,
			events.BlobLinked{Repo: img.repo, Digest: layer, Size: 1000},
			events.BlobLinked{Repo: img.repo, Digest: config, Size: 10},
			events.ManifestPut{Repo: img.repo, Digest: digest.FromString(img.manifest), Size: img.size,
				Blobs: []digest.Digest{config, layer}, Tags: []string{img.manifest}})
	}
	for _, p := range ps {
		if _, err := n.Propose(context.Background(), p); err != nil {
			t.Fatal(err)
		}
	}
}

func TestRepositoriesAccounting(t *testing.T) {
	srv, n := newServer(t)
	pushShared(t, n)
	js := func(v any) string {
		b, _ := json.Marshal(v)
		return string(b)
	}
	const (
		app    = `{"blobs":2,"bytes":1310,"logicalBytes":2320,"manifests":2,"name":"team/app","tags":2}`
		web    = `{"blobs":2,"bytes":1310,"logicalBytes":1310,"manifests":1,"name":"web","tags":1}`
		totals = `{"bytes":1610,"digests":5,"logicalBytes":3630}`
	)
	cases := []struct {
		name, path string
		code       int
		want       map[string]string // top-level field: its JSON
	}{
		{"every repository and the totals", "/admin/v1/repositories", http.StatusOK,
			map[string]string{"repositories": "[" + app + "," + web + "]", "totals": totals, "next": "null"}},
		{"a page of one says where the next starts", "/admin/v1/repositories?n=1", http.StatusOK,
			map[string]string{"repositories": "[" + app + "]", "next": `"team/app"`, "totals": totals}},
		{"the last page", "/admin/v1/repositories?n=1&last=team/app", http.StatusOK,
			map[string]string{"repositories": "[" + web + "]", "next": "null"}},
		{"past the end: an empty list", "/admin/v1/repositories?last=zzz", http.StatusOK,
			map[string]string{"repositories": "[]"}},
		{"n must be a positive integer", "/admin/v1/repositories?n=0", http.StatusBadRequest,
			map[string]string{"error": `"n must be a positive integer, got \"0\""`}},
		{"n not a number", "/admin/v1/repositories?n=ten", http.StatusBadRequest,
			map[string]string{"error": `"n must be a positive integer, got \"ten\""`}},
		{"one repository with a slash in its name", "/admin/v1/repositories/team/app", http.StatusOK,
			map[string]string{"bytes": "1310", "logicalBytes": "2320", "name": `"team/app"`}},
		{"an unknown repository", "/admin/v1/repositories/nope", http.StatusNotFound,
			map[string]string{"error": `"repository \"nope\" does not exist (clusterctl get repositories lists them)"`}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			code, m := call(t, srv, "GET", c.path, "")
			if code != c.code {
				t.Fatalf("status %d, want %d: %v", code, c.code, m)
			}
			for k, want := range c.want {
				if got := js(m[k]); got != want {
					t.Errorf("%s = %s, want %s", k, got, want)
				}
			}
		})
	}
	if code, _ := call(t, srv, "POST", "/admin/v1/repositories", ""); code != http.StatusMethodNotAllowed {
		t.Errorf("POST: %d, want 405", code)
	}
	// The numbers follow a delete: team/app's rows go, the shared layer
	// stays counted once for web.
	if _, err := n.Propose(context.Background(), events.RepositoryDeleted{Repo: "team/app"}); err != nil {
		t.Fatal(err)
	}
	_, m := call(t, srv, "GET", "/admin/v1/repositories", "")
	if got, want := js(m["repositories"]), "["+web+"]"; got != want {
		t.Errorf("after delete: %s, want %s", got, want)
	}
	if got, want := js(m["totals"]), `{"bytes":1310,"digests":3,"logicalBytes":1310}`; got != want {
		t.Errorf("totals after delete: %s, want %s", got, want)
	}
}
