package main

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"

	"github.com/berth-registry/berth/events"
)

// pushImages stores, through the real admin API's FSM, two images in
// team-a/app and one in web sharing a 3 MiB layer, plus a blob web links
// but no manifest lists.
func pushImages(t *testing.T, n *fsmNode) {
	t.Helper()
	layer, config, stray := digest.FromString("layer"), digest.FromString("config"), digest.FromString("stray")
	var ps []events.Payload
	for _, img := range []struct {
		repo, manifest string
		size           int64
	}{{"team-a/app", "v1", 1000}, {"team-a/app", "v2", 1024}, {"web", "v1", 2000}} {
		ps = append(ps,
			events.BlobLinked{Repo: img.repo, Digest: layer, Size: 3 << 20},
			events.BlobLinked{Repo: img.repo, Digest: config, Size: 500},
			events.ManifestPut{Repo: img.repo, Digest: digest.FromString(img.repo + img.manifest), Size: img.size,
				Blobs: []digest.Digest{config, layer}, Tags: []string{img.manifest}})
	}
	ps = append(ps, events.BlobLinked{Repo: "web", Digest: stray, Size: 7})
	for _, p := range ps {
		if _, err := n.Propose(context.Background(), p); err != nil {
			t.Fatal(err)
		}
	}
}

// table normalises tabwriter's padding so the test states columns, not
// spaces.
func table(s string) string {
	var out []string
	for _, l := range strings.Split(strings.TrimSpace(s), "\n") {
		out = append(out, strings.Join(strings.Fields(l), " | "))
	}
	return strings.Join(out, "\n")
}

func TestGetRepositories(t *testing.T) {
	c, n := newCLIWithNode(t)
	if got := c.ok("", "get", "repositories"); got != "No repositories found.\n" {
		t.Errorf("empty registry: %q", got)
	}
	pushImages(t, n)
	// team-a/app: 3Mi + 500 + 1000 + 1024 deduplicated; logical twice the
	// layer and config. The registry: the layer and config once.
	cases := []struct {
		args []string
		want string
	}{
		{[]string{"get", "repositories"}, `NAME | TAGS | MANIFESTS | SIZE
team-a/app | 2 | 2 | 3Mi
web | 1 | 1 | 3Mi
TOTAL | (2 | repositories) | 3 | 3 | 3Mi`},
		{[]string{"get", "repos", "-o", "wide"}, `NAME | TAGS | MANIFESTS | SIZE | LOGICAL | BLOBS
team-a/app | 2 | 2 | 3Mi | 6Mi | 2
web | 1 | 1 | 3Mi | 3Mi | 3
TOTAL | (2 | repositories) | 3 | 3 | 3Mi | 9Mi | 5`},
		{[]string{"get", "repository", "team-a/app", "-o", "wide"}, `NAME | TAGS | MANIFESTS | SIZE | LOGICAL | BLOBS
team-a/app | 2 | 2 | 3Mi | 6Mi | 2`},
	}
	for _, tc := range cases {
		if got := table(c.ok("", tc.args...)); got != tc.want {
			t.Errorf("clusterctl %v:\n%s\nwant:\n%s", tc.args, got, tc.want)
		}
	}

	// json has the exact bytes.
	var doc struct {
		Repositories []repositoryRow  `json:"repositories"`
		Totals       repositoryTotals `json:"totals"`
	}
	if err := json.Unmarshal([]byte(c.ok("", "get", "repositories", "-o", "json")), &doc); err != nil {
		t.Fatal(err)
	}
	const layer, config = 3 << 20, 500
	want := fmt.Sprint([]repositoryRow{
		{Name: "team-a/app", Tags: 2, Manifests: 2, Blobs: 2, Bytes: layer + config + 1000 + 1024, LogicalBytes: 2*(layer+config) + 1000 + 1024},
		{Name: "web", Tags: 1, Manifests: 1, Blobs: 3, Bytes: layer + config + 2000, LogicalBytes: layer + config + 2000},
	}, repositoryTotals{Bytes: layer + config + 1000 + 1024 + 2000, LogicalBytes: 3*(layer+config) + 1000 + 1024 + 2000, Digests: 5})
	if got := fmt.Sprint(doc.Repositories, doc.Totals); got != want {
		t.Errorf("json: %s\nwant %s", got, want)
	}

	c.fails("", `repository "nope" does not exist`, "get", "repo", "nope")
	c.fails("", "; or repositories (alias repos)", "get", "repostories")
	c.fails("", `unknown output format "yaml": use json or wide (repositories print as a table, wide or json)`, "get", "repositories", "-o", "yaml")
}

// A registry with more repositories than one API page: clusterctl follows
// next and lists every one once.
func TestGetRepositoriesFollowsPages(t *testing.T) {
	c, n := newCLIWithNode(t)
	const count = 1001 // the admin API's page holds 1000
	for i := range count {
		if _, err := n.Propose(context.Background(), events.BlobLinked{Repo: fmt.Sprintf("r%04d", i), Digest: digest.FromString("x"), Size: 1}); err != nil {
			t.Fatal(err)
		}
	}
	var doc struct {
		Repositories []repositoryRow `json:"repositories"`
	}
	if err := json.Unmarshal([]byte(c.ok("", "get", "repositories", "-o", "json")), &doc); err != nil {
		t.Fatal(err)
	}
	if len(doc.Repositories) != count || doc.Repositories[count-1].Name != "r1000" {
		t.Fatalf("%d repositories listed, last %+v", len(doc.Repositories), doc.Repositories[len(doc.Repositories)-1])
	}
}
