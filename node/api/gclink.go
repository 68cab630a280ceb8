package api

import (
	"bytes"
	"errors"
	"net/http"

	"github.com/opencontainers/go-digest"

	"github.com/berth-registry/berth/blob"
)

// linkSincer is implemented by a Reader that knows whether garbage
// collection ever ran (node.Node.LinkSince).
type linkSincer interface{ LinkSince() uint64 }

// linkSince is the BlobLinked.Since of an upload, read before its bytes
// are written under their digest: the FSM refuses the link if a GC sweep
// that may have deleted those bytes ended after it. The client then gets
// 503 with Retry-After and uploads the blob again (errors.go).
func (h *handler) linkSince() uint64 {
	if s, ok := h.reads.(linkSincer); ok {
		return s.LinkSince()
	}
	return 0
}

// rewriteIfSwept writes a manifest's bytes again when a GC sweep deleted
// them between the Put and the accepted ManifestPut (a manifest has no
// Since). Once the put is accepted no sweep can delete the digest any
// more (it is referenced, and younger than the grace period), so a Stat
// now is final, and the handler still holds the bytes.
func (h *handler) rewriteIfSwept(r *http.Request, d digest.Digest, body []byte) error {
	if h.linkSince() == 0 {
		return nil // GC never ran
	}
	_, err := h.blobs.Stat(r.Context(), d)
	if !errors.Is(err, blob.ErrNotFound) {
		return err
	}
	_, err = h.blobs.Put(r.Context(), d, int64(len(body)), bytes.NewReader(body))
	return err
}
