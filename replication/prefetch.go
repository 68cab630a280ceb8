package replication

import (
	"bytes"
	"context"
	"errors"
	"sync"
	"sync/atomic"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/opencontainers/go-digest"

	"github.com/berth-registry/berth/blob"
	"github.com/berth-registry/berth/events"
)

// prefetchDepth is how many streamed events may have their bytes fetched
// ahead of the one being applied.
//
// Applying an event is ordered: its links, manifest and tags commit
// through the log after the previous event's, because a delete and a push
// of the same repository must land in the origin's order. Fetching bytes
// is not: the blob store is content-addressed and a Put of bytes already
// there changes nothing. So while event k commits, the bytes of the next
// events are fetched and stored, and event k+1's apply finds them with a
// Stat (a local read) instead of a round trip to the origin and a few
// fsyncs. A prefetch changes nothing in the log and its errors are
// ignored: the ordered apply fetches again what is missing and reports
// what fails. Nothing of this weakens GC's rule: the apply takes LinkSince
// before it finds the bytes, exactly as for bytes another repository
// uploaded.
const prefetchDepth = 8

// warmed is what one event's prefetch brought: manifests by digest, each
// verified against it, and the bytes fetched for them.
type warmed struct {
	done  chan struct{}
	mu    sync.Mutex
	m     map[digest.Digest]warmManifest
	bytes atomic.Int64
	// manifests counts those the apply committed (copy.go).
	manifests atomic.Int64
}

type warmManifest struct {
	body []byte
	mt   string
}

// manifest returns a prefetched manifest; w may be nil.
func (w *warmed) manifest(d digest.Digest) ([]byte, string, bool) {
	if w == nil {
		return nil, "", false
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	m, ok := w.m[d]
	return m.body, m.mt, ok
}

// item is one streamed event on its way from the reader to the applier.
type item struct {
	meta  *jetstream.MsgMetadata
	index uint64
	ce    events.CloudEvent
	err   error   // the message was not a Berth event: the applier fails on it
	warm  *warmed // nil: nothing prefetched
}

// prefetch starts fetching the bytes of a push or tag event the policy
// covers, and returns what the applier will wait for and read; nil when
// the event needs no bytes.
func (m *mirror) prefetch(ctx context.Context, wg *sync.WaitGroup, slots chan struct{}, ce events.CloudEvent) *warmed {
	d := ce.Data
	if (ce.Type != events.CETypeManifestPushed && ce.Type != events.CETypeTagUpdated) ||
		d.Repository == "" || !m.p.Covers(d.Repository) || d.Digest.Validate() != nil {
		return nil
	}
	view := m.target.View()
	dst := m.p.Destination(d.Repository)
	if view.ReadOnly() || view.Manifest(dst, d.Digest) {
		return nil
	}
	w := &warmed{done: make(chan struct{}), m: map[digest.Digest]warmManifest{}}
	select {
	case slots <- struct{}{}:
	case <-ctx.Done():
		close(w.done)
		return w
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		defer func() { <-slots }()
		defer close(w.done)
		m.warm(ctx, w, d.Repository, dst, d.Digest, 0)
	}()
	return w
}

// warm fetches manifest d of src and what it references into the blob
// store, recording manifests in w.
func (m *mirror) warm(ctx context.Context, w *warmed, src, dst string, d digest.Digest, depth int) {
	if depth > maxIndexDepth || m.target.View().Manifest(dst, d) {
		return
	}
	body, mt, err := m.copy.origin.manifest(ctx, src, d)
	if err != nil {
		return
	}
	w.mu.Lock()
	w.m[d] = warmManifest{body: body, mt: mt}
	w.mu.Unlock()
	put, err := m.target.Parse(mt, body)
	if err != nil {
		return
	}
	for _, child := range put.Manifests {
		m.warm(ctx, w, src, dst, child, depth+1)
	}
	_ = fanOut(ctx, put.Blobs, func(ctx context.Context, b digest.Digest) error {
		if m.target.View().BlobLinked(dst, b) {
			return nil
		}
		if _, err := m.target.Blobs.Stat(ctx, b); !errors.Is(err, blob.ErrNotFound) {
			return nil // here already, or the store cannot say: the apply will see
		}
		_, err := m.copy.fetchBlob(ctx, src, b, &w.bytes)
		return err
	})
	_, _ = m.target.Blobs.Put(ctx, d, int64(len(body)), bytes.NewReader(body))
}
