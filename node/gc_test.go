package node

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/berth-registry/berth/blob"
	"github.com/berth-registry/berth/node/api"
)

// startGCNode runs a real single node (Raft, filesystem driver) whose GC
// has no grace period, so a layer is garbage the moment no manifest
// references it: the harshest setting for the race between pushes and
// sweeps.
func startGCNode(t *testing.T) (*Node, string) {
	t.Helper()
	n := runTestNode(t, nil, func(n *Node) {
		n.cfg.GC.UploadMaxAge = 0 // below what Validate allows: tests only
	})
	return n, "http://" + n.Addr()
}

type pushed struct {
	repo, tag string
	blobs     map[digest.Digest][]byte
}

// client is a registry client that, like docker and crane, skips blobs a
// HEAD finds and starts an image over when the registry refuses a step.
type client struct {
	t    *testing.T
	base string
	hc   *http.Client
}

func (c *client) do(method, url string, body []byte, hdr ...string) (*http.Response, []byte, error) {
	req, err := http.NewRequest(method, url, bytes.NewReader(body))
	if err != nil {
		return nil, nil, err
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return nil, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp, b, err
}

func (c *client) pushBlob(repo string, b []byte) error {
	d := digest.FromBytes(b)
	if resp, _, err := c.do("HEAD", c.base+"/v2/"+repo+"/blobs/"+d.String(), nil); err == nil && resp.StatusCode == http.StatusOK {
		return nil
	}
	resp, _, err := c.do("POST", c.base+"/v2/"+repo+"/blobs/uploads/", nil)
	if err != nil || resp.StatusCode != http.StatusAccepted {
		return fmt.Errorf("POST upload: %v %v", resp, err)
	}
	loc := c.base + resp.Header.Get("Location")
	sep := "?"
	if strings.Contains(loc, "?") {
		sep = "&"
	}
	resp, body, err := c.do("PUT", loc+sep+"digest="+d.String(), b)
	if err != nil || resp.StatusCode != http.StatusCreated {
		return fmt.Errorf("PUT upload: %v %s %v", resp.Status, body, err)
	}
	return nil
}

// pushImage pushes config and layers, then the manifest by tag; ok is
// true only for a 201 on the manifest, the registry's acknowledgement.
func (c *client) pushImage(repo, tag string, blobs [][]byte) (ok bool) {
	for _, b := range blobs {
		if err := c.pushBlob(repo, b); err != nil {
			return false
		}
	}
	desc := func(mt string, b []byte) map[string]any {
		return map[string]any{"mediaType": mt, "digest": digest.FromBytes(b), "size": len(b)}
	}
	var layers []any
	for _, l := range blobs[1:] {
		layers = append(layers, desc("application/vnd.oci.image.layer.v1.tar", l))
	}
	m, _ := json.Marshal(map[string]any{"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
		"config": desc("application/vnd.oci.image.config.v1+json", blobs[0]), "layers": layers})
	resp, _, err := c.do("PUT", c.base+"/v2/"+repo+"/manifests/"+tag, m, "Content-Type", "application/vnd.oci.image.manifest.v1+json")
	return err == nil && resp.StatusCode == http.StatusCreated
}

// TestGCRacesConcurrentPushers: pushers of the same layers run while GC
// runs back to back with no grace period. Afterwards every acknowledged
// manifest and each of its blobs is readable, through the API and in the
// store: no acknowledged link points at deleted bytes.
func TestGCRacesConcurrentPushers(t *testing.T) {
	n, base := startGCNode(t)
	c := &client{t: t, base: base, hc: &http.Client{Timeout: 30 * time.Second}}
	const pushers, rounds = 4, 12
	var (
		mu    sync.Mutex
		acked []pushed
		wg    sync.WaitGroup
		stop  atomic.Bool
	)
	for p := range pushers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			repo := fmt.Sprintf("team/app%d", p)
			for r := range rounds {
				// The same config and layers for every pusher in a round.
				blobs := [][]byte{[]byte(fmt.Sprintf(`{"round":%d}`, r)), []byte(fmt.Sprintf("shared layer A of round %d", r)), []byte(fmt.Sprintf("shared layer B of round %d", r))}
				// A layer whose manifest never comes: garbage for the sweep.
				c.pushBlob(repo, []byte(fmt.Sprintf("orphan %d/%d", p, r)))
				tag := fmt.Sprintf("r%d", r)
				for attempt := 0; attempt < 20; attempt++ {
					if c.pushImage(repo, tag, blobs) {
						m := map[digest.Digest][]byte{}
						for _, b := range blobs {
							m[digest.FromBytes(b)] = b
						}
						mu.Lock()
						acked = append(acked, pushed{repo, tag, m})
						mu.Unlock()
						break
					}
					time.Sleep(20 * time.Millisecond)
				}
			}
		}()
	}
	var runs, deleted int
	gcDone := make(chan struct{})
	go func() {
		defer close(gcDone)
		for i := 0; !stop.Load(); i++ {
			a, err := n.RunGC(context.Background(), GCRunRequest{Wait: true, DeleteUntagged: i%2 == 1})
			if err != nil {
				t.Errorf("gc run: %v", err)
				return
			}
			runs++
			deleted += a.Deleted
		}
	}()
	wg.Wait()
	stop.Store(true)
	<-gcDone
	if _, err := n.RunGC(context.Background(), GCRunRequest{Wait: true}); err != nil {
		t.Fatal(err)
	}
	if len(acked) < pushers*rounds/2 {
		t.Errorf("only %d of %d pushes were acknowledged", len(acked), pushers*rounds)
	}
	if runs < 3 || deleted == 0 {
		t.Errorf("GC ran %d times and deleted %d blobs: the race was not exercised", runs, deleted)
	}
	for _, a := range acked {
		resp, _, err := c.do("GET", base+"/v2/"+a.repo+"/manifests/"+a.tag, nil, "Accept", "application/vnd.oci.image.manifest.v1+json")
		if err != nil || resp.StatusCode != http.StatusOK {
			t.Errorf("%s:%s acknowledged but GET manifest: %v %v", a.repo, a.tag, resp.Status, err)
		}
		for d, want := range a.blobs {
			resp, body, err := c.do("GET", base+"/v2/"+a.repo+"/blobs/"+d.String(), nil)
			if err != nil || resp.StatusCode != http.StatusOK || !bytes.Equal(body, want) {
				t.Errorf("%s:%s acknowledged but blob %s: %v %v", a.repo, a.tag, d, resp.Status, err)
			}
			if _, err := n.blobs.Stat(context.Background(), d); err != nil {
				t.Errorf("%s:%s acknowledged but the store lost %s: %v", a.repo, a.tag, d, err)
			}
		}
	}
	t.Logf("%d pushes acknowledged, %d GC runs deleted %d blobs", len(acked), runs, deleted)
}

// TestGCAdminEndpoints: a dry run lists exactly what the run then
// deletes, status shows the run, bad input is a 400 and nothing else.
func TestGCAdminEndpoints(t *testing.T) {
	n, base := startGCNode(t)
	c := &client{t: t, base: base, hc: &http.Client{Timeout: 30 * time.Second}}
	if !c.pushImage("app", "v1", [][]byte{[]byte(`{}`), []byte("kept layer")}) {
		t.Fatal("push failed")
	}
	orphan := []byte("orphan layer")
	if err := c.pushBlob("app", orphan); err != nil {
		t.Fatal(err)
	}
	admin := func(method, path string) (int, []byte) {
		resp, body, err := c.do(method, base+path, nil, "Authorization", "Bearer admin-token")
		if err != nil {
			t.Fatal(err)
		}
		return resp.StatusCode, body
	}
	code, body := admin("POST", "/admin/v1/gc/run?dryRun=true")
	var dry GCRunAnswer
	if code != http.StatusOK || json.Unmarshal(body, &dry) != nil {
		t.Fatalf("dry run: %d %s", code, body)
	}
	if len(dry.Blobs) != 1 || dry.Blobs[0] != digest.FromBytes(orphan) || dry.Bytes != int64(len(orphan)) {
		t.Fatalf("dry run lists %v (%d bytes), want only the orphan", dry.Blobs, dry.Bytes)
	}
	if _, err := n.blobs.Stat(context.Background(), digest.FromBytes(orphan)); err != nil {
		t.Fatalf("the dry run deleted the orphan: %v", err)
	}
	code, body = admin("POST", "/admin/v1/gc/run?wait=true")
	var run GCRunAnswer
	if code != http.StatusOK || json.Unmarshal(body, &run) != nil || run.Deleted != 1 || fmt.Sprint(run.Blobs) != fmt.Sprint(dry.Blobs) {
		t.Fatalf("run: %d %s, want the dry run's list deleted", code, body)
	}
	if _, err := n.blobs.Stat(context.Background(), digest.FromBytes(orphan)); err == nil {
		t.Fatal("the orphan's bytes are still in the store")
	}
	if resp, _, _ := c.do("GET", base+"/v2/app/blobs/"+digest.FromBytes([]byte("kept layer")).String(), nil); resp.StatusCode != http.StatusOK {
		t.Fatalf("kept layer: %s", resp.Status)
	}
	code, body = admin("GET", "/admin/v1/gc/status")
	var st GCStatusAnswer
	if code != http.StatusOK || json.Unmarshal(body, &st) != nil || len(st.Runs) != 1 || st.Runs[0].Deleted != 1 || st.Runs[0].Bytes != int64(len(orphan)) {
		t.Fatalf("status: %d %s", code, body)
	}
	if code, body := admin("POST", "/admin/v1/gc/run?dryRun=maybe"); code != http.StatusBadRequest || !strings.Contains(string(body), "dryRun") {
		t.Errorf("bad dryRun: %d %s", code, body)
	}
	if resp, _, _ := c.do("POST", base+"/admin/v1/gc/run", nil); resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("without the admin token: %s", resp.Status)
	}
}

// pausingStore holds a Put of one digest after its bytes are written,
// until released: the moment a sweep can delete them before the upload's
// link is committed.
type pausingStore struct {
	blob.Store
	d                digest.Digest
	reached, release chan struct{}
}

func (s *pausingStore) Put(ctx context.Context, d digest.Digest, size int64, r io.Reader) (blob.Info, error) {
	info, err := s.Store.Put(ctx, d, size, r)
	if d == s.d {
		close(s.reached)
		<-s.release
	}
	return info, err
}

// TestGCUploadRacingASweepUploadsAgain: an upload writes its bytes, a
// whole GC run deletes them (the digest was garbage: an old link without
// manifest), then the upload's link arrives. It is refused (BlobLinked
// carries the index the upload saw before writing, older than the sweep)
// with 503, and the retry writes the bytes again: a 201 is never answered
// for bytes that are gone.
func TestGCUploadRacingASweepUploadsAgain(t *testing.T) {
	n, base := startGCNode(t)
	c := &client{t: t, base: base, hc: &http.Client{Timeout: 30 * time.Second}}
	layer := []byte("a layer pushed twice")
	d := digest.FromBytes(layer)
	if err := c.pushBlob("app", layer); err != nil {
		t.Fatal(err)
	}
	// GC has run once, so uploads stamp Since.
	if _, err := n.RunGC(context.Background(), GCRunRequest{Wait: true}); err != nil {
		t.Fatal(err)
	}
	if err := c.pushBlob("app", layer); err != nil { // garbage again: linked, no manifest
		t.Fatal(err)
	}
	ps := &pausingStore{Store: n.blobs, d: d, reached: make(chan struct{}), release: make(chan struct{})}
	srv := httptest.NewServer(api.New(api.Config{}, n, n, ps, slog.New(slog.DiscardHandler)))
	defer srv.Close()
	type answer struct {
		code int
		err  error
	}
	got := make(chan answer, 1)
	go func() {
		resp, _, err := c.do("POST", srv.URL+"/v2/other/blobs/uploads/?digest="+d.String(), layer)
		if err != nil {
			got <- answer{0, err}
			return
		}
		got <- answer{resp.StatusCode, nil}
	}()
	<-ps.reached
	res, err := n.RunGC(context.Background(), GCRunRequest{Wait: true})
	if err != nil || res.Deleted != 1 {
		t.Fatalf("gc while the upload waits: %+v %v", res, err)
	}
	close(ps.release)
	a := <-got
	if a.err != nil {
		t.Fatal(a.err)
	}
	if a.code == http.StatusCreated {
		resp, _, _ := c.do("GET", base+"/v2/other/blobs/"+d.String(), nil)
		t.Fatalf("upload answered 201 for bytes the sweep deleted (GET now: %s)", resp.Status)
	}
	if a.code != http.StatusServiceUnavailable {
		t.Fatalf("racing upload: %d, want 503", a.code)
	}
	// The client's retry uploads the bytes again.
	resp, _, err := c.do("POST", base+"/v2/other/blobs/uploads/?digest="+d.String(), layer)
	if err != nil || resp.StatusCode != http.StatusCreated {
		t.Fatalf("retry: %v %v", resp.Status, err)
	}
	if resp, body, _ := c.do("GET", base+"/v2/other/blobs/"+d.String(), nil); resp.StatusCode != http.StatusOK || !bytes.Equal(body, layer) {
		t.Fatalf("after the retry: %s", resp.Status)
	}
}
