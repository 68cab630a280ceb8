package console

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"html"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/raft"
	"github.com/opencontainers/go-digest"

	"github.com/berth-registry/berth/auth"
	"github.com/berth-registry/berth/blob"
	"github.com/berth-registry/berth/events"
	"github.com/berth-registry/berth/fsm"
	"github.com/berth-registry/berth/fsm/resource"
)

var t0 = time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)

// state is a real FSM fed events as Raft would, and the manifest bytes
// a blob store would hold.
type state struct {
	t     *testing.T
	f     *fsm.FSM
	idx   uint64
	blobs map[digest.Digest][]byte
}

func (s *state) ReadView(context.Context) (*fsm.View, error) { return s.f.View(), nil }

func (s *state) Open(_ context.Context, d digest.Digest) (io.ReadSeekCloser, blob.Info, error) {
	b, ok := s.blobs[d]
	if !ok {
		return nil, blob.Info{}, blob.ErrNotFound
	}
	return nopCloser{bytes.NewReader(b)}, blob.Info{Digest: d, Size: int64(len(b))}, nil
}

type nopCloser struct{ *bytes.Reader }

func (nopCloser) Close() error { return nil }

func (s *state) apply(at time.Time, p events.Payload) {
	s.t.Helper()
	b, err := events.Encode(events.Event{Time: at, Payload: p})
	if err != nil {
		s.t.Fatal(err)
	}
	s.idx++
	if res := s.f.Apply(&raft.Log{Index: s.idx, Type: raft.LogCommand, Data: b}); res != nil {
		s.t.Fatalf("apply %T: %v", p, res)
	}
}

func (s *state) applyYAML(doc string) {
	s.t.Helper()
	docs, err := resource.ParseYAML(strings.NewReader(doc))
	if err != nil {
		s.t.Fatal(err)
	}
	for _, d := range docs {
		norm, err := resource.Normalize(d)
		if err != nil {
			s.t.Fatal(err)
		}
		s.apply(t0, events.ResourceApplied{Kind: d.Kind, Name: d.Metadata.Name, Document: norm})
	}
}

// blob links content to repo and returns its descriptor.
func (s *state) blob(repo, mediaType string, content []byte) descriptor {
	d := digest.FromBytes(content)
	s.apply(t0, events.BlobLinked{Repo: repo, Digest: d, Size: int64(len(content))})
	return descriptor{MediaType: mediaType, Digest: d, Size: int64(len(content))}
}

// put stores a manifest's bytes and commits it with tags.
func (s *state) put(repo string, m map[string]any, tags ...string) digest.Digest {
	s.t.Helper()
	b, err := json.Marshal(m)
	if err != nil {
		s.t.Fatal(err)
	}
	d := digest.FromBytes(b)
	s.blobs[d] = b
	ev := events.ManifestPut{Repo: repo, Digest: d, MediaType: m["mediaType"].(string), Size: int64(len(b)), Tags: tags}
	if at, ok := m["artifactType"].(string); ok {
		ev.ArtifactType = at
	} else if c, ok := m["config"].(descriptor); ok {
		ev.ArtifactType = c.MediaType
	}
	if a, ok := m["annotations"].(map[string]string); ok {
		ev.Annotations = a
	}
	if c, ok := m["config"].(descriptor); ok {
		ev.Blobs = append(ev.Blobs, c.Digest)
	}
	if ls, ok := m["layers"].([]descriptor); ok {
		for _, l := range ls {
			ev.Blobs = append(ev.Blobs, l.Digest)
		}
	}
	if ms, ok := m["manifests"].([]descriptor); ok {
		for _, c := range ms {
			ev.Manifests = append(ev.Manifests, c.Digest)
		}
	}
	if sub, ok := m["subject"].(descriptor); ok {
		ev.Subject = sub.Digest
	}
	s.apply(t0, ev)
	return d
}

const (
	ociManifestType = "application/vnd.oci.image.manifest.v1+json"
	ociIndexType    = "application/vnd.oci.image.index.v1+json"
	ociConfigType   = "application/vnd.oci.image.config.v1+json"
	layerType       = "application/vnd.oci.image.layer.v1.tar+gzip"
)

// image pushes an image of one layer to repo.
func (s *state) image(repo, platform string, layer []byte, tags ...string) descriptor {
	os, arch, _ := strings.Cut(platform, "/")
	cfg := s.blob(repo, ociConfigType, []byte(fmt.Sprintf(`{"os":%q,"architecture":%q}`, os, arch)))
	l := s.blob(repo, layerType, layer)
	d := s.put(repo, map[string]any{"schemaVersion": 2, "mediaType": ociManifestType, "config": cfg, "layers": []descriptor{l},
		"annotations": map[string]string{"org.opencontainers.image.title": "<script>alert(1)</script>"}}, tags...)
	return descriptor{MediaType: ociManifestType, Digest: d, Size: int64(len(s.blobs[d]))}
}

type fixture struct {
	*state
	image, index, sbom, sig digest.Digest
}

// newFixture holds what a real push leaves: an image with an SBOM and a
// signature, a two-platform index, a second namespace, and resources.
func newFixture(t *testing.T) *fixture {
	t.Helper()
	s := &state{t: t, f: fsm.New(slog.New(slog.DiscardHandler)), blobs: map[digest.Digest][]byte{}}
	s.applyYAML(`apiVersion: berth.dev/v1
kind: User
metadata: {name: alice}
spec: {passwordHash: '$2a$10$v5rqiIRLqWwHZ5mNeQTzm.jy8bGTt2I35fxSa9Yl7g8.qv0NXED2u'}
---
apiVersion: berth.dev/v1
kind: Namespace
metadata: {name: team-a}
spec:
  members: [{user: alice, role: developer}]
---
apiVersion: berth.dev/v1
kind: Namespace
metadata: {name: team-b}
`)
	// A second generation, so the namespace has a history.
	s.applyYAML(`apiVersion: berth.dev/v1
kind: Namespace
metadata: {name: team-a}
spec:
  members: [{user: alice, role: developer}]
  public: false
  quota: {storage: 10Gi}
`)
	fx := &fixture{state: s}
	img := s.image("team-a/app", "linux/amd64", []byte("layer one"), "v1", "latest")
	fx.image = img.Digest
	amd := s.image("team-a/app", "linux/amd64", []byte("amd64 layer"))
	arm := s.image("team-a/app", "linux/arm64", []byte("arm64 layer"))
	amd.Platform = &struct {
		Architecture string `json:"architecture"`
		OS           string `json:"os"`
		Variant      string `json:"variant,omitempty"`
	}{Architecture: "amd64", OS: "linux"}
	arm.Platform = &struct {
		Architecture string `json:"architecture"`
		OS           string `json:"os"`
		Variant      string `json:"variant,omitempty"`
	}{Architecture: "arm64", OS: "linux", Variant: "v8"}
	fx.index = s.put("team-a/app", map[string]any{"schemaVersion": 2, "mediaType": ociIndexType, "manifests": []descriptor{amd, arm}}, "multi")
	empty := s.blob("team-a/app", "application/vnd.oci.empty.v1+json", []byte("{}"))
	sbomLayer := s.blob("team-a/app", "application/spdx+json", []byte(`{"spdxVersion":"SPDX-2.3"}`))
	fx.sbom = s.put("team-a/app", map[string]any{"schemaVersion": 2, "mediaType": ociManifestType, "artifactType": "application/spdx+json",
		"config": empty, "layers": []descriptor{sbomLayer}, "subject": img})
	sigLayer := s.blob("team-a/app", "application/vnd.dev.cosign.simplesigning.v1+json", []byte(`{"critical":{}}`))
	fx.sig = s.put("team-a/app", map[string]any{"schemaVersion": 2, "mediaType": ociManifestType, "artifactType": "application/vnd.dev.cosign.artifact.sig.v1+json",
		"config": empty, "layers": []descriptor{sigLayer}, "subject": img})
	s.image("team-b/secret", "linux/amd64", []byte("secret layer"), "v1")
	return fx
}

// users are the fake sign-in of the tests: node/access's Identify is
// tested in its own package.
var users = map[string]auth.Identity{
	"alice": {Kind: auth.UserIdentity, Name: "alice"},
	"root":  {Kind: auth.UserIdentity, Name: "root", ClusterAdmin: true},
}

func fakeAuth(r *http.Request, _ *fsm.View) (auth.Identity, error) {
	u, _, ok := r.BasicAuth()
	if !ok {
		return auth.Identity{}, errors.New("sign in")
	}
	id, ok := users[u]
	if !ok {
		return auth.Identity{}, auth.ErrBadCredentials
	}
	return id, nil
}

func testEvents() []Event {
	mk := func(seq uint64, typ, repo, tag string) Event {
		return Event{Seq: seq, CloudEvent: events.CloudEvent{Type: typ, Time: t0,
			Data: events.CloudEventData{Repository: repo, Tag: tag, Index: seq * 10, Actor: "alice"}}}
	}
	return []Event{mk(3, "dev.berth.manifest.pushed", "team-b/secret", "v1"), mk(2, "dev.berth.manifest.pushed", "team-a/app", "v1"),
		{Seq: 1, CloudEvent: events.CloudEvent{Type: "dev.berth.resource.applied", Time: t0, Data: events.CloudEventData{Resources: []events.ResourceRef{{Kind: "Namespace", Name: "team-a"}}}}}}
}

func newConsole(t *testing.T, fx *fixture, authOn bool) *Console {
	t.Helper()
	cfg := Config{
		Views: fx.state, Blobs: fx.state, Version: "v9.9.9", Node: "node-1",
		Now: func() time.Time { return t0.Add(3 * time.Hour) },
		Cluster: func(context.Context) ClusterInfo {
			return ClusterInfo{Leader: "node-1", Nodes: []NodeInfo{
				{ID: "node-1", State: "Leader", Term: 4, CommitIndex: 120, AppliedIndex: 120, Voter: true, Gossip: "alive", Leader: "node-1", EventsState: "publishing"},
				{ID: "node-2", State: "Follower", Term: 4, CommitIndex: 118, AppliedIndex: 115, Voter: true, Gossip: "alive", Leader: "node-1"},
				{ID: "node-3", State: "unreachable", Gossip: "dead", Error: "connection refused"},
			}}
		},
		Events: func(_ context.Context, before uint64, n int) (EventPage, error) {
			return EventPage{Events: testEvents(), Older: 0}, nil
		},
	}
	if authOn {
		cfg.Authenticate = fakeAuth
	}
	c, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func get(h http.Handler, target, user string) *httptest.ResponseRecorder {
	r := httptest.NewRequest("GET", target, nil)
	if user != "" {
		r.Header.Set("Authorization", "Basic "+base64.StdEncoding.EncodeToString([]byte(user+":pw")))
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w
}

func TestPages(t *testing.T) {
	fx := newFixture(t)
	c := newConsole(t, fx, false)
	for _, tc := range []struct {
		name, target string
		want         []string
		not          []string
	}{
		{"home lists repositories", "/ui/", []string{"team-a/app", "team-b/secret", `href="/ui/repository?name=team-a%2Fapp"`}, nil},
		{"repositories", "/ui/repositories", []string{"team-a/app", ">3<"}, nil},
		{"tags with kind, platforms, referrers", "/ui/repository?name=team-a/app",
			[]string{">latest<", ">multi<", ">v1<", "index", "linux/amd64", "linux/arm64/v8", ">sbom<", ">signature<", "3h", shortDigest(fx.image)},
			nil},
		{"image manifest: config, layers, referrers", "/ui/manifest?repo=team-a/app&digest=" + string(fx.image),
			[]string{"Layers (1)", "application/vnd.oci.image.layer.v1.tar&#43;gzip", "application/vnd.oci.image.config.v1&#43;json", "application/spdx&#43;json", "application/vnd.dev.cosign.artifact.sig.v1&#43;json", ">latest<",
				"&lt;script&gt;alert(1)&lt;/script&gt;", "Manifest JSON"},
			[]string{"<script>alert(1)"}},
		{"index manifest: children with platforms", "/ui/manifest?repo=team-a/app&digest=" + string(fx.index),
			[]string{"Manifests (2)", "linux/amd64", "linux/arm64/v8", ">multi<"}, []string{"Layers ("}},
		{"referrer shows its subject", "/ui/manifest?repo=team-a/app&digest=" + string(fx.sbom),
			[]string{"Subject", string(fx.image), ">sbom<"}, nil},
		{"cluster: leader, term, lag, gossip", "/ui/cluster",
			[]string{`<dd id="leader">node-1</dd>`, "<dd>4</dd>", "node-3", "connection refused", "gossip-dead", ">5<", "publishing"}, nil},
		{"events newest first", "/ui/events", []string{"dev.berth.manifest.pushed", "team-b/secret", "Namespace team-a", ">30<"}, nil},
		{"resources by kind", "/ui/resources", []string{"Namespace", "team-a", "team-b", "User", "alice", "No webhooks."}, nil},
		{"one kind", "/ui/resources?kind=users", []string{"alice"}, []string{"team-b"}},
		{"history, hashes hidden", "/ui/resource?kind=Namespace&name=team-a", []string{"generation 2", "generation 1", "current", "10Gi"}, nil},
		{"user document", "/ui/resource?kind=user&name=alice", []string{"(hidden)"}, []string{"$2a$"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := get(c, tc.target, "")
			body := w.Body.String()
			if w.Code != 200 {
				t.Fatalf("GET %s: %d\n%s", tc.target, w.Code, body)
			}
			if csp := w.Header().Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'self'") {
				t.Errorf("CSP = %q", csp)
			}
			for _, s := range tc.want {
				if !strings.Contains(body, s) {
					t.Errorf("GET %s: no %q in\n%s", tc.target, s, body)
				}
			}
			for _, s := range tc.not {
				if strings.Contains(body, s) {
					t.Errorf("GET %s: %q should not show", tc.target, s)
				}
			}
		})
	}
}

func TestBadRequests(t *testing.T) {
	c := newConsole(t, newFixture(t), false)
	for _, tc := range []struct {
		target string
		code   int
		msg    string
	}{
		{"/ui/repositories?n=0", 400, "from 1 to 1000"},
		{"/ui/repositories?n=abc", 400, "from 1 to 1000"},
		{"/ui/repository?name=team-a/app&n=10001", 400, "from 1 to 10000"},
		{"/ui/repository", 400, "name the repository"},
		{"/ui/repository?name=nope/x", 404, "not found"},
		{"/ui/manifest?repo=team-a/app&digest=sha256:zz", 400, "digest"},
		{"/ui/manifest?repo=team-a/app&digest=sha256:" + strings.Repeat("a", 64), 404, "not found"},
		{"/ui/manifest?repo=team-a/app&digest=" + string(digest.FromString("x")) + "&after=bad", 400, "after"},
		{"/ui/events?before=x", 400, "stream sequence"},
		{"/ui/resources?kind=gadgets", 404, "known kinds are"},
		{"/ui/resource?kind=Namespace&name=nope", 404, "not found"},
		{"/ui/resource?kind=Namespace", 400, "name a resource"},
		{"/ui/nothing-here", 404, "no console page"},
	} {
		t.Run(tc.target, func(t *testing.T) {
			w := get(c, tc.target, "")
			if w.Code != tc.code || !strings.Contains(w.Body.String(), tc.msg) {
				t.Fatalf("GET %s: %d, want %d with %q:\n%s", tc.target, w.Code, tc.code, tc.msg, w.Body)
			}
		})
	}
}

func TestAuth(t *testing.T) {
	fx := newFixture(t)
	c := newConsole(t, fx, true)
	for _, tc := range []struct {
		name, target, user string
		code               int
		want, not          []string
	}{
		{"no credentials", "/ui/", "", 401, []string{"sign in"}, []string{"team-a/app"}},
		{"bad credentials", "/ui/", "mallory", 401, []string{auth.ErrBadCredentials.Error()}, nil},
		{"member sees own namespace only", "/ui/", "alice", 200, []string{"team-a/app", "signed in as <b>alice</b>"}, []string{"team-b/secret", "/ui/cluster", "/ui/resources"}},
		{"member may not open another namespace", "/ui/repository?name=team-b/secret", "alice", 404, nil, []string{"secret layer"}},
		{"nor its manifests", "/ui/manifest?repo=team-b/secret&digest=" + string(fx.image), "alice", 404, nil, nil},
		{"member's tags", "/ui/repository?name=team-a/app", "alice", 200, []string{">latest<"}, nil},
		{"cluster is for admins", "/ui/cluster", "alice", 403, []string{"cluster admins"}, []string{"node-3"}},
		{"resources are for admins", "/ui/resources", "alice", 403, nil, []string{"team-b"}},
		{"resource history is for admins", "/ui/resource?kind=user&name=alice", "alice", 403, nil, nil},
		{"events of other namespaces are left out", "/ui/events", "alice", 200, []string{"team-a/app", "2 events of repositories you may not see left out"}, []string{"team-b/secret", "Namespace team-a"}},
		{"admin sees everything", "/ui/", "root", 200, []string{"team-a/app", "team-b/secret", "/ui/cluster"}, nil},
		{"admin's cluster", "/ui/cluster", "root", 200, []string{"node-3"}, nil},
		{"admin's events", "/ui/events", "root", 200, []string{"team-b/secret", "Namespace team-a"}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := get(c, tc.target, tc.user)
			body := w.Body.String()
			if w.Code != tc.code {
				t.Fatalf("GET %s as %q: %d, want %d\n%s", tc.target, tc.user, w.Code, tc.code, body)
			}
			if tc.code == 401 && w.Header().Get("WWW-Authenticate") != `Basic realm="berth console", charset="UTF-8"` {
				t.Errorf("WWW-Authenticate = %q", w.Header().Get("WWW-Authenticate"))
			}
			for _, s := range tc.want {
				if !strings.Contains(body, s) {
					t.Errorf("no %q in\n%s", s, body)
				}
			}
			for _, s := range tc.not {
				if strings.Contains(body, s) {
					t.Errorf("%q should not show to %q", s, tc.user)
				}
			}
		})
	}
}

func TestRepositoriesPagination(t *testing.T) {
	fx := newFixture(t)
	for i := range 5 {
		fx.state.image(fmt.Sprintf("team-a/r%d", i), "linux/amd64", []byte(fmt.Sprintf("r%d", i)), "v1")
	}
	c := newConsole(t, fx, true)
	// alice may see team-a's 6 repositories, not team-b's; 4 a page.
	var seen []string
	target := "/ui/repositories?n=4"
	for pages := 0; target != ""; pages++ {
		if pages > 3 {
			t.Fatal("pagination does not end")
		}
		w := get(c, target, "alice")
		if w.Code != 200 {
			t.Fatalf("GET %s: %d %s", target, w.Code, w.Body)
		}
		body := w.Body.String()
		for _, line := range strings.Split(body, "\n") {
			if i := strings.Index(line, `<a href="/ui/repository?name=`); i >= 0 {
				name := line[i+len(`<a href="/ui/repository?name=`):]
				seen = append(seen, name[:strings.IndexByte(name, '"')])
			}
		}
		target = ""
		if i := strings.Index(body, `rel="next" href="`); i >= 0 {
			rest := body[i+len(`rel="next" href="`):]
			target = strings.ReplaceAll(rest[:strings.IndexByte(rest, '"')], "&amp;", "&")
		}
	}
	want := "team-a%2Fapp team-a%2Fr0 team-a%2Fr1 team-a%2Fr2 team-a%2Fr3 team-a%2Fr4"
	if got := strings.Join(seen, " "); got != want {
		t.Fatalf("pages listed %s, want %s", got, want)
	}
}

// A page of 10000 tags renders in well under a second (the e2e test
// measures it over HTTP against registryd too).
func TestTenThousandTags(t *testing.T) {
	fx := newFixture(t)
	img := fx.state.image("big/tags", "linux/amd64", []byte("big"), "t00000")
	for i := 1; i < 10000; i++ {
		fx.apply(t0, events.TagSet{Repo: "big/tags", Tag: fmt.Sprintf("t%05d", i), Digest: img.Digest})
	}
	c := newConsole(t, fx, false)
	start := time.Now()
	w := get(c, "/ui/repository?name=big/tags&n=10000", "")
	took := time.Since(start)
	if w.Code != 200 {
		t.Fatalf("%d %s", w.Code, w.Body)
	}
	// The first block is HTML; every row is data for the script.
	if rows := strings.Count(w.Body.String(), `<span class="tag">t`); rows != tagBlock {
		t.Fatalf("%d rows of HTML, want %d", rows, tagBlock)
	}
	m := regexp.MustCompile(`id="tags-data" hidden data-rows="([^"]*)"`).FindStringSubmatch(w.Body.String())
	if m == nil {
		t.Fatal("no row data in the page")
	}
	var data tagData
	if err := json.Unmarshal([]byte(html.UnescapeString(m[1])), &data); err != nil {
		t.Fatalf("row data: %v", err)
	}
	if len(data.Tags) != 10000 || len(data.Cell) != 10000 || len(data.Cells) != 1 || data.Tags[9999] != "t09999" || data.Drawn != tagBlock {
		t.Fatalf("row data: %d tags, %d cell indexes, %d distinct cells, drawn %d", len(data.Tags), len(data.Cell), len(data.Cells), data.Drawn)
	}
	if !strings.Contains(data.Cells[0], img.Digest.String()[:19]) {
		t.Errorf("the cells do not name the manifest: %s", data.Cells[0])
	}
	if strings.Contains(w.Body.String(), `rel="next"`) {
		t.Fatal("a next page is offered after the last")
	}
	bound := time.Second
	if raceDetector {
		bound *= 15
	}
	if took > bound {
		t.Fatalf("10000 tags took %v, want under %v", took, bound)
	}
	t.Logf("10000 tags in %v, %d bytes", took, w.Body.Len())
	// The next-page cursor: 100 a page, the second page starts after t00099.
	w = get(c, "/ui/repository?name=big/tags&last=t00099", "")
	if !strings.Contains(w.Body.String(), ">t00100<") || strings.Contains(w.Body.String(), ">t00099<") ||
		!strings.Contains(w.Body.String(), "last=t00199") {
		t.Fatalf("second page wrong:\n%.2000s", w.Body)
	}
}

func TestEventsOffAndStatic(t *testing.T) {
	fx := newFixture(t)
	c, err := New(Config{Views: fx.state, Blobs: fx.state, Cluster: func(context.Context) ClusterInfo { return ClusterInfo{} }})
	if err != nil {
		t.Fatal(err)
	}
	if w := get(c, "/ui/events", ""); w.Code != 200 || !strings.Contains(w.Body.String(), "Events are off") {
		t.Fatalf("events off: %d %s", w.Code, w.Body)
	}
	for _, p := range []string{"/ui/static/console.css", "/ui/static/console.js"} {
		if w := get(c, p, ""); w.Code != 200 || w.Body.Len() < 100 {
			t.Fatalf("GET %s: %d, %d bytes", p, w.Code, w.Body.Len())
		}
	}
}

// noLeader is a node that cannot confirm a read: its own state only.
type noLeader struct{ *state }

func (n noLeader) ReadView(context.Context) (*fsm.View, error) {
	return nil, errors.New("no raft leader")
}
func (n noLeader) View() *fsm.View { return n.f.View() }

// Without a leader the cluster page still shows, from this node's own
// state and saying so; the other pages answer 503.
func TestNoLeader(t *testing.T) {
	fx := newFixture(t)
	c, err := New(Config{Views: noLeader{fx.state}, Blobs: fx.state, Authenticate: fakeAuth,
		Cluster: func(context.Context) ClusterInfo {
			return ClusterInfo{Nodes: []NodeInfo{{ID: "node-1", State: "Candidate", Term: 7, Gossip: "alive"}}}
		}})
	if err != nil {
		t.Fatal(err)
	}
	w := get(c, "/ui/cluster", "root")
	if body := w.Body.String(); w.Code != 200 || !strings.Contains(body, `id="stale"`) || !strings.Contains(body, "no raft leader") ||
		!strings.Contains(body, "none (no quorum?)") || !strings.Contains(body, "Candidate") {
		t.Fatalf("cluster without a leader: %d\n%s", w.Code, body)
	}
	if w := get(c, "/ui/cluster", "alice"); w.Code != 403 {
		t.Fatalf("a member on the stale cluster page: %d", w.Code)
	}
	if w := get(c, "/ui/repositories", "root"); w.Code != 503 || !strings.Contains(w.Body.String(), "no raft leader") {
		t.Fatalf("repositories without a leader: %d %s", w.Code, w.Body)
	}
}

func TestReadOnly(t *testing.T) {
	c := newConsole(t, newFixture(t), false)
	for _, m := range []string{"POST", "PUT", "DELETE"} {
		r := httptest.NewRequest(m, "/ui/repositories", nil)
		w := httptest.NewRecorder()
		c.ServeHTTP(w, r)
		if w.Code != 405 || !strings.Contains(w.Body.String(), "read-only") {
			t.Errorf("%s: %d %s", m, w.Code, w.Body)
		}
	}
}
