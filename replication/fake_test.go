package replication

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/opencontainers/go-digest"

	"github.com/berth-registry/berth/blob"
	"github.com/berth-registry/berth/events"
)

// fakeOrigin is a Berth origin reduced to what a mirror reads: an OCI API
// over in-memory content and a JetStream stream of CloudEvents carrying
// Berth-Index, as events/outbox publishes them.
type fakeOrigin struct {
	t   *testing.T
	srv *httptest.Server
	js  jetstream.JetStream
	url string // NATS

	mu        sync.Mutex
	index     uint64
	tags      map[string]map[string]digest.Digest // repo -> tag -> digest
	manifests map[digest.Digest][]byte
	blobs     map[digest.Digest][]byte
	tamper    map[digest.Digest]bool // serve other bytes for these
	catalogs  int                    // catalog requests served
}

func newFakeOrigin(t *testing.T) *fakeOrigin {
	t.Helper()
	ns, err := server.NewServer(&server.Options{Host: "127.0.0.1", Port: -1, JetStream: true, StoreDir: t.TempDir(), NoLog: true, NoSigs: true})
	if err != nil {
		t.Fatal(err)
	}
	ns.Start()
	if !ns.ReadyForConnections(10 * time.Second) {
		t.Fatal("nats-server not ready")
	}
	t.Cleanup(ns.Shutdown)
	nc, err := nats.Connect(ns.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := js.CreateStream(context.Background(), jetstream.StreamConfig{Name: "BERTH_EVENTS", Subjects: []string{"berth.>"}}); err != nil {
		t.Fatal(err)
	}
	o := &fakeOrigin{t: t, js: js, url: ns.ClientURL(), index: 10, tags: map[string]map[string]digest.Digest{},
		manifests: map[digest.Digest][]byte{}, blobs: map[digest.Digest][]byte{}, tamper: map[digest.Digest]bool{}}
	o.srv = httptest.NewServer(http.HandlerFunc(o.serve))
	t.Cleanup(o.srv.Close)
	return o
}

func (o *fakeOrigin) serve(w http.ResponseWriter, r *http.Request) {
	o.mu.Lock()
	defer o.mu.Unlock()
	w.Header().Set("Berth-Applied-Index", strconv.FormatUint(o.index, 10))
	p := strings.TrimPrefix(r.URL.Path, "/v2/")
	switch {
	case p == "_catalog":
		o.catalogs++
		repos := []string{}
		for repo := range o.tags {
			repos = append(repos, repo)
		}
		slices.Sort(repos)
		json.NewEncoder(w).Encode(map[string]any{"repositories": repos})
	case strings.HasSuffix(p, "/tags/list"):
		repo := strings.TrimSuffix(p, "/tags/list")
		tags := []string{}
		for t := range o.tags[repo] {
			tags = append(tags, t)
		}
		slices.Sort(tags)
		json.NewEncoder(w).Encode(map[string]any{"name": repo, "tags": tags})
	case strings.Contains(p, "/manifests/"):
		repo, ref, _ := strings.Cut(p, "/manifests/")
		d := digest.Digest(ref)
		if td, ok := o.tags[repo][ref]; ok {
			d = td
		}
		b, ok := o.manifests[d]
		if !ok {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "application/vnd.oci.image.manifest.v1+json")
		w.Write(b)
	case strings.Contains(p, "/blobs/"):
		_, ref, _ := strings.Cut(p, "/blobs/")
		b, ok := o.blobs[digest.Digest(ref)]
		if !ok {
			http.NotFound(w, r)
			return
		}
		if o.tamper[digest.Digest(ref)] {
			b = append([]byte("evil "), b[5:]...) // same length, other bytes
		}
		w.Write(b)
	case strings.Contains(p, "/referrers/"):
		json.NewEncoder(w).Encode(map[string]any{"schemaVersion": 2, "manifests": []any{}})
	default:
		http.NotFound(w, r)
	}
}

// image stores a new image (config and one layer) and returns its digest.
func (o *fakeOrigin) image(content string) digest.Digest {
	o.mu.Lock()
	defer o.mu.Unlock()
	cfg := []byte(`{"architecture":"amd64","os":"linux","c":"` + content + `"}`)
	layer := []byte("layer bytes of " + content)
	o.blobs[digest.FromBytes(cfg)], o.blobs[digest.FromBytes(layer)] = cfg, layer
	m := fmt.Sprintf(`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"%s","size":%d},"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":"%s","size":%d}]}`,
		digest.FromBytes(cfg), len(cfg), digest.FromBytes(layer), len(layer))
	d := digest.FromBytes([]byte(m))
	o.manifests[d] = []byte(m)
	return d
}

// push tags an image at the origin and publishes manifest.pushed.
func (o *fakeOrigin) push(repo, tag string, d digest.Digest) uint64 {
	o.mu.Lock()
	if o.tags[repo] == nil {
		o.tags[repo] = map[string]digest.Digest{}
	}
	o.tags[repo][tag] = d
	o.mu.Unlock()
	return o.publish(events.ManifestPut{Repo: repo, Digest: d, Tags: []string{tag}})
}

func (o *fakeOrigin) deleteTag(repo, tag string) uint64 {
	o.mu.Lock()
	delete(o.tags[repo], tag)
	o.mu.Unlock()
	return o.publish(events.TagDeleted{Repo: repo, Tag: tag})
}

// publish commits p at the next index and publishes it as the outbox does.
func (o *fakeOrigin) publish(p events.Payload) uint64 {
	if ts, ok := p.(events.TagSet); ok {
		o.mu.Lock()
		if o.tags[ts.Repo] == nil {
			o.tags[ts.Repo] = map[string]digest.Digest{}
		}
		o.tags[ts.Repo][ts.Tag] = ts.Digest
		o.mu.Unlock()
	}
	o.t.Helper()
	o.mu.Lock()
	o.index++
	idx := o.index
	o.mu.Unlock()
	ce, ok := events.ToCloudEvent("origin", idx, events.Event{Time: time.Now(), Payload: p})
	if !ok {
		o.t.Fatalf("%T is not published", p)
	}
	b, _ := json.Marshal(ce)
	msg := &nats.Msg{Subject: events.NATSSubject(ce), Data: b, Header: nats.Header{}}
	msg.Header.Set("Berth-Index", strconv.FormatUint(idx, 10))
	if _, err := o.js.PublishMsg(context.Background(), msg); err != nil {
		o.t.Fatal(err)
	}
	return idx
}

// fakeTarget is the mirror cluster: an in-memory state that checks what
// Apply checks (a manifest's blobs linked first), and a real blob store.
type fakeTarget struct {
	mu        sync.Mutex
	cursors   map[string]Cursor
	links     map[string]bool // repo@digest
	manifests map[string]bool // repo@digest
	tags      map[string]map[string]digest.Digest
	store     blob.Store
	reports   []events.ReplicationReported
}

func newFakeTarget(t *testing.T) *fakeTarget {
	store, err := blob.NewFS(t.TempDir(), slog.New(slog.NewTextHandler(io.Discard, nil)), blob.FSLimits{})
	if err != nil {
		t.Fatal(err)
	}
	return &fakeTarget{cursors: map[string]Cursor{}, links: map[string]bool{}, manifests: map[string]bool{}, tags: map[string]map[string]digest.Digest{}, store: store}
}

func (f *fakeTarget) target() Target {
	return Target{
		View:      func() Local { return f },
		Propose:   f.propose,
		Blobs:     f.store,
		Parse:     parseForTest,
		LinkSince: func() uint64 { return 0 },
		Fence:     func() error { return nil },
	}
}

func (f *fakeTarget) propose(ctx context.Context, p events.Payload) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	switch p := p.(type) {
	case events.BlobLinked:
		if _, err := f.store.Stat(ctx, p.Digest); err != nil {
			return fmt.Errorf("link of %s whose bytes are not stored", p.Digest)
		}
		f.links[p.Repo+"@"+p.Digest.String()] = true
	case events.ManifestPut:
		for _, b := range p.Blobs {
			if !f.links[p.Repo+"@"+b.String()] {
				return fmt.Errorf("manifest %s before its blob %s", p.Digest, b)
			}
		}
		f.manifests[p.Repo+"@"+p.Digest.String()] = true
		for _, t := range p.Tags {
			f.setTag(p.Repo, t, p.Digest)
		}
	case events.TagSet:
		f.setTag(p.Repo, p.Tag, p.Digest)
	case events.TagDeleted:
		delete(f.tags[p.Repo], p.Tag)
	case events.ManifestDeleted:
		delete(f.manifests, p.Repo+"@"+p.Digest.String())
		for t, d := range f.tags[p.Repo] {
			if d == p.Digest {
				delete(f.tags[p.Repo], t)
			}
		}
	case events.MirrorCursor:
		f.cursors[p.Policy] = Cursor{Index: p.Index, Seq: p.Seq}
	case events.ReplicationReported:
		f.reports = append(f.reports, p)
	default:
		return fmt.Errorf("unexpected %T", p)
	}
	return nil
}

func (f *fakeTarget) setTag(repo, tag string, d digest.Digest) {
	if f.tags[repo] == nil {
		f.tags[repo] = map[string]digest.Digest{}
	}
	f.tags[repo][tag] = d
}

func (f *fakeTarget) Cursor(policy string) (Cursor, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	c, ok := f.cursors[policy]
	return c, ok
}
func (f *fakeTarget) RepositoryExists(repo string) bool { return false }
func (f *fakeTarget) Manifest(repo string, d digest.Digest) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.manifests[repo+"@"+d.String()]
}
func (f *fakeTarget) BlobLinked(repo string, d digest.Digest) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.links[repo+"@"+d.String()]
}
func (f *fakeTarget) Tag(repo, tag string) (digest.Digest, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	d, ok := f.tags[repo][tag]
	return d, ok
}
func (f *fakeTarget) Tags(repo string) []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []string
	for t := range f.tags[repo] {
		out = append(out, t)
	}
	return out
}
func (f *fakeTarget) ReadOnly() bool { return false }

// listing is every repo:tag -> digest.
func (f *fakeTarget) listing() map[string]digest.Digest {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := map[string]digest.Digest{}
	for repo, tags := range f.tags {
		for t, d := range tags {
			out[repo+":"+t] = d
		}
	}
	return out
}

func parseForTest(_ string, body []byte) (events.ManifestPut, error) {
	var m struct {
		MediaType string `json:"mediaType"`
		Config    struct {
			Digest digest.Digest `json:"digest"`
		} `json:"config"`
		Layers []struct {
			Digest digest.Digest `json:"digest"`
		} `json:"layers"`
	}
	if err := json.Unmarshal(body, &m); err != nil {
		return events.ManifestPut{}, err
	}
	if m.Config.Digest == "" {
		return events.ManifestPut{}, errors.New("no config")
	}
	put := events.ManifestPut{MediaType: m.MediaType, Blobs: []digest.Digest{m.Config.Digest}}
	for _, l := range m.Layers {
		put.Blobs = append(put.Blobs, l.Digest)
	}
	return put, nil
}

func tagSet(repo, tag string, d digest.Digest) events.TagSet {
	return events.TagSet{Repo: repo, Tag: tag, Digest: d}
}
