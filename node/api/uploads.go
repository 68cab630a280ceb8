package api

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/berth-registry/berth/blob"
	"github.com/berth-registry/berth/events"
)

// startUpload handles POST /v2/<name>/blobs/uploads/: a mount, a single
// monolithic POST with ?digest=, or the start of a session.
func (h *handler) startUpload(w http.ResponseWriter, r *http.Request, name string) {
	q := r.URL.Query()
	if mount := q.Get("mount"); mount != "" {
		if h.tryMount(w, r, name, mount, q.Get("from")) {
			return
		}
		// A mount that cannot be done falls back to a fresh upload (202).
	} else if ds := q.Get("digest"); ds != "" {
		h.monolithic(w, r, name, ds)
		return
	}
	alg := digest.SHA256
	if a := q.Get("digest-algorithm"); a != "" {
		alg = digest.Algorithm(a)
		if !blob.Supported(alg) {
			writeError(w, r, h.logger, newErr(http.StatusBadRequest, codeDigestInvalid,
				"unsupported digest-algorithm "+quote(a)+": use sha256 or sha512"))
			return
		}
	}
	st, err := h.blobs.StartUpload(r.Context(), name, alg)
	var full *blob.TooManyUploadsError
	if errors.As(err, &full) {
		secs := int64(max(full.RetryAfter, time.Second) / time.Second)
		w.Header().Set("Retry-After", strconv.FormatInt(secs, 10))
		writeError(w, r, h.logger, newErr(http.StatusTooManyRequests, codeTooManyRequests,
			fmt.Sprintf("this node already keeps %d upload sessions that hold no data: finish or cancel yours, or retry in %d seconds", full.Limit, secs)))
		return
	}
	if err != nil {
		writeError(w, r, h.logger, err)
		return
	}
	h.uploadAccepted(w, name, st.ID, 0, http.StatusAccepted)
}

// tryMount links a blob that another repository already has. It reports
// false when the mount is impossible and a normal upload should start.
//
// Without `from`, the blob must already be linked in a repository of the
// same namespace as name (see sameNamespaceLink): a client that merely
// knows a digest must not be able to link any blob of the registry into
// its repository, and so learn that it exists and read it. Anything else
// falls back to an upload session (202), as the spec says for a mount that
// cannot be done; the client then pushes the bytes, which proves it has
// them. Access control will narrow this further to what the caller may
// read.
func (h *handler) tryMount(w http.ResponseWriter, r *http.Request, name, ds, from string) bool {
	d, err := blob.ParseDigest(ds)
	if err != nil {
		return false
	}
	view, err := h.readView(w, r)
	if err != nil {
		writeError(w, r, h.logger, err)
		return true
	}
	var size int64
	var ok bool
	if from != "" && validName(from) == nil {
		link, found := view.BlobLink(from, d)
		size, ok = link.Size, found
	} else if from == "" {
		link, found := sameNamespaceLink(view, name, d)
		size, ok = link.Size, found
	}
	if !ok {
		return false
	}
	since := h.linkSince()
	if _, err := h.blobs.Stat(r.Context(), d); err != nil {
		return false
	}
	if _, err := h.props.Propose(r.Context(), events.BlobLinked{Repo: name, Digest: d, Size: size, Since: since}); err != nil {
		writeError(w, r, h.logger, err)
		return true
	}
	blobCreated(w, name, d)
	return true
}

// monolithic handles a whole blob in one POST with ?digest=.
func (h *handler) monolithic(w http.ResponseWriter, r *http.Request, name, ds string) {
	d, err := blob.ParseDigest(ds)
	if err != nil {
		writeError(w, r, h.logger, err)
		return
	}
	since := h.linkSince()
	info, err := h.blobs.Put(r.Context(), d, r.ContentLength, r.Body)
	if err != nil {
		writeError(w, r, h.logger, err)
		return
	}
	if _, err := h.props.Propose(r.Context(), events.BlobLinked{Repo: name, Digest: d, Size: info.Size, Since: since}); err != nil {
		writeError(w, r, h.logger, err)
		h.orphanIfRefused(r, err, d, info.Size)
		return
	}
	blobCreated(w, name, d)
}

func blobCreated(w http.ResponseWriter, name string, d digest.Digest) {
	w.Header().Set("Location", "/v2/"+name+"/blobs/"+d.String())
	w.Header().Set("Docker-Content-Digest", d.String())
	w.Header().Set("Content-Length", "0")
	w.WriteHeader(http.StatusCreated)
}

// uploadAccepted reports a session's progress: Range is inclusive, and a
// session with no bytes yet reports 0-0 as CNCF Distribution does.
func (h *handler) uploadAccepted(w http.ResponseWriter, name, id string, offset int64, status int) {
	hd := w.Header()
	hd.Set("Location", "/v2/"+name+"/blobs/uploads/"+id)
	hd.Set("Docker-Upload-UUID", id)
	hd.Set("Range", rangeHeader(offset))
	hd.Set("Content-Length", "0")
	w.WriteHeader(status)
}

func rangeHeader(offset int64) string {
	return fmt.Sprintf("0-%d", max(offset-1, 0))
}

func (h *handler) uploadStatus(w http.ResponseWriter, r *http.Request, name, id string) {
	st, err := h.blobs.UploadStatus(r.Context(), name, id)
	if err != nil {
		writeError(w, r, h.logger, err)
		return
	}
	h.uploadAccepted(w, name, id, st.Offset, http.StatusNoContent)
}

// patchUpload appends a chunk. With Content-Range the chunk must start
// where the session ends (else 416 and the current Range); without it the
// body is streamed onto the end.
func (h *handler) patchUpload(w http.ResponseWriter, r *http.Request, name, id string) {
	offset, err := h.appendChunk(r, name, id)
	if err != nil {
		h.chunkError(w, r, name, id, err)
		return
	}
	h.uploadAccepted(w, name, id, offset, http.StatusAccepted)
}

// appendChunk writes the request body to the session, checking
// Content-Range and Content-Length when given. It returns the new offset.
func (h *handler) appendChunk(r *http.Request, name, id string) (int64, error) {
	st, err := h.blobs.UploadStatus(r.Context(), name, id)
	if err != nil {
		return 0, err
	}
	body := io.Reader(r.Body)
	if cr := r.Header.Get("Content-Range"); cr != "" {
		start, end, err := blob.ParseContentRange(cr)
		if err != nil {
			return 0, newErr(http.StatusRequestedRangeNotSatisfiable, codeBlobUploadInvalid, err.Error())
		}
		if start != st.Offset {
			return 0, &blob.OffsetError{Current: st.Offset}
		}
		n := end - start + 1
		if r.ContentLength >= 0 && r.ContentLength != n {
			return 0, newErr(http.StatusBadRequest, codeSizeInvalid,
				fmt.Sprintf("Content-Length %d does not match Content-Range %s", r.ContentLength, cr))
		}
		body = io.LimitReader(r.Body, n)
	}
	offset, err := h.blobs.Append(r.Context(), name, id, st.Offset, body)
	if err != nil {
		return 0, err
	}
	if r.ContentLength >= 0 && offset-st.Offset != r.ContentLength {
		return offset, newErr(http.StatusBadRequest, codeSizeInvalid,
			"request body ended after "+strconv.FormatInt(offset-st.Offset, 10)+" of "+strconv.FormatInt(r.ContentLength, 10)+" bytes")
	}
	return offset, nil
}

func (h *handler) chunkError(w http.ResponseWriter, r *http.Request, name, id string, err error) {
	var off *blob.OffsetError
	if errors.As(err, &off) {
		w.Header().Set("Location", "/v2/"+name+"/blobs/uploads/"+id)
		w.Header().Set("Range", rangeHeader(off.Current))
		w.Header().Set("Docker-Upload-UUID", id)
	}
	writeError(w, r, h.logger, err)
}

// finishUpload closes a session: an optional last chunk, then the digest
// check, then the link event. 201 only once the link is applied.
func (h *handler) finishUpload(w http.ResponseWriter, r *http.Request, name, id string) {
	ds := r.URL.Query().Get("digest")
	if ds == "" {
		writeError(w, r, h.logger, newErr(http.StatusBadRequest, codeDigestInvalid, "the closing PUT needs ?digest=<digest of the whole blob>"))
		return
	}
	d, err := blob.ParseDigest(ds)
	if err != nil {
		writeError(w, r, h.logger, err)
		return
	}
	since := h.linkSince()
	var info blob.Info
	whole := false
	if startsAtZero(r) {
		// POST then a PUT with everything (what docker and crane do for
		// small blobs): stream straight into place, no session bookkeeping.
		info, err = h.blobs.PutUpload(r.Context(), name, id, d, r.ContentLength, r.Body)
		switch {
		case err == nil:
			whole = true
		case !errors.Is(err, blob.ErrUploadNotEmpty):
			writeError(w, r, h.logger, err)
			return
		}
	}
	if !whole {
		if r.ContentLength != 0 {
			if _, err := h.appendChunk(r, name, id); err != nil {
				h.chunkError(w, r, name, id, err)
				return
			}
		}
		if info, err = h.blobs.Commit(r.Context(), name, id, d); err != nil {
			writeError(w, r, h.logger, err)
			return
		}
	}
	if _, err := h.props.Propose(r.Context(), events.BlobLinked{Repo: name, Digest: d, Size: info.Size, Since: since}); err != nil {
		writeError(w, r, h.logger, err)
		h.orphanIfRefused(r, err, d, info.Size)
		return
	}
	blobCreated(w, name, d)
}

// startsAtZero reports whether a closing PUT may carry the entire blob: it
// has a body, and a Content-Range, if any, starts at 0. Whether the session
// is still empty is for the store to say.
func startsAtZero(r *http.Request) bool {
	if r.ContentLength == 0 {
		return false
	}
	if cr := r.Header.Get("Content-Range"); cr != "" {
		start, _, err := blob.ParseContentRange(cr)
		return err == nil && start == 0
	}
	return true
}

func (h *handler) cancelUpload(w http.ResponseWriter, r *http.Request, name, id string) {
	if err := h.blobs.CancelUpload(r.Context(), name, id); err != nil {
		writeError(w, r, h.logger, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}
