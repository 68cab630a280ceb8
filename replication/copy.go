package replication

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"sync/atomic"

	"github.com/opencontainers/go-digest"

	"github.com/berth-registry/berth/blob"
	"github.com/berth-registry/berth/events"
)

// maxIndexDepth bounds how deep index manifests may nest (an index of
// indexes of images is two): a loop of references cannot recurse forever.
const maxIndexDepth = 4

// blobFetches bounds the blobs of one manifest fetched at once.
const blobFetches = 4

// copier brings one artifact of the origin into the mirror: blobs first,
// each verified by its digest while stored, then the manifest, so that
// nothing becomes visible here before all it references is.
type copier struct {
	origin *originClient
	target Target
	// counters for the status
	bytes     *atomic.Int64
	artifacts *atomic.Uint64
	// warm is what the prefetch of the event being applied fetched
	// (prefetch.go), and counts what this artifact copied; nil when
	// nothing was prefetched. Each applied event has its own copier.
	warm *warmed
}

func (c *copier) propose(ctx context.Context, p events.Payload) error {
	if c.target.Fence == nil {
		// A proxy writes from any node, as a push does.
		return c.target.Propose(ctx, p)
	}
	if err := c.target.Fence(); err != nil {
		return err
	}
	return c.target.Propose(ctx, p)
}

// manifest makes the manifest d of origin repository src exist in local
// repository dst with tags pointing at it. It returns errGone (wrapped)
// when the origin no longer has it.
func (c *copier) manifest(ctx context.Context, src, dst string, d digest.Digest, tags []string, depth int) error {
	if depth > maxIndexDepth {
		return fmt.Errorf("manifest %s@%s: indexes nest more than %d deep", src, d, maxIndexDepth)
	}
	if c.target.View().Manifest(dst, d) {
		return c.tags(ctx, dst, d, tags)
	}
	body, mt, ok := c.warm.manifest(d)
	if !ok {
		var err error
		if body, mt, err = c.origin.manifest(ctx, src, d); err != nil {
			return err
		}
	}
	put, err := c.target.Parse(mt, body)
	if err != nil {
		return fmt.Errorf("manifest %s@%s from the origin: %w", src, d, err)
	}
	return c.store(ctx, src, dst, d, body, put, tags, depth)
}

// store commits manifest d, whose bytes body were fetched and verified
// and parsed into put, after what it references.
func (c *copier) store(ctx context.Context, src, dst string, d digest.Digest, body []byte, put events.ManifestPut, tags []string, depth int) error {
	for _, child := range put.Manifests {
		if err := c.manifest(ctx, src, dst, child, nil, depth+1); err != nil {
			return fmt.Errorf("child of index %s: %w", d, err)
		}
	}
	if err := c.blobs(ctx, src, dst, put.Blobs); err != nil {
		return err
	}
	if _, err := c.target.Blobs.Put(ctx, d, int64(len(body)), bytes.NewReader(body)); err != nil {
		return fmt.Errorf("store manifest %s: %w", d, err)
	}
	put.Repo, put.Digest, put.Size, put.Tags = dst, d, int64(len(body)), tags
	if err := c.propose(ctx, put); err != nil {
		return fmt.Errorf("commit manifest %s@%s: %w", dst, d, err)
	}
	c.artifacts.Add(1)
	if c.warm != nil {
		c.warm.manifests.Add(1)
	}
	return nil
}

// tags points tags at d where they do not already.
func (c *copier) tags(ctx context.Context, repo string, d digest.Digest, tags []string) error {
	for _, t := range tags {
		if cur, ok := c.target.View().Tag(repo, t); ok && cur == d {
			continue
		}
		if err := c.propose(ctx, events.TagSet{Repo: repo, Tag: t, Digest: d}); err != nil {
			return fmt.Errorf("commit tag %s:%s: %w", repo, t, err)
		}
	}
	return nil
}

// blobs links a manifest's blobs into dst, fetching up to blobFetches at
// once: a small image's config and layers then cost one round trip to the
// origin and one commit wait, not one each in turn.
func (c *copier) blobs(ctx context.Context, src, dst string, ds []digest.Digest) error {
	return fanOut(ctx, ds, func(ctx context.Context, d digest.Digest) error { return c.blob(ctx, src, dst, d) })
}

// fanOut runs f for every digest, blobFetches at once. The first error
// cancels the rest and is returned; what finished before it stays done.
func fanOut(ctx context.Context, ds []digest.Digest, f func(context.Context, digest.Digest) error) error {
	if len(ds) == 1 {
		return f(ctx, ds[0])
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		wg    sync.WaitGroup
		once  sync.Once
		first error
		slots = make(chan struct{}, blobFetches)
	)
	for _, d := range ds {
		select {
		case slots <- struct{}{}:
		case <-ctx.Done():
		}
		if ctx.Err() != nil {
			break
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-slots }()
			if err := f(ctx, d); err != nil {
				once.Do(func() { first = err; cancel() })
			}
		}()
	}
	wg.Wait()
	if first == nil {
		first = ctx.Err()
	}
	return first
}

// blob links blob d into dst, copying its bytes from the origin unless
// this cluster's store has them already (from another repository).
func (c *copier) blob(ctx context.Context, src, dst string, d digest.Digest) error {
	if c.target.View().BlobLinked(dst, d) {
		return nil
	}
	since := c.target.LinkSince() // before the bytes are found or written
	info, err := c.target.Blobs.Stat(ctx, d)
	if errors.Is(err, blob.ErrNotFound) {
		var also *atomic.Int64
		if c.warm != nil {
			also = &c.warm.bytes
		}
		info, err = c.fetchBlob(ctx, src, d, also)
	}
	if err != nil {
		return fmt.Errorf("blob %s of %s: %w", d, src, err)
	}
	if err := c.propose(ctx, events.BlobLinked{Repo: dst, Digest: d, Size: info.Size, Since: since}); err != nil {
		return fmt.Errorf("commit blob link %s@%s: %w", dst, d, err)
	}
	return nil
}

// fetchBlob stores blob d from the origin, counting its bytes in the
// status and, when also is set, there too.
func (c *copier) fetchBlob(ctx context.Context, src string, d digest.Digest, also *atomic.Int64) (blob.Info, error) {
	if err := d.Validate(); err != nil {
		return blob.Info{}, err
	}
	rc, size, err := c.origin.blob(ctx, src, d)
	if err != nil {
		return blob.Info{}, err
	}
	defer rc.Close()
	cr := &countingReader{r: rc, n: c.bytes, also: also}
	// Put verifies digest (and size, when the origin sent one) while it
	// writes; bytes that do not match never become visible.
	return c.target.Blobs.Put(ctx, d, size, cr)
}

type countingReader struct {
	r       io.Reader
	n, also *atomic.Int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n.Add(int64(n))
	if c.also != nil {
		c.also.Add(int64(n))
	}
	return n, err
}
