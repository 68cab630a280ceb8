package main

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"
)

// workload is one benchmark. setup runs once per registry instance and is
// not timed; prepare runs before each op, untimed (generating content and
// hashing it is the client's cost, not the registry's); op is timed.
//
// access names the repositories the op uses with n workers and the
// actions it needs on each ("pull" or "pull,push"), so a client with
// credentials can get its tokens before the timed rounds, as a client
// that already ran once holds them.
type workload struct {
	name        string
	concurrency int
	setup       func(ctx context.Context, c *client) error
	prepare     func(w *worker)
	op          func(ctx context.Context, c *client, w *worker) (bytes int64, err error)
	access      func(n int) map[string]string
}

// perWorker is the access of a workload whose worker i pushes to
// prefix-i.
func perWorker(prefix string) func(n int) map[string]string {
	return func(n int) map[string]string {
		m := map[string]string{}
		for i := range n {
			m[fmt.Sprintf("%s-%d", prefix, i)] = "pull,push"
		}
		return m
	}
}

// only is the access of a workload that uses one repository.
func only(repo, actions string) func(int) map[string]string {
	return func(int) map[string]string { return map[string]string{repo: actions} }
}

// worker holds one goroutine's reusable buffers.
type worker struct {
	id     int
	i      int
	seq    *atomic.Int64
	buf    []byte // reusable large blob buffer
	digest string
	img    smallImage
}

// smallImage is a config, a 1 KiB layer and their manifest.
type smallImage struct {
	config, layer, manifest []byte
	cd, ld                  string
}

func newSmallImage(seq int64) smallImage {
	layer := make([]byte, 1024)
	rand.Read(layer)
	config := fmt.Appendf(nil, `{"architecture":"amd64","os":"linux","seq":%d,"rootfs":{"type":"layers","diff_ids":[%q]}}`, seq, sha(layer))
	return smallImage{config: config, layer: layer, manifest: manifest(config, layer), cd: sha(config), ld: sha(layer)}
}

func (im smallImage) push(ctx context.Context, c *client, repo, tag string) (int64, error) {
	if err := c.pushBlob(ctx, repo, im.config, im.cd); err != nil {
		return 0, err
	}
	if err := c.pushBlob(ctx, repo, im.layer, im.ld); err != nil {
		return 0, err
	}
	if err := c.putManifest(ctx, repo, tag, im.manifest); err != nil {
		return 0, err
	}
	return int64(len(im.config) + len(im.layer) + len(im.manifest)), nil
}

const (
	bigBlob   = 64 << 20
	chunkSize = 8 << 20
	manyTags  = 10000
	manyRepos = 10000
)

// uniqueBlob refills w.buf's first bytes so each op pushes new content.
func uniqueBlob(w *worker) {
	if w.buf == nil {
		w.buf = make([]byte, bigBlob)
		rand.Read(w.buf)
	}
	binary.LittleEndian.PutUint64(w.buf, uint64(w.seq.Add(1)))
	binary.LittleEndian.PutUint64(w.buf[8:], uint64(w.id))
	rand.Read(w.buf[16:32])
	w.digest = sha(w.buf)
}

// fixture is content every instance gets once, for the read workloads.
var fixture = struct {
	once     sync.Once
	img      smallImage
	big      []byte
	bigD     string
	tagImg   smallImage
	catalogI smallImage
}{}

func fixtures() {
	fixture.once.Do(func() {
		fixture.img = newSmallImage(-1)
		fixture.big = make([]byte, bigBlob)
		rand.Read(fixture.big)
		fixture.bigD = sha(fixture.big)
		fixture.tagImg = newSmallImage(-2)
		fixture.catalogI = newSmallImage(-3)
	})
}

// parallel runs f(i) for i in [0,n) on k goroutines, returning the first error.
func parallel(n, k int, f func(i int) error) error {
	var next atomic.Int64
	var first error
	var mu sync.Mutex
	var wg sync.WaitGroup
	for range k {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= n {
					return
				}
				if err := f(i); err != nil {
					mu.Lock()
					if first == nil {
						first = err
					}
					mu.Unlock()
					return
				}
			}
		}()
	}
	wg.Wait()
	return first
}

func allWorkloads() []workload {
	return []workload{
		{
			name: "push-small", concurrency: 16, access: perWorker("bench/small"),
			prepare: func(w *worker) { w.img = newSmallImage(w.seq.Add(1)) },
			op: func(ctx context.Context, c *client, w *worker) (int64, error) {
				return w.img.push(ctx, c, fmt.Sprintf("bench/small-%d", w.id), fmt.Sprintf("t%d", w.i))
			},
		},
		{
			name: "blob-push-64m-mono", concurrency: 2, access: only("bench/big", "pull,push"),
			prepare: uniqueBlob,
			op: func(ctx context.Context, c *client, w *worker) (int64, error) {
				return bigBlob, c.pushBlob(ctx, "bench/big", w.buf, w.digest)
			},
		},
		{
			name: "blob-push-64m-chunked", concurrency: 2, access: only("bench/big", "pull,push"),
			prepare: uniqueBlob,
			op: func(ctx context.Context, c *client, w *worker) (int64, error) {
				return bigBlob, c.pushChunked(ctx, "bench/big", w.buf, w.digest, chunkSize)
			},
		},
		{
			name: "blob-pull-64m", concurrency: 2, access: only("bench/pull", "pull"),
			setup: func(ctx context.Context, c *client) error {
				fixtures()
				return c.pushBlob(ctx, "bench/pull", fixture.big, fixture.bigD)
			},
			op: func(ctx context.Context, c *client, w *worker) (int64, error) {
				code, _, _, n, err := c.do(ctx, "GET", "/v2/bench/pull/blobs/"+fixture.bigD, nil, nil, -1, false)
				if err == nil && (code != 200 || n != bigBlob) {
					err = fmt.Errorf("blob pull: status %d, %d bytes", code, n)
				}
				return n, err
			},
		},
		readManifest("manifest-head", "HEAD"),
		readManifest("manifest-get", "GET"),
		{
			name: "tags-list", concurrency: 8, access: only("bench/tags", "pull"),
			setup: func(ctx context.Context, c *client) error {
				fixtures()
				if _, err := fixture.tagImg.push(ctx, c, "bench/tags", "t00000"); err != nil {
					return err
				}
				return parallel(manyTags-1, 16, func(i int) error {
					return c.putManifest(ctx, "bench/tags", fmt.Sprintf("t%05d", i+1), fixture.tagImg.manifest)
				})
			},
			op: func(ctx context.Context, c *client, w *worker) (int64, error) {
				n, count, err := c.list(ctx, "/v2/bench/tags/tags/list?n=1000", "tags")
				if err == nil && count != manyTags {
					err = fmt.Errorf("tags list: %d tags, want %d", count, manyTags)
				}
				return n, err
			},
		},
		{
			name: "catalog", concurrency: 8,
			setup: func(ctx context.Context, c *client) error {
				fixtures()
				im := fixture.catalogI
				if _, err := im.push(ctx, c, "bench/cat/r00000", "v1"); err != nil {
					return err
				}
				return parallel(manyRepos-1, 16, func(i int) error {
					repo := fmt.Sprintf("bench/cat/r%05d", i+1)
					for _, d := range []string{im.cd, im.ld} {
						code, _, body, _, err := c.do(ctx, "POST", "/v2/"+repo+"/blobs/uploads/?mount="+d+"&from=bench/cat/r00000", nil, nil, -1, true)
						if err != nil {
							return err
						}
						if err := expect(code, 201, "mount", body); err != nil {
							return err
						}
					}
					return c.putManifest(ctx, repo, "v1", im.manifest)
				})
			},
			op: func(ctx context.Context, c *client, w *worker) (int64, error) {
				n, count, err := c.list(ctx, "/v2/_catalog?n=1000", "repositories")
				if err == nil && count < manyRepos {
					err = fmt.Errorf("catalog: %d repositories, want at least %d", count, manyRepos)
				}
				return n, err
			},
		},
		{
			name: "mixed-70pull-30push", concurrency: 16,
			access: func(n int) map[string]string {
				m := perWorker("bench/mixed")(n)
				m["bench/manifest"] = "pull"
				return m
			},
			setup: func(ctx context.Context, c *client) error {
				fixtures()
				_, err := fixture.img.push(ctx, c, "bench/manifest", "latest")
				return err
			},
			prepare: func(w *worker) {
				if w.i%10 < 3 {
					w.img = newSmallImage(w.seq.Add(1))
				}
			},
			op: func(ctx context.Context, c *client, w *worker) (int64, error) {
				if w.i%10 < 3 {
					return w.img.push(ctx, c, fmt.Sprintf("bench/mixed-%d", w.id), fmt.Sprintf("t%d", w.i))
				}
				code, _, _, n, err := c.do(ctx, "GET", "/v2/bench/manifest/manifests/latest", map[string]string{"Accept": mediaManifest}, nil, -1, false)
				if err == nil && code != 200 {
					err = fmt.Errorf("manifest get: status %d", code)
				}
				if err != nil {
					return n, err
				}
				code, _, _, m, err := c.do(ctx, "GET", "/v2/bench/manifest/blobs/"+fixture.img.ld, nil, nil, -1, false)
				if err == nil && code != 200 {
					err = fmt.Errorf("blob get: status %d", code)
				}
				return n + m, err
			},
		},
	}
}

func readManifest(name, method string) workload {
	return workload{
		name: name, concurrency: 16, access: only("bench/manifest", "pull"),
		setup: func(ctx context.Context, c *client) error {
			fixtures()
			_, err := fixture.img.push(ctx, c, "bench/manifest", "latest")
			return err
		},
		op: func(ctx context.Context, c *client, w *worker) (int64, error) {
			code, _, _, n, err := c.do(ctx, method, "/v2/bench/manifest/manifests/latest", map[string]string{"Accept": mediaManifest}, nil, -1, false)
			if err == nil && code != http.StatusOK {
				err = fmt.Errorf("%s manifest: status %d", method, code)
			}
			return n, err
		},
	}
}
