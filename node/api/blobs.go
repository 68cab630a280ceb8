package api

import (
	"errors"
	"net/http"
	"strconv"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/berth-registry/berth/blob"
	"github.com/berth-registry/berth/events"
)

// getBlob serves GET and HEAD. A blob is visible in a repository only
// through a link in the FSM (rule 5), and its bytes must be in the store.
func (h *handler) getBlob(w http.ResponseWriter, r *http.Request, name, ds string) {
	d, err := blob.ParseDigest(ds)
	if err != nil {
		writeError(w, r, h.logger, err)
		return
	}
	view, err := h.readView(w, r)
	if err != nil {
		writeError(w, r, h.logger, err)
		return
	}
	if _, ok := view.BlobLink(name, d); !ok {
		if h.cfg.PullThrough != nil {
			ok, err = h.pullBlob(r, name, d)
			if err != nil {
				writeError(w, r, h.logger, err)
				return
			}
		}
		if !ok {
			writeError(w, r, h.logger, blobUnknown(d))
			return
		}
	}
	f, info, err := h.blobs.Open(r.Context(), d)
	if errors.Is(err, blob.ErrNotFound) {
		writeError(w, r, h.logger, blobUnknown(d))
		return
	}
	if err != nil {
		writeError(w, r, h.logger, err)
		return
	}
	defer f.Close()
	hd := w.Header()
	hd.Set("Docker-Content-Digest", d.String())
	hd.Set("Content-Type", "application/octet-stream")
	hd.Set("Etag", `"`+d.String()+`"`)
	hd.Set("Cache-Control", "max-age=31536000")
	if st, ok := f.(blob.Streamer); ok && plainGet(r) {
		hd.Set("Content-Length", strconv.FormatInt(info.Size, 10))
		w.WriteHeader(http.StatusOK)
		if _, err := st.Stream(w); err != nil {
			// The status is sent: all that is left is to cut the response
			// short, which the client sees as a short body.
			h.logger.Warn("blob download cut short", "repo", name, "digest", d, "err", err)
			panic(http.ErrAbortHandler)
		}
		if h.cfg.Pulls != nil {
			h.blobPulled(r, name, events.Pull{Digest: d, Size: info.Size})
		}
		return
	}
	// ServeContent answers Range with 206, If-None-Match with 304 and HEAD
	// without a body, and sets Content-Length.
	if h.cfg.Pulls == nil || r.Method != http.MethodGet {
		http.ServeContent(w, r, "", time.Time{}, f)
		return
	}
	// The status ServeContent chose (log.go's writer keeps sendfile).
	sw := &statusWriter{ResponseWriter: w}
	http.ServeContent(sw, r, "", time.Time{}, f)
	if sw.status == http.StatusOK || sw.status == http.StatusPartialContent && rangeFromStart(r) {
		h.blobPulled(r, name, events.Pull{Digest: d, Size: info.Size})
	}
}

// plainGet reports a whole-blob GET, with nothing for ServeContent to
// decide: no Range and no conditions.
func plainGet(r *http.Request) bool {
	if r.Method != http.MethodGet {
		return false
	}
	for _, h := range []string{"Range", "If-Range", "If-Match", "If-None-Match", "If-Modified-Since", "If-Unmodified-Since"} {
		if r.Header.Get(h) != "" {
			return false
		}
	}
	return true
}

func blobUnknown(d digest.Digest) *apiError {
	return newErr(http.StatusNotFound, codeBlobUnknown, "blob "+d.String()+" unknown to this repository")
}

// deleteBlob unlinks a blob from the repository. The bytes stay until GC
// finds no reference left.
func (h *handler) deleteBlob(w http.ResponseWriter, r *http.Request, name, ds string) {
	d, err := blob.ParseDigest(ds)
	if err != nil {
		writeError(w, r, h.logger, err)
		return
	}
	if _, err := h.props.Propose(r.Context(), events.BlobUnlinked{Repo: name, Digest: d}); err != nil {
		writeError(w, r, h.logger, err)
		return
	}
	w.Header().Set("Content-Length", "0")
	w.WriteHeader(http.StatusAccepted)
}
