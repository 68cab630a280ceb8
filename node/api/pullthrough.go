package api

import (
	"context"
	"errors"
	"net/http"
	"strconv"

	"github.com/opencontainers/go-digest"

	"github.com/berth-registry/berth/blob"
	"github.com/berth-registry/berth/fsm"
)

// PullThrough fills reads from another registry: a proxy policy's
// upstream, or a mirror's origin (fallback: origin). The handlers ask it
// before they answer a manifest read and when a blob is missing; it is
// not consulted for repositories no policy covers beyond a lookup.
type PullThrough interface {
	// Manifest runs before a manifest read of repo (by tag, or by
	// digest d) is answered; found says whether the local state has it.
	// An error means the upstream could not fill a miss; with found set,
	// the implementation serves the cached copy and returns no error.
	Manifest(ctx context.Context, repo, tag string, d digest.Digest, found bool) (Pulled, error)
	// Blob runs when blob d is not linked in repo.
	Blob(ctx context.Context, repo string, d digest.Digest) (Pulled, error)
}

// Pulled says how to answer once the PullThrough ran. The zero value
// leaves the answer to the local state as it was.
type Pulled struct {
	// Committed: content was committed; the local state is read again.
	Committed bool
	// Manifest is a verified manifest to serve as is, not stored, with
	// its media type and digest.
	Manifest  []byte
	MediaType string
	Digest    digest.Digest
	// BlobStored: the blob's verified bytes are in the blob store,
	// linked to no repository; they are served from there.
	BlobStored bool
}

// pullError is what a client sees when the upstream could not fill a
// miss: this registry's own refusals and outages as they are (read-only,
// quota, no leader, a full disk), anything else as 503, which clients
// retry, never a 500. An invalid manifest or bytes that do not match their
// digest are the upstream's fault, not the client's: 503 too, not 400.
func pullError(err error) error {
	var ref *fsm.Refusal
	var u interface{ Unavailable() bool }
	if errors.As(err, &ref) || errors.As(err, &u) && u.Unavailable() || blob.IsNoSpace(err) || blob.IsUnavailable(err) {
		return toAPIError(err)
	}
	return newErr(http.StatusServiceUnavailable, codeUnavailable, "could not fetch from the upstream registry: "+err.Error())
}

// pullManifest runs the PullThrough for a manifest read that resolved to
// m (rerr on a miss). served reports a response already written.
func (h *handler) pullManifest(w http.ResponseWriter, r *http.Request, name string, ref reference, m fsm.Manifest, rerr error) (_ fsm.Manifest, served bool, _ error) {
	p, err := h.cfg.PullThrough.Manifest(r.Context(), name, ref.tag, ref.digest, rerr == nil)
	switch {
	case err != nil && rerr == nil:
		h.logger.Warn("pull-through failed; serving the local copy", "repo", name, "err", err)
		return m, false, nil
	case err != nil:
		return m, false, pullError(err)
	case p.Manifest != nil:
		hd := w.Header()
		hd.Set("Content-Type", p.MediaType)
		hd.Set("Docker-Content-Digest", p.Digest.String())
		hd.Set("Etag", `"`+p.Digest.String()+`"`)
		hd.Set("Content-Length", strconv.Itoa(len(p.Manifest)))
		w.WriteHeader(http.StatusOK)
		if r.Method != http.MethodHead {
			w.Write(p.Manifest)
		}
		return m, true, nil
	case p.Committed:
		view, err := h.reads.ReadView(r.Context())
		if err != nil {
			return m, false, err
		}
		w.Header().Set("Berth-Applied-Index", strconv.FormatUint(view.Index(), 10))
		m2, err := resolve(view, name, ref)
		if err != nil && rerr == nil {
			return m, false, nil // gone again in between: what was found still answers
		}
		return m2, false, err
	}
	return m, false, rerr
}

// pullBlob runs the PullThrough for a blob not linked in name; ok says
// whether the blob can now be served from the store.
func (h *handler) pullBlob(r *http.Request, name string, d digest.Digest) (ok bool, err error) {
	p, err := h.cfg.PullThrough.Blob(r.Context(), name, d)
	if err != nil {
		return false, pullError(err)
	}
	if p.BlobStored {
		return true, nil
	}
	if !p.Committed {
		return false, nil
	}
	view, err := h.reads.ReadView(r.Context())
	if err != nil {
		return false, err
	}
	_, ok = view.BlobLink(name, d)
	return ok, nil
}
