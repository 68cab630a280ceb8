// Package cache keeps hot blobs on a node's local disk in front of a shared
// blob.Store (S3 in a cluster).
//
// Pulls are the registry's hottest path, and the same layers are pulled
// over and over (a rollout pulls one image onto every host). From object
// storage every pull is a GET that crosses the network twice; from the
// node's disk it is a sendfile from the page cache. Blobs are content
// addressed (rule 4): the bytes under a digest never change, so a cached
// copy is never stale and needs no invalidation across nodes. A blob that
// GC deleted may linger in a cache, but it is served only where the FSM
// still links it (rule 5), and if it is pushed again its bytes are the same.
//
// Only Open is served from the cache. Stat, Put, uploads and Delete go to
// the shared store, so a cached copy never makes a write, a mount or an
// existence check believe a blob exists that the shared store lost.
//
// A copy enters the cache when a reader has read a blob from start to end
// in order: the bytes are hashed on the way and written to a temp file,
// which is synced and renamed into place only if it matches the digest.
// The cache is bounded by size and evicts the least recently opened.
//
// Layout under Dir:
//
//	blobs/<alg>/<hh>/<hex>   verified copies
//	tmp/                     copies being filled (removed at start)
package cache

import (
	"context"
	"errors"
	"fmt"
	"hash"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/opencontainers/go-digest"

	"github.com/berth-registry/berth/blob"
)

// Store is a blob.Store whose Open is served from local disk when it can.
type Store struct {
	blob.Store
	dir    string
	max    int64
	logger *slog.Logger

	mu      sync.Mutex
	entries map[digest.Digest]*entry
	used    int64
	tick    uint64
	filling map[digest.Digest]bool
	fills   sync.WaitGroup

	// Counters for Stats; atomics so Open pays no lock for them.
	hits, misses, hitBytes, filled, filledBytes, evictions atomic.Uint64
}

// Stats are the cache's counters since New, for metrics (node/metrics
// reads them when scraped). Counters only grow; Used is current.
type Stats struct {
	// Hits and Misses count Opens served from a local copy and those
	// passed to the shared store.
	Hits, Misses uint64
	// HitBytes is the size of the blobs opened from local copies: the
	// bytes the cache spared the shared store for whole pulls (a HEAD or
	// Range request reads less). Counting at Open keeps the local file an
	// *os.File, which the response copies with sendfile.
	HitBytes uint64
	// Fills and FilledBytes count verified copies that entered the cache.
	Fills, FilledBytes uint64
	// Evictions counts copies removed to stay within the size bound.
	Evictions uint64
	// Used is the bytes cached now.
	Used int64
}

// Stats returns the counters.
func (c *Store) Stats() Stats {
	return Stats{
		Hits: c.hits.Load(), Misses: c.misses.Load(), HitBytes: c.hitBytes.Load(),
		Fills: c.filled.Load(), FilledBytes: c.filledBytes.Load(), Evictions: c.evictions.Load(),
		Used: c.Used(),
	}
}

type entry struct {
	size     int64
	lastUsed uint64
}

// New caches up to maxBytes of inner's blobs under dir. A blob larger than
// a quarter of maxBytes is never cached: it would evict everything else.
func New(inner blob.Store, dir string, maxBytes int64, logger *slog.Logger) (*Store, error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	if maxBytes <= 0 {
		return nil, errors.New("blob cache: size must be positive")
	}
	c := &Store{Store: inner, dir: dir, max: maxBytes, logger: logger,
		entries: map[digest.Digest]*entry{}, filling: map[digest.Digest]bool{}}
	if err := os.RemoveAll(filepath.Join(dir, "tmp")); err != nil {
		return nil, fmt.Errorf("blob cache: clear tmp: %w", err)
	}
	for _, d := range []string{"blobs", "tmp"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o700); err != nil {
			return nil, fmt.Errorf("blob cache: %w", err)
		}
	}
	if err := c.load(); err != nil {
		return nil, fmt.Errorf("blob cache: read %s: %w", dir, err)
	}
	c.evict()
	return c, nil
}

// load indexes what an earlier run cached, oldest first by modification
// time (which Open does not update, so it is the fill order).
func (c *Store) load() error {
	type found struct {
		d    digest.Digest
		size int64
		mod  int64
	}
	var all []found
	root := filepath.Join(c.dir, "blobs")
	err := filepath.WalkDir(root, func(path string, de fs.DirEntry, err error) error {
		if err != nil || de.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(root, path)
		alg, rest, _ := strings.Cut(filepath.ToSlash(rel), "/")
		_, hexPart, _ := strings.Cut(rest, "/")
		d := digest.NewDigestFromEncoded(digest.Algorithm(alg), hexPart)
		fi, err := de.Info()
		if err != nil || d.Validate() != nil || path != c.path(d) {
			return os.Remove(path) // not ours
		}
		all = append(all, found{d, fi.Size(), fi.ModTime().UnixNano()})
		return nil
	})
	sort.Slice(all, func(i, j int) bool { return all[i].mod < all[j].mod })
	for _, f := range all {
		c.tick++
		c.entries[f.d] = &entry{size: f.size, lastUsed: c.tick}
		c.used += f.size
	}
	return err
}

func (c *Store) path(d digest.Digest) string {
	h := d.Encoded()
	if len(h) < 2 {
		return filepath.Join(c.dir, "blobs", "invalid")
	}
	return filepath.Join(c.dir, "blobs", d.Algorithm().String(), h[:2], h)
}

// Open serves d from the local copy if there is one; otherwise it opens
// the shared store's reader, and fills the cache from it if the caller
// reads it through.
func (c *Store) Open(ctx context.Context, d digest.Digest) (io.ReadSeekCloser, blob.Info, error) {
	if f, info, ok := c.local(d); ok {
		c.hits.Add(1)
		c.hitBytes.Add(uint64(info.Size))
		return f, info, nil
	}
	c.misses.Add(1)
	rc, info, err := c.Store.Open(ctx, d)
	if err != nil {
		return nil, info, err
	}
	if info.Size > c.max/4 || !d.Algorithm().Available() {
		return rc, info, nil
	}
	c.mu.Lock()
	busy := c.filling[d]
	if !busy {
		c.filling[d] = true
	}
	c.mu.Unlock()
	if busy {
		return rc, info, nil // another reader is filling it
	}
	return &filler{c: c, d: d, size: info.Size, inner: rc, h: d.Algorithm().Hash()}, info, nil
}

func (c *Store) local(d digest.Digest) (*os.File, blob.Info, bool) {
	if d.Validate() != nil {
		return nil, blob.Info{}, false
	}
	c.mu.Lock()
	e, ok := c.entries[d]
	if ok {
		c.tick++
		e.lastUsed = c.tick
	}
	c.mu.Unlock()
	if !ok {
		return nil, blob.Info{}, false
	}
	f, err := os.Open(c.path(d))
	if err != nil {
		// Evicted meanwhile, or removed by hand: fall back to the store.
		c.forget(d)
		return nil, blob.Info{}, false
	}
	return f, blob.Info{Digest: d, Size: e.size}, true
}

// Delete removes the local copy too. Other nodes keep theirs, which is
// harmless (see the package comment).
func (c *Store) Delete(ctx context.Context, d digest.Digest) error {
	if err := c.Store.Delete(ctx, d); err != nil {
		return err
	}
	c.forget(d)
	return nil
}

func (c *Store) forget(d digest.Digest) {
	c.mu.Lock()
	e, ok := c.entries[d]
	if ok {
		delete(c.entries, d)
		c.used -= e.size
	}
	c.mu.Unlock()
	if ok {
		os.Remove(c.path(d))
	}
}

func (c *Store) done(d digest.Digest) {
	c.mu.Lock()
	delete(c.filling, d)
	c.mu.Unlock()
}

// add makes a verified temp file the copy of d, then evicts down to size.
func (c *Store) add(d digest.Digest, size int64, tmp string) {
	defer c.done(d)
	dst := c.path(d)
	if err := os.MkdirAll(filepath.Dir(dst), 0o700); err != nil {
		os.Remove(tmp)
		c.logger.Warn("blob cache: add", "digest", d, "err", err)
		return
	}
	if err := os.Rename(tmp, dst); err != nil {
		os.Remove(tmp)
		c.logger.Warn("blob cache: add", "digest", d, "err", err)
		return
	}
	c.mu.Lock()
	if _, ok := c.entries[d]; !ok {
		c.used += size
	}
	c.tick++
	c.entries[d] = &entry{size: size, lastUsed: c.tick}
	c.mu.Unlock()
	c.filled.Add(1)
	c.filledBytes.Add(uint64(size))
	c.evict()
}

// evict removes the least recently opened copies until the cache fits.
// A copy being read stays readable: its file is only unlinked.
func (c *Store) evict() {
	c.mu.Lock()
	var victims []digest.Digest
	if c.used > c.max {
		type kv struct {
			d digest.Digest
			e *entry
		}
		all := make([]kv, 0, len(c.entries))
		for d, e := range c.entries {
			all = append(all, kv{d, e})
		}
		sort.Slice(all, func(i, j int) bool { return all[i].e.lastUsed < all[j].e.lastUsed })
		for _, x := range all {
			if c.used <= c.max {
				break
			}
			delete(c.entries, x.d)
			c.used -= x.e.size
			victims = append(victims, x.d)
			c.evictions.Add(1)
		}
	}
	c.mu.Unlock()
	for _, d := range victims {
		os.Remove(c.path(d))
	}
}

// Wait blocks until fills handed to the background have finished; for
// tests and shutdown.
func (c *Store) Wait() { c.fills.Wait() }

// Used reports the bytes cached.
func (c *Store) Used() int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.used
}

// filler passes a shared-store reader through and copies what it reads,
// in order from the start, into a temp file. If the whole blob went
// through and hashes to its digest, the copy joins the cache.
type filler struct {
	c     *Store
	d     digest.Digest
	size  int64
	inner io.ReadSeekCloser
	tmp   *os.File // created by the first byte
	h     hash.Hash
	pos   int64 // the inner reader's offset
	n     int64 // bytes copied, always from 0
	ended bool  // the fill is over (committed or abandoned)
}

var _ blob.Streamer = (*filler)(nil)

func (f *filler) Read(p []byte) (int, error) {
	n, err := f.inner.Read(p)
	if !f.ended && n > 0 {
		if f.pos != f.n {
			f.abandon() // a range request: nothing to copy from
		} else if err := f.copy(p[:n]); err != nil {
			f.c.logger.Warn("blob cache: not cached", "digest", f.d, "err", err)
			f.abandon()
		}
	}
	f.pos += int64(n)
	if !f.ended && f.n == f.size && (err == io.EOF || f.pos == f.size) {
		f.commit()
	}
	return n, err
}

// copy appends what was just read to the copy.
func (f *filler) copy(b []byte) error {
	if f.tmp == nil {
		tmp, err := os.CreateTemp(filepath.Join(f.c.dir, "tmp"), "fill-")
		if err != nil {
			return err
		}
		f.tmp = tmp
	}
	if _, err := f.tmp.Write(b); err != nil {
		return err
	}
	f.h.Write(b)
	f.n += int64(len(b))
	return nil
}

func (f *filler) Seek(offset int64, whence int) (int64, error) {
	pos, err := f.inner.Seek(offset, whence)
	if err == nil {
		f.pos = pos
	}
	return pos, err
}

// Stream copies the rest to w through the cache fill.
func (f *filler) Stream(w io.Writer) (int64, error) { return blob.CopyStream(w, f) }

func (f *filler) Close() error {
	if !f.ended {
		f.abandon()
	}
	return f.inner.Close()
}

func (f *filler) abandon() {
	f.ended = true
	if f.tmp != nil {
		f.tmp.Close()
		os.Remove(f.tmp.Name())
	}
	f.c.done(f.d)
}

// commit verifies the copy and hands the sync and rename to the
// background, so the response is not held up by the local disk.
func (f *filler) commit() {
	if f.tmp == nil || digest.NewDigest(f.d.Algorithm(), f.h) != f.d {
		f.c.logger.Warn("blob cache: bytes read do not match the digest; not cached", "digest", f.d)
		f.abandon()
		return
	}
	f.ended = true
	tmp, c, d, size := f.tmp, f.c, f.d, f.size
	c.fills.Add(1)
	go func() {
		defer c.fills.Done()
		err := tmp.Sync()
		if cerr := tmp.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			os.Remove(tmp.Name())
			c.done(d)
			c.logger.Warn("blob cache: sync", "digest", d, "err", err)
			return
		}
		c.add(d, size, tmp.Name())
	}()
}
