package fsm

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/raft"
	"github.com/opencontainers/go-digest"

	"github.com/berth-registry/berth/events"
)

// Run `go test ./fsm -update` to create the golden file of a NEW snapshot
// version. It refuses to rewrite a file git tracks (internal/golden).
var update = flag.Bool("update", false, "create missing golden files (never rewrites a released one)")

var t0 = time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)

func dg(s string) digest.Digest { return digest.FromString(s) }

// harness applies events the way Raft does, with increasing indexes.
type harness struct {
	t   testing.TB
	f   *FSM
	idx uint64
}

func newHarness(t testing.TB) *harness {
	return &harness{t: t, f: New(slog.New(slog.NewTextHandler(io.Discard, nil)))}
}

func (h *harness) apply(p events.Payload) error {
	h.t.Helper()
	b, err := events.Encode(events.Event{Time: t0.Add(time.Duration(h.idx) * time.Second), Payload: p})
	if err != nil {
		h.t.Fatal(err)
	}
	h.idx++
	res := h.f.Apply(&raft.Log{Index: h.idx, Type: raft.LogCommand, Data: b})
	if res == nil {
		return nil
	}
	return res.(error)
}

func (h *harness) must(ps ...events.Payload) {
	h.t.Helper()
	for _, p := range ps {
		if err := h.apply(p); err != nil {
			h.t.Fatalf("%T: %v", p, err)
		}
	}
}

func (h *harness) snapshot() []byte {
	h.t.Helper()
	s, err := h.f.Snapshot()
	if err != nil {
		h.t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := s.(*snapshot).write(&buf); err != nil {
		h.t.Fatal(err)
	}
	return buf.Bytes()
}

// seed builds a small registry: an image with two tags, a referrer, an
// index over the image, and a resource with two generations.
func (h *harness) seed() {
	h.must(
		events.BlobLinked{Repo: "app", Digest: dg("config"), Size: 10},
		events.BlobLinked{Repo: "app", Digest: dg("layer"), Size: 20},
		events.ManifestPut{Repo: "app", Digest: dg("m1"), MediaType: "application/vnd.oci.image.manifest.v1+json", Size: 100,
			Blobs: []digest.Digest{dg("config"), dg("layer")}, Tags: []string{"v1", "latest"}},
		events.ManifestPut{Repo: "app", Digest: dg("sig"), MediaType: "application/vnd.oci.image.manifest.v1+json", Size: 50,
			ArtifactType: "application/vnd.example.sig", Subject: dg("m1"), Blobs: []digest.Digest{dg("config")}},
		events.ManifestPut{Repo: "app", Digest: dg("idx"), MediaType: "application/vnd.oci.image.index.v1+json", Size: 70,
			Manifests: []digest.Digest{dg("m1")}, Tags: []string{"multi"}},
		events.BlobLinked{Repo: "other", Digest: dg("layer"), Size: 20},
		events.ResourceApplied{Kind: "Registry", Name: "hub", Document: []byte(`{"apiVersion":"berth.dev/v1","kind":"Registry","metadata":{"name":"hub"},"spec":{"url":"https://a"}}`)},
		events.ResourceApplied{Kind: "Registry", Name: "hub", Document: []byte(`{"apiVersion":"berth.dev/v1","kind":"Registry","metadata":{"name":"hub"},"spec":{"url":"https://b"}}`)},
	)
}

func TestApplySemantics(t *testing.T) {
	h := newHarness(t)
	h.seed()
	v := h.f.View()
	if d, ok := v.Tag("app", "latest"); !ok || d != dg("m1") {
		t.Errorf("latest -> %s %v", d, ok)
	}
	if tags, _ := v.Tags("app", "", -1); !reflect.DeepEqual(tags, []string{"latest", "multi", "v1"}) {
		t.Errorf("tags = %v", tags)
	}
	if refs, _ := v.Referrers("app", dg("m1"), ReferrersQuery{Limit: 10}); len(refs) != 1 || refs[0].Digest != dg("sig") || refs[0].ArtifactType != "application/vnd.example.sig" {
		t.Errorf("referrers = %+v", refs)
	}
	if repos, _ := v.Repositories("", -1); !reflect.DeepEqual(repos, []string{"app", "other"}) {
		t.Errorf("repos = %v", repos)
	}
	if l, ok := v.FindBlobLink(dg("layer")); !ok || l.Size != 20 {
		t.Errorf("FindBlobLink = %+v %v", l, ok)
	}
	if r, ok := v.Resource("Registry", "hub"); !ok || r.Generation != 2 {
		t.Errorf("resource = %+v", r)
	}
	if hist := v.ResourceHistory("Registry", "hub"); len(hist) != 1 || hist[0].Generation != 1 {
		t.Errorf("history = %+v", hist)
	}

	// Deleting a manifest removes its tags and its referrer entry.
	h.must(events.ManifestDeleted{Repo: "app", Digest: dg("sig")})
	h.must(events.TagDeleted{Repo: "app", Tag: "v1"})
	v = h.f.View()
	if refs, _ := v.Referrers("app", dg("m1"), ReferrersQuery{Limit: 10}); len(refs) != 0 {
		t.Errorf("referrer survived delete: %+v", refs)
	}
	if _, ok := v.Tag("app", "v1"); ok {
		t.Error("deleted tag still resolves")
	}
	// The repository disappears from the catalog once empty.
	h.must(events.RepositoryDeleted{Repo: "other"})
	if repos, _ := h.f.View().Repositories("", -1); !reflect.DeepEqual(repos, []string{"app"}) {
		t.Errorf("repos after delete = %v", repos)
	}
	h.must(events.BlobLinked{Repo: "tmp", Digest: dg("x")}, events.BlobUnlinked{Repo: "tmp", Digest: dg("x")})
	if h.f.View().RepositoryExists("tmp") {
		t.Error("empty repository still listed")
	}
}

func TestRefusalsChangeNothing(t *testing.T) {
	tests := []struct {
		name string
		ev   events.Payload
		code Code
	}{
		{"manifest with unlinked blob", events.ManifestPut{Repo: "app", Digest: dg("m2"), Blobs: []digest.Digest{dg("nope"), dg("config")}, Tags: []string{"x"}}, CodeManifestBlobUnknown},
		{"index with unknown child", events.ManifestPut{Repo: "app", Digest: dg("i2"), Manifests: []digest.Digest{dg("nope")}}, CodeManifestBlobUnknown},
		{"blob linked in another repo only", events.ManifestPut{Repo: "third", Digest: dg("m3"), Blobs: []digest.Digest{dg("config")}}, CodeManifestBlobUnknown},
		{"delete unknown manifest", events.ManifestDeleted{Repo: "app", Digest: dg("nope")}, CodeManifestUnknown},
		{"tag unknown manifest", events.TagSet{Repo: "app", Tag: "t", Digest: dg("nope")}, CodeManifestUnknown},
		{"delete unknown tag", events.TagDeleted{Repo: "app", Tag: "nope"}, CodeTagUnknown},
		{"unlink unknown blob", events.BlobUnlinked{Repo: "app", Digest: dg("nope")}, CodeBlobUnknown},
		{"delete unknown repo", events.RepositoryDeleted{Repo: "nope"}, CodeNameUnknown},
		{"delete unknown resource", events.ResourceDeleted{Kind: "Registry", Name: "nope"}, CodeResourceUnknown},
		{"resource not JSON", events.ResourceApplied{Kind: "Registry", Name: "x", Document: []byte(`"str"`)}, CodeInvalid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t)
			h.seed()
			before := h.snapshot()
			err := h.apply(tt.ev)
			var r *Refusal
			if !errors.As(err, &r) || r.Code != tt.code {
				t.Fatalf("err = %v, want refusal %s", err, tt.code)
			}
			after := h.snapshot()
			// Only the header's index (and so the trailer's hash) may differ.
			if !bytes.Equal(snapshotRows(before), snapshotRows(after)) {
				t.Error("a refused event changed the state")
			}
		})
	}
	h := newHarness(t)
	h.seed()
	err := h.apply(events.ManifestPut{Repo: "app", Digest: dg("m9"), Blobs: []digest.Digest{dg("b"), dg("a"), dg("a")}})
	var r *Refusal
	if !errors.As(err, &r) || len(r.Missing) != 2 || r.Missing[0] > r.Missing[1] {
		t.Errorf("missing digests should be listed once each, sorted: %+v", r)
	}
}

// snapshotRows drops a snapshot's header and trailer lines.
func snapshotRows(b []byte) []byte {
	if i := bytes.IndexByte(b, '\n'); i >= 0 {
		b = b[i+1:]
	}
	if i := bytes.LastIndexByte(bytes.TrimSuffix(b, []byte("\n")), '\n'); i >= 0 {
		b = b[:i+1]
	}
	return b
}

func TestIdenticalResourceApplyIsUnchanged(t *testing.T) {
	h := newHarness(t)
	doc := []byte(`{"apiVersion":"berth.dev/v1","kind":"Registry","metadata":{"name":"hub","labels":{"a":"b"}},"spec":{"url":"https://a"}}`)
	h.must(events.ResourceApplied{Kind: "Registry", Name: "hub", Document: doc})
	first, _ := h.f.View().Resource("Registry", "hub")
	h.must(events.ResourceApplied{Kind: "Registry", Name: "hub", Document: doc})
	second, _ := h.f.View().Resource("Registry", "hub")
	if second.Generation != 1 || !bytes.Equal(first.Document, second.Document) {
		t.Errorf("identical apply changed the resource: %d %s", second.Generation, second.Document)
	}
	h.must(events.ResourceApplied{Kind: "Registry", Name: "hub", Document: bytes.Replace(doc, []byte(`"b"`), []byte(`"c"`), 1)})
	if r, _ := h.f.View().Resource("Registry", "hub"); r.Generation != 2 {
		t.Errorf("label change: generation %d, want 2", r.Generation)
	}
	for i := range 15 {
		h.must(events.ResourceApplied{Kind: "Registry", Name: "hub", Document: []byte(fmt.Sprintf(`{"apiVersion":"berth.dev/v1","kind":"Registry","metadata":{"name":"hub"},"spec":{"n":%d}}`, i))})
	}
	if hist := h.f.View().ResourceHistory("Registry", "hub"); len(hist) != historyLimit {
		t.Errorf("history holds %d generations, want %d", len(hist), historyLimit)
	}
}

func TestPagination(t *testing.T) {
	h := newHarness(t)
	h.must(events.BlobLinked{Repo: "p", Digest: dg("c")}, events.ManifestPut{Repo: "p", Digest: dg("m"), Blobs: []digest.Digest{dg("c")}})
	var want []string
	for i := range 25 {
		tag := fmt.Sprintf("t%02d", i)
		want = append(want, tag)
		h.must(events.TagSet{Repo: "p", Tag: tag, Digest: dg("m")})
		h.must(events.BlobLinked{Repo: fmt.Sprintf("r%02d", i), Digest: dg("c")})
	}
	h.must(events.BlobLinked{Repo: "q", Digest: dg("c")}) // a neighbour must not leak into p's tags
	v := h.f.View()
	var got []string
	last := ""
	for {
		page, more := v.Tags("p", last, 10)
		got = append(got, page...)
		if !more {
			break
		}
		last = page[len(page)-1]
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("paged tags = %v", got)
	}
	if page, more := v.Tags("p", "t24", 10); len(page) != 0 || more {
		t.Errorf("after the last tag: %v %v", page, more)
	}
	if page, more := v.Tags("p", "", 0); len(page) != 0 || !more {
		t.Errorf("n=0: %v %v", page, more)
	}
	if repos, more := v.Repositories("r10", 3); !reflect.DeepEqual(repos, []string{"r11", "r12", "r13"}) || !more {
		t.Errorf("repos page = %v %v", repos, more)
	}
}

func TestWaitApplied(t *testing.T) {
	h := newHarness(t)
	done := make(chan error)
	go func() { done <- h.f.WaitApplied(context.Background(), 3) }()
	h.must(events.BlobLinked{Repo: "a", Digest: dg("1")}, events.BlobLinked{Repo: "a", Digest: dg("2")})
	select {
	case <-done:
		t.Fatal("returned before index 3 was applied")
	case <-time.After(20 * time.Millisecond):
	}
	h.must(events.BlobLinked{Repo: "a", Digest: dg("3")})
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Millisecond)
	defer cancel()
	if err := h.f.WaitApplied(ctx, 100); err == nil {
		t.Error("want timeout")
	}
}

// A batch of resources is one step: a refusal of any leaves none applied,
// and an accepted batch counts generations as single applies do.
func TestResourcesAppliedIsAllOrNothing(t *testing.T) {
	doc := func(name, url string) []byte {
		return []byte(`{"apiVersion":"berth.dev/v1","kind":"Registry","metadata":{"name":"` + name + `"},"spec":{"url":"` + url + `"}}`)
	}
	h := newHarness(t)
	h.seed()
	before := h.snapshot()
	err := h.apply(events.ResourcesApplied{Resources: []events.ResourceApplied{
		{Kind: "Registry", Name: "new", Document: doc("new", "https://n")},
		{Kind: "Registry", Name: "hub", Document: doc("hub", "https://c")},
		{Kind: "Registry", Name: "bad", Document: []byte(`"str"`)},
	}})
	var r *Refusal
	if !errors.As(err, &r) || r.Code != CodeInvalid || !strings.Contains(r.Message, `Registry "bad" was refused, so none of the 3`) {
		t.Fatalf("err = %v, want an INVALID refusal naming the bad resource", err)
	}
	if !bytes.Equal(snapshotRows(before), snapshotRows(h.snapshot())) {
		t.Error("a refused batch applied some of its documents")
	}
	if err := h.apply(events.ResourcesApplied{}); !errors.As(err, &r) {
		t.Errorf("empty batch: %v", err)
	}

	h.must(events.ResourcesApplied{Resources: []events.ResourceApplied{
		{Kind: "Registry", Name: "new", Document: doc("new", "https://n")},
		{Kind: "Registry", Name: "hub", Document: doc("hub", "https://c")},
	}})
	v := h.f.View()
	if got, _ := v.Resource("Registry", "new"); got.Generation != 1 {
		t.Errorf("new: generation %d, want 1", got.Generation)
	}
	if got, _ := v.Resource("Registry", "hub"); got.Generation != 3 {
		t.Errorf("hub: generation %d, want 3", got.Generation)
	}
	if hist := v.ResourceHistory("Registry", "hub"); len(hist) != 2 {
		t.Errorf("hub history %d, want 2", len(hist))
	}
}
