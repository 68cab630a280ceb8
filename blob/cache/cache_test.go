package cache_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/opencontainers/go-digest"

	"github.com/berth-registry/berth/blob"
	"github.com/berth-registry/berth/blob/blobtest"
	"github.com/berth-registry/berth/blob/cache"
)

func random(n int) []byte {
	b := make([]byte, n)
	rand.Read(b)
	return b
}

// A cache in front of a store is still a conforming store.
func TestConformance(t *testing.T) {
	blobtest.Run(t, func(t *testing.T) (blob.Store, blob.Store) {
		root := t.TempDir()
		open := func() blob.Store {
			fs, err := blob.NewFS(root, nil, blob.FSLimits{})
			if err != nil {
				t.Fatal(err)
			}
			c, err := cache.New(fs, t.TempDir(), 256<<20, nil)
			if err != nil {
				t.Fatal(err)
			}
			// Fills finish in the background; they must be done before
			// the directory is removed (cleanups run last first).
			t.Cleanup(c.Wait)
			return c
		}
		return open(), open()
	})
}

type fixture struct {
	fs    *blob.FS
	dir   string
	cache *cache.Store
}

func newFixture(t *testing.T, max int64) *fixture {
	t.Helper()
	fs, err := blob.NewFS(t.TempDir(), nil, blob.FSLimits{})
	if err != nil {
		t.Fatal(err)
	}
	f := &fixture{fs: fs, dir: t.TempDir()}
	if f.cache, err = cache.New(fs, f.dir, max, nil); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.cache.Wait() })
	return f
}

func (f *fixture) put(t *testing.T, b []byte) digest.Digest {
	t.Helper()
	d := digest.FromBytes(b)
	if _, err := f.fs.Put(context.Background(), d, int64(len(b)), bytes.NewReader(b)); err != nil {
		t.Fatal(err)
	}
	return d
}

// readAll opens d through the cache, reads it as read says, and checks
// the bytes. It reports whether the cache answered from its local copy.
func (f *fixture) readAll(t *testing.T, d digest.Digest, want []byte, read func(io.ReadSeekCloser) ([]byte, error)) bool {
	t.Helper()
	r, info, err := f.cache.Open(context.Background(), d)
	if err != nil {
		t.Fatal(err)
	}
	local := f.isCopy(r)
	got, err := read(r)
	r.Close()
	f.cache.Wait()
	if err != nil || info.Size < int64(len(want)) {
		t.Fatalf("read %s: %v (size %d)", d, err, info.Size)
	}
	if want != nil && !bytes.Equal(got, want) {
		t.Fatalf("read %s: %d bytes that differ from the %d stored", d, len(got), len(want))
	}
	return local
}

// isCopy reports whether r reads the cache's own copy.
func (f *fixture) isCopy(r io.ReadSeekCloser) bool {
	file, ok := r.(*os.File)
	return ok && strings.HasPrefix(file.Name(), f.dir+string(filepath.Separator))
}

// local opens d without reading it (which would fill the cache) and
// reports whether the cache answered.
func (f *fixture) local(t *testing.T, d digest.Digest) bool {
	t.Helper()
	r, _, err := f.cache.Open(context.Background(), d)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	return f.isCopy(r)
}

func whole(r io.ReadSeekCloser) ([]byte, error) { return io.ReadAll(r) }

func streamed(r io.ReadSeekCloser) ([]byte, error) {
	var b bytes.Buffer
	if s, ok := r.(blob.Streamer); ok {
		_, err := s.Stream(&b)
		return b.Bytes(), err
	}
	_, err := io.Copy(&b, r)
	return b.Bytes(), err
}

func tmpFiles(t *testing.T, dir string) []string {
	t.Helper()
	es, err := os.ReadDir(filepath.Join(dir, "tmp"))
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range es {
		names = append(names, e.Name())
	}
	return names
}

func TestFill(t *testing.T) {
	data := random(3<<20 + 17)
	for _, tc := range []struct {
		name   string
		read   func(io.ReadSeekCloser) ([]byte, error)
		want   []byte // what the first read returns
		cached bool
	}{
		{"read through", whole, data, true},
		{"streamed", streamed, data, true},
		{"seek to the end and back, as ServeContent does", func(r io.ReadSeekCloser) ([]byte, error) {
			if _, err := r.Seek(0, io.SeekEnd); err != nil {
				return nil, err
			}
			if _, err := r.Seek(0, io.SeekStart); err != nil {
				return nil, err
			}
			return io.ReadAll(io.LimitReader(r, int64(len(data))))
		}, data, true},
		{"range request", func(r io.ReadSeekCloser) ([]byte, error) {
			if _, err := r.Seek(1000, io.SeekStart); err != nil {
				return nil, err
			}
			return io.ReadAll(r)
		}, data[1000:], false},
		{"closed early", func(r io.ReadSeekCloser) ([]byte, error) {
			b := make([]byte, 4096)
			_, err := io.ReadFull(r, b)
			return b, err
		}, data[:4096], false},
		{"not read at all (HEAD)", func(io.ReadSeekCloser) ([]byte, error) { return nil, nil }, nil, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, 64<<20)
			d := f.put(t, data)
			if f.readAll(t, d, tc.want, tc.read) {
				t.Fatal("a cold cache answered from a local copy")
			}
			if got := f.cache.Used(); (got == int64(len(data))) != tc.cached {
				t.Fatalf("cached %d bytes; want the blob cached: %v", got, tc.cached)
			}
			if left := tmpFiles(t, f.dir); len(left) != 0 {
				t.Fatalf("temp files left: %v", left)
			}
			if local := f.readAll(t, d, data, whole); local != tc.cached {
				t.Fatalf("second read served locally: %v, want %v", local, tc.cached)
			}
		})
	}
}

// corrupting returns a store whose readers flip a byte: the cache must not
// keep what does not hash to the digest.
type corrupting struct{ blob.Store }

type flipped struct{ io.ReadSeekCloser }

func (f flipped) Read(p []byte) (int, error) {
	n, err := f.ReadSeekCloser.Read(p)
	if n > 0 {
		p[0] ^= 0xff
	}
	return n, err
}

func (c corrupting) Open(ctx context.Context, d digest.Digest) (io.ReadSeekCloser, blob.Info, error) {
	r, info, err := c.Store.Open(ctx, d)
	return flipped{r}, info, err
}

func TestCorruptCopyIsNotKept(t *testing.T) {
	fs, _ := blob.NewFS(t.TempDir(), nil, blob.FSLimits{})
	data := random(100_000)
	d := digest.FromBytes(data)
	fs.Put(context.Background(), d, int64(len(data)), bytes.NewReader(data))
	dir := t.TempDir()
	c, err := cache.New(corrupting{fs}, dir, 64<<20, nil)
	if err != nil {
		t.Fatal(err)
	}
	r, _, _ := c.Open(context.Background(), d)
	io.ReadAll(r)
	r.Close()
	c.Wait()
	if c.Used() != 0 || len(tmpFiles(t, dir)) != 0 {
		t.Fatalf("kept %d bytes and %v of a copy that does not match its digest", c.Used(), tmpFiles(t, dir))
	}
}

func TestEvictsLeastRecentlyOpened(t *testing.T) {
	f := newFixture(t, 1000)
	var ds []digest.Digest
	blobs := map[digest.Digest][]byte{}
	for range 6 {
		b := random(200)
		d := f.put(t, b)
		ds = append(ds, d)
		blobs[d] = b
	}
	for _, d := range ds[:5] {
		f.readAll(t, d, blobs[d], whole)
	}
	f.readAll(t, ds[0], blobs[ds[0]], whole) // the oldest, opened again
	f.readAll(t, ds[5], blobs[ds[5]], whole) // one too many: evicts ds[1]
	if got := f.cache.Used(); got != 1000 {
		t.Fatalf("cache holds %d bytes, want 1000", got)
	}
	for i, d := range ds {
		if local := f.local(t, d); local != (i != 1) {
			t.Errorf("blob %d served locally: %v", i, local)
		}
	}
	big := random(251) // over a quarter of the cache
	d := f.put(t, big)
	f.readAll(t, d, big, whole)
	if f.local(t, d) || f.cache.Used() != 1000 {
		t.Fatal("a blob over a quarter of the cache was cached")
	}
}

func TestRestartAndDelete(t *testing.T) {
	f := newFixture(t, 64<<20)
	data := random(5000)
	d := f.put(t, data)
	f.readAll(t, d, data, whole)
	os.WriteFile(filepath.Join(f.dir, "tmp", "fill-left-by-a-crash"), []byte("x"), 0o600)
	stray := filepath.Join(f.dir, "blobs", "sha256", "zz", "not-a-digest")
	os.MkdirAll(filepath.Dir(stray), 0o700)
	os.WriteFile(stray, []byte("x"), 0o600)

	again, err := cache.New(f.fs, f.dir, 64<<20, nil)
	if err != nil {
		t.Fatal(err)
	}
	f.cache = again
	if got := again.Used(); got != int64(len(data)) {
		t.Fatalf("after a restart the cache holds %d bytes, want %d", got, len(data))
	}
	if _, err := os.Stat(stray); !os.IsNotExist(err) || len(tmpFiles(t, f.dir)) != 0 {
		t.Fatalf("a restart kept a stray file (%v) or temp files %v", err, tmpFiles(t, f.dir))
	}
	if !f.readAll(t, d, data, whole) {
		t.Fatal("the copy from before the restart was not used")
	}
	if err := again.Delete(context.Background(), d); err != nil {
		t.Fatal(err)
	}
	if again.Used() != 0 {
		t.Fatal("Delete left the local copy")
	}
	if _, _, err := again.Open(context.Background(), d); err == nil {
		t.Fatal("a deleted blob still opens")
	}
}

// Many readers of one cold blob at once: one fills, the rest pass through,
// and every one of them reads the right bytes (run with -race).
func TestConcurrentReaders(t *testing.T) {
	f := newFixture(t, 64<<20)
	data := random(1 << 20)
	d := f.put(t, data)
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r, _, err := f.cache.Open(context.Background(), d)
			if err != nil {
				t.Error(err)
				return
			}
			defer r.Close()
			got, err := streamed(r)
			if err != nil || !bytes.Equal(got, data) {
				t.Errorf("concurrent read: %d bytes, %v", len(got), err)
			}
		}()
	}
	wg.Wait()
	f.cache.Wait()
	if f.cache.Used() != int64(len(data)) {
		t.Fatalf("cached %d bytes, want %d", f.cache.Used(), len(data))
	}
}
