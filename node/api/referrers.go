package api

import (
	"encoding/json"
	"net/http"
	"net/url"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/berth-registry/berth/blob"
	"github.com/berth-registry/berth/fsm"
)

type referrerDescriptor struct {
	MediaType    string            `json:"mediaType"`
	Digest       digest.Digest     `json:"digest"`
	Size         int64             `json:"size"`
	ArtifactType string            `json:"artifactType,omitempty"`
	Annotations  map[string]string `json:"annotations,omitempty"`
}

// referrersPageBytes caps the descriptors of one page by their approximate
// encoded size: annotations can be large, and Limit alone would let a page
// hold Limit manifests' worth of them.
const referrersPageBytes = 4 << 20

// referrers answers with an OCI index of the manifests whose subject is the
// given digest, always an index, even an empty one. A subject with more
// referrers than one page holds is served in pages of at most
// Config.ReferrersPageSize descriptors (and about referrersPageBytes), in
// digest order, with a Link rel="next" to the rest, as the spec's listing
// referrers section asks; the Link carries ?last=<digest> (and the filter).
func (h *handler) referrers(w http.ResponseWriter, r *http.Request, name, ds string) {
	d, err := blob.ParseDigest(ds)
	if err != nil {
		writeError(w, r, h.logger, err)
		return
	}
	q := r.URL.Query()
	var after digest.Digest
	if s := q.Get("last"); s != "" {
		if after, err = blob.ParseDigest(s); err != nil {
			writeError(w, r, h.logger, newErr(http.StatusBadRequest, codeDigestInvalid, "last must be a digest from a Link header, got "+quote(s)))
			return
		}
	}
	view, err := h.readView(w, r)
	if err != nil {
		writeError(w, r, h.logger, err)
		return
	}
	filter := q.Get("artifactType")
	found, next := view.Referrers(name, d, fsm.ReferrersQuery{After: after, Limit: h.cfg.ReferrersPageSize, ArtifactType: filter})
	list := make([]referrerDescriptor, 0, len(found))
	size := 0
	for _, m := range found {
		if size > referrersPageBytes {
			next = list[len(list)-1].Digest
			break
		}
		desc := referrerDescriptor{
			MediaType: m.MediaType, Digest: m.Digest, Size: m.Size,
			ArtifactType: m.ArtifactType, Annotations: m.Annotations,
		}
		size += desc.approxSize()
		list = append(list, desc)
	}
	if filter != "" {
		w.Header().Set("OCI-Filters-Applied", "artifactType")
	}
	if next != "" {
		link := "/v2/" + name + "/referrers/" + d.String() + "?last=" + url.QueryEscape(next.String())
		if filter != "" {
			link += "&artifactType=" + url.QueryEscape(filter)
		}
		w.Header().Set("Link", "<"+link+`>; rel="next"`)
	}
	w.Header().Set("Content-Type", ocispec.MediaTypeImageIndex)
	json.NewEncoder(w).Encode(map[string]any{
		"schemaVersion": 2,
		"mediaType":     ocispec.MediaTypeImageIndex,
		"manifests":     list,
	})
}

// approxSize is about what the descriptor takes encoded as JSON.
func (d referrerDescriptor) approxSize() int {
	n := 100 + len(d.MediaType) + len(d.Digest) + len(d.ArtifactType)
	for k, v := range d.Annotations {
		n += len(k) + len(v) + 6
	}
	return n
}
