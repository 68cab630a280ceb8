package replication

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"
)

// tokenUpstream puts a fake registry behind a Distribution-style Bearer
// token challenge, counts what it is asked, and injects the faults a real
// registry does not produce on demand (429, 5xx, a slow answer).
type tokenUpstream struct {
	o   *fakeOrigin
	srv *httptest.Server

	mu     sync.Mutex
	fault  int            // status to answer manifest requests with; 0 none
	gate   chan struct{}  // if set, manifest GETs wait for it
	gets   map[string]int // manifest and blob GETs by path
	tokens int
}

const upstreamToken = "tok-for-puller"

func newTokenUpstream(t *testing.T) *tokenUpstream {
	u := &tokenUpstream{o: newFakeOrigin(t), gets: map[string]int{}}
	u.srv = httptest.NewServer(http.HandlerFunc(u.serve))
	t.Cleanup(u.srv.Close)
	return u
}

func (u *tokenUpstream) serve(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path == "/token" {
		if user, pass, ok := r.BasicAuth(); !ok || user != "puller" || pass != "secret" {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		u.mu.Lock()
		u.tokens++
		u.mu.Unlock()
		json.NewEncoder(w).Encode(map[string]any{"token": upstreamToken, "expires_in": 300})
		return
	}
	if r.Header.Get("Authorization") != "Bearer "+upstreamToken {
		w.Header().Set("WWW-Authenticate", `Bearer realm="`+u.srv.URL+`/token",service="upstream"`)
		w.WriteHeader(http.StatusUnauthorized)
		return
	}
	manifest := strings.Contains(r.URL.Path, "/manifests/")
	u.mu.Lock()
	fault, gate := u.fault, u.gate
	if r.Method == http.MethodGet {
		u.gets[r.URL.Path]++
	}
	u.mu.Unlock()
	if manifest && fault != 0 {
		w.WriteHeader(fault)
		return
	}
	if manifest && gate != nil && r.Method == http.MethodGet {
		<-gate
	}
	if manifest && r.Method == http.MethodHead {
		repo, tag, _ := strings.Cut(strings.TrimPrefix(r.URL.Path, "/v2/"), "/manifests/")
		u.o.mu.Lock()
		d, ok := u.o.tags[repo][tag]
		u.o.mu.Unlock()
		if ok {
			w.Header().Set("Docker-Content-Digest", d.String())
		}
	}
	u.o.serve(w, r)
}

func (u *tokenUpstream) count(path string) int {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.gets[path]
}

// tag points tag of repo at d upstream, without an event.
func (u *tokenUpstream) tag(repo, tag string, d digest.Digest) {
	u.o.mu.Lock()
	defer u.o.mu.Unlock()
	if u.o.tags[repo] == nil {
		u.o.tags[repo] = map[string]digest.Digest{}
	}
	u.o.tags[repo][tag] = d
}

func newTestProxy(f *fakeTarget, u *tokenUpstream, store bool, ttl time.Duration) *Proxy {
	p := NewProxy(f.target(), ProxyConfig{MaxManifest: 4 << 20}, slog.New(slog.NewTextHandler(io.Discard, nil)))
	p.SetPolicies([]ProxyPolicy{{
		Name: "hub-cache", Registry: "hub", Key: "k1", Store: store, TTL: ttl,
		Source: func(repo string) (string, bool) {
			src, ok := strings.CutPrefix(repo, "hub/")
			return src, ok
		},
		WantsTag: func(tag string) bool { return !strings.HasSuffix(tag, "-dev") },
		Upstream: Origin{URL: u.srv.URL, Username: "puller", Password: "secret"},
	}})
	return p
}

// The first pull through a Bearer-token upstream fetches, verifies and
// commits the image; the next is served from the cache without asking.
func TestProxyCachesThroughTokenAuth(t *testing.T) {
	u := newTokenUpstream(t)
	d := u.o.image("alpine")
	u.tag("library/alpine", "3", d)
	f := newFakeTarget(t)
	p := newTestProxy(f, u, true, time.Hour)
	ctx := context.Background()

	for _, c := range []struct {
		repo, tag string
		found     bool
		want      Pulled
	}{
		{"team/app", "v1", false, Pulled{}},                                        // no policy covers it
		{"hub/library/alpine", "3-dev", false, Pulled{Covered: true}},              // the policy leaves the tag out
		{"hub/library/alpine", "3", false, Pulled{Covered: true, Committed: true}}, // a miss: fetched
		{"hub/library/alpine", "3", true, Pulled{Covered: true}},                   // cached, within the TTL
		{"hub/library/alpine", "3", false, Pulled{Covered: true, Committed: true}}, // missed just before a commit: read again, not fetched
		{"hub/library/alpine", "nope", false, Pulled{Covered: true}},               // unknown upstream too
	} {
		got, err := p.Manifest(ctx, c.repo, c.tag, "", c.found)
		if err != nil || got.Covered != c.want.Covered || got.Committed != c.want.Committed || got.Manifest != nil {
			t.Errorf("Manifest(%s:%s, found %v) = %+v, %v; want %+v", c.repo, c.tag, c.found, got, err, c.want)
		}
	}
	if got, _ := f.Tag("hub/library/alpine", "3"); got != d {
		t.Errorf("cached tag points at %q, want %s", got, d)
	}
	if !f.Manifest("hub/library/alpine", d) {
		t.Error("manifest not committed")
	}
	if n := u.count("/v2/library/alpine/manifests/3"); n != 1 {
		t.Errorf("upstream asked for the tag %d times, want once", n)
	}
	if u.tokens == 0 {
		t.Error("no token was obtained: the Bearer challenge was not followed")
	}
}

// Concurrent misses of the same tag on a node share one upstream fetch.
func TestProxyFetchesOnce(t *testing.T) {
	u := newTokenUpstream(t)
	u.tag("library/alpine", "3", u.o.image("alpine"))
	f := newFakeTarget(t)
	p := newTestProxy(f, u, true, time.Hour)
	u.mu.Lock()
	u.gate = make(chan struct{})
	u.mu.Unlock()

	var wg sync.WaitGroup
	errs := make(chan error, 20)
	for range 20 {
		wg.Go(func() {
			if got, err := p.Manifest(context.Background(), "hub/library/alpine", "3", "", false); err != nil || !got.Committed {
				errs <- err
			}
		})
	}
	time.Sleep(300 * time.Millisecond) // every reader is waiting on the one fetch
	close(u.gate)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Errorf("a concurrent pull failed: %v", err)
	}
	if n := u.count("/v2/library/alpine/manifests/3"); n != 1 {
		t.Errorf("20 concurrent pulls fetched the manifest %d times, want once", n)
	}
}

// After the TTL a cached tag is revalidated: a moved tag is fetched and
// moved; an upstream that rate-limits, fails or lost the tag leaves the
// cached copy served.
func TestProxyRevalidation(t *testing.T) {
	cases := []struct {
		name      string
		fault     int
		move      bool
		committed bool
	}{
		{"unchanged", 0, false, false},
		{"moved", 0, true, true},
		{"rate limited", http.StatusTooManyRequests, true, false},
		{"upstream error", http.StatusServiceUnavailable, true, false},
		{"gone upstream", http.StatusNotFound, false, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			u := newTokenUpstream(t)
			old := u.o.image("alpine")
			u.tag("library/alpine", "3", old)
			f := newFakeTarget(t)
			p := newTestProxy(f, u, true, time.Millisecond)
			ctx := context.Background()
			if _, err := p.Manifest(ctx, "hub/library/alpine", "3", "", false); err != nil {
				t.Fatal(err)
			}
			want := old
			if c.move {
				moved := u.o.image("alpine, patched")
				u.tag("library/alpine", "3", moved)
				if c.committed {
					want = moved
				}
			}
			u.mu.Lock()
			u.fault = c.fault
			u.mu.Unlock()
			time.Sleep(5 * time.Millisecond) // past the TTL
			got, err := p.Manifest(ctx, "hub/library/alpine", "3", "", true)
			if err != nil || got.Committed != c.committed {
				t.Errorf("revalidation = %+v, %v; want committed %v and no error (the cached copy is served)", got, err, c.committed)
			}
			if d, _ := f.Tag("hub/library/alpine", "3"); d != want {
				t.Errorf("tag points at %s, want %s", d, want)
			}
		})
	}
}

// A mirror's fallback (Store false) serves what it fetched without
// committing anything; bytes that do not match their digest are refused.
func TestProxyFallbackServesWithoutStoring(t *testing.T) {
	u := newTokenUpstream(t)
	d := u.o.image("app")
	u.tag("team/app", "v1", d)
	f := newFakeTarget(t)
	p := newTestProxy(f, u, false, 0)
	ctx := context.Background()

	got, err := p.Manifest(ctx, "hub/team/app", "v1", "", false)
	if err != nil || got.Committed || digest.FromBytes(got.Manifest) != d || got.Digest != d {
		t.Fatalf("fallback manifest = %+v, %v; want the bytes of %s, not committed", got, err, d)
	}
	put, _ := parseForTest("", got.Manifest)
	layer := put.Blobs[1]
	b, err := p.Blob(ctx, "hub/team/app", layer)
	if err != nil || !b.BlobStored || b.Committed {
		t.Fatalf("fallback blob = %+v, %v; want stored, not committed", b, err)
	}
	if f.BlobLinked("hub/team/app", layer) || len(f.listing()) != 0 {
		t.Error("the fallback committed something")
	}
	if _, err := f.store.Stat(ctx, layer); err != nil {
		t.Errorf("blob not in the store: %v", err)
	}

	u.o.mu.Lock()
	u.o.tamper[put.Blobs[0]] = true
	u.o.mu.Unlock()
	if _, err := p.Blob(ctx, "hub/team/app", put.Blobs[0]); err == nil {
		t.Error("tampered bytes were accepted")
	}
	if _, err := f.store.Stat(ctx, put.Blobs[0]); err == nil {
		t.Error("tampered bytes reached the store")
	}
}

// A manifest over the OCI API's size limit is refused as a push of it
// would be: nothing is committed, and the reader gets an error to show.
func TestProxyBoundsManifests(t *testing.T) {
	u := newTokenUpstream(t)
	d := u.o.image("a manifest of a few hundred bytes")
	u.tag("library/big", "v1", d)
	f := newFakeTarget(t)
	p := newTestProxy(f, u, true, time.Hour)
	p.cfg.MaxManifest = 100 // before the first pull builds the client
	_, err := p.Manifest(context.Background(), "hub/library/big", "v1", "", false)
	if err == nil || !strings.Contains(err.Error(), "over 100 bytes") {
		t.Fatalf("err = %v, want the size limit named", err)
	}
	if len(f.listing()) != 0 || f.Manifest("hub/library/big", d) {
		t.Error("an oversized manifest was committed")
	}
}
