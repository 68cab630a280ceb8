package api

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"

	"github.com/opencontainers/go-digest"

	"github.com/berth-registry/berth/blob"
	"github.com/berth-registry/berth/events"
	"github.com/berth-registry/berth/fsm"
)

// reference is a manifest reference: a tag or a digest.
type reference struct {
	tag    string
	digest digest.Digest
}

func parseReference(ref string) (reference, error) {
	if strings.Contains(ref, ":") {
		d, err := blob.ParseDigest(ref)
		if err != nil {
			return reference{}, err
		}
		return reference{digest: d}, nil
	}
	if !tagOK(ref) {
		return reference{}, newErr(http.StatusBadRequest, codeManifestInvalid,
			"invalid tag "+quote(ref)+": up to 128 letters, digits, _ . - (not starting with . or -)")
	}
	return reference{tag: ref}, nil
}

func (h *handler) putManifest(w http.ResponseWriter, r *http.Request, name, refStr string) {
	ref, err := parseReference(refStr)
	if err != nil {
		writeError(w, r, h.logger, err)
		return
	}
	tags := []string{}
	if ref.tag != "" {
		tags = append(tags, ref.tag)
	}
	for _, t := range r.URL.Query()["tag"] {
		if !tagOK(t) {
			writeError(w, r, h.logger, newErr(http.StatusBadRequest, codeManifestInvalid, "invalid tag "+quote(t)))
			return
		}
		tags = append(tags, t)
	}
	body, err := h.readManifestBody(r)
	if err != nil {
		writeError(w, r, h.logger, err)
		return
	}
	alg := digest.SHA256
	if ref.digest != "" {
		alg = ref.digest.Algorithm()
	}
	d := alg.FromBytes(body)
	if ref.digest != "" && d != ref.digest {
		writeError(w, r, h.logger, newErr(http.StatusBadRequest, codeDigestInvalid,
			fmt.Sprintf("manifest content is %s, not %s", d, ref.digest)))
		return
	}
	m, err := parseManifest(r.Header.Get("Content-Type"), body)
	if err != nil {
		writeError(w, r, h.logger, err)
		return
	}
	// Bytes first (content-addressed, idempotent), then the event that
	// makes them visible: a failure in between leaves only unreferenced
	// bytes for GC, never a manifest without content.
	if _, err := h.blobs.Put(r.Context(), d, int64(len(body)), bytes.NewReader(body)); err != nil {
		writeError(w, r, h.logger, err)
		return
	}
	index, err := h.props.Propose(r.Context(), events.ManifestPut{
		Repo: name, Digest: d, MediaType: m.MediaType, Size: int64(len(body)),
		ArtifactType: m.ArtifactType, Annotations: m.Annotations, Subject: m.Subject,
		Blobs: m.Blobs, Manifests: m.Manifests, Tags: tags,
	})
	if err != nil {
		writeError(w, r, h.logger, err)
		h.orphanIfRefused(r, err, d, int64(len(body)))
		return
	}
	if err := h.rewriteIfSwept(r, d, body); err != nil {
		writeError(w, r, h.logger, err)
		return
	}
	h.cache.put(d, body)
	hd := w.Header()
	setIndex(hd, index)
	hd.Set("Location", "/v2/"+name+"/manifests/"+d.String())
	hd.Set("Docker-Content-Digest", d.String())
	if m.Subject != "" {
		hd.Set("OCI-Subject", m.Subject.String())
	}
	for _, t := range r.URL.Query()["tag"] {
		hd.Add("OCI-Tag", t)
	}
	hd.Set("Content-Length", "0")
	w.WriteHeader(http.StatusCreated)
}

// readManifestBody reads at most MaxManifestSize bytes; larger bodies get
// 413 before anything is stored.
func (h *handler) readManifestBody(r *http.Request) ([]byte, error) {
	limit := h.cfg.MaxManifestSize
	tooLarge := newErr(http.StatusRequestEntityTooLarge, codeManifestInvalid,
		fmt.Sprintf("manifest is larger than the %d byte limit (limits.maxmanifestsize)", limit))
	if r.ContentLength > limit {
		return nil, tooLarge
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, limit+1))
	var stalled *apiError
	if errors.As(err, &stalled) {
		return nil, stalled // the body stopped arriving (body.go)
	}
	if err != nil {
		return nil, newErr(http.StatusBadRequest, codeManifestInvalid, "reading manifest: "+err.Error())
	}
	if int64(len(body)) > limit {
		return nil, tooLarge
	}
	if r.ContentLength >= 0 && int64(len(body)) != r.ContentLength {
		return nil, newErr(http.StatusBadRequest, codeSizeInvalid, "body length does not match Content-Length")
	}
	return body, nil
}

// resolve finds the manifest a reference names, answering NAME_UNKNOWN for
// a repository that does not exist and MANIFEST_UNKNOWN otherwise.
func resolve(view *fsm.View, name string, ref reference) (fsm.Manifest, error) {
	d := ref.digest
	if ref.tag != "" {
		var ok bool
		if d, ok = view.Tag(name, ref.tag); !ok {
			return fsm.Manifest{}, unknownManifest(view, name, ref.tag)
		}
	}
	m, ok := view.Manifest(name, d)
	if !ok {
		return fsm.Manifest{}, unknownManifest(view, name, d.String())
	}
	return m, nil
}

func unknownManifest(view *fsm.View, name, ref string) error {
	if !view.RepositoryExists(name) {
		return newErr(http.StatusNotFound, codeNameUnknown, "repository "+quote(name)+" not known to registry")
	}
	return newErr(http.StatusNotFound, codeManifestUnknown, "manifest "+quote(ref)+" unknown to "+quote(name))
}

func (h *handler) getManifest(w http.ResponseWriter, r *http.Request, name, refStr string) {
	ref, err := parseReference(refStr)
	if err != nil {
		writeError(w, r, h.logger, err)
		return
	}
	view, err := h.readView(w, r)
	if err != nil {
		writeError(w, r, h.logger, err)
		return
	}
	m, err := resolve(view, name, ref)
	if h.cfg.PullThrough != nil {
		var served bool
		if m, served, err = h.pullManifest(w, r, name, ref, m, err); served {
			return
		}
	}
	if err != nil {
		writeError(w, r, h.logger, err)
		return
	}
	hd := w.Header()
	hd.Set("Content-Type", m.MediaType)
	hd.Set("Docker-Content-Digest", m.Digest.String())
	hd.Set("Etag", `"`+m.Digest.String()+`"`)
	hd.Set("Content-Length", strconv.FormatInt(m.Size, 10))
	if match := r.Header.Get("If-None-Match"); match != "" && strings.Contains(match, m.Digest.String()) {
		w.WriteHeader(http.StatusNotModified)
		return
	}
	if r.Method == http.MethodHead {
		// Metadata answers HEAD: no blob store round trip.
		w.WriteHeader(http.StatusOK)
		return
	}
	body, err := h.manifestBytes(r, m)
	if err != nil {
		writeError(w, r, h.logger, err)
		return
	}
	w.WriteHeader(http.StatusOK)
	if _, err := w.Write(body); err == nil && h.cfg.Pulls != nil {
		h.manifestPulled(r, name, ref, m)
	}
}

func (h *handler) manifestBytes(r *http.Request, m fsm.Manifest) ([]byte, error) {
	if b, ok := h.cache.get(m.Digest); ok {
		return b, nil
	}
	f, _, err := h.blobs.Open(r.Context(), m.Digest)
	if errors.Is(err, blob.ErrNotFound) {
		return nil, fmt.Errorf("manifest %s is committed but its bytes are missing from the blob store", m.Digest)
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, m.Size+1))
	if err != nil {
		return nil, fmt.Errorf("read manifest %s: %w", m.Digest, err)
	}
	if int64(len(b)) != m.Size {
		return nil, fmt.Errorf("manifest %s: stored %d bytes, expected %d", m.Digest, len(b), m.Size)
	}
	h.cache.put(m.Digest, b)
	return b, nil
}

// deleteManifest deletes a manifest (by digest, with its tags) or a tag.
func (h *handler) deleteManifest(w http.ResponseWriter, r *http.Request, name, refStr string) {
	ref, err := parseReference(refStr)
	if err != nil {
		writeError(w, r, h.logger, err)
		return
	}
	var p events.Payload = events.ManifestDeleted{Repo: name, Digest: ref.digest}
	if ref.tag != "" {
		p = events.TagDeleted{Repo: name, Tag: ref.tag}
	}
	index, err := h.props.Propose(r.Context(), p)
	if err != nil {
		writeError(w, r, h.logger, err)
		return
	}
	setIndex(w.Header(), index)
	w.Header().Set("Content-Length", "0")
	w.WriteHeader(http.StatusAccepted)
}

// IndexHeader names the Raft index of the write a response acknowledges:
// the published event's ID is "<cluster id>:<index>", so a client (or a
// test) can match its write with the event.
const IndexHeader = "Berth-Index"

func setIndex(h http.Header, index uint64) {
	if index > 0 {
		h.Set(IndexHeader, strconv.FormatUint(index, 10))
	}
}
