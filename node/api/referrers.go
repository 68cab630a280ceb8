package api

import (
	"encoding/json"
	"net/http"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/berth-registry/berth/blob"
)

type referrerDescriptor struct {
	MediaType    string            `json:"mediaType"`
	Digest       string            `json:"digest"`
	Size         int64             `json:"size"`
	ArtifactType string            `json:"artifactType,omitempty"`
	Annotations  map[string]string `json:"annotations,omitempty"`
}

// referrers answers with an OCI index of the manifests whose subject is the
// given digest, always an index, even an empty one.
func (h *handler) referrers(w http.ResponseWriter, r *http.Request, name, ds string) {
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
	filter := r.URL.Query().Get("artifactType")
	list := []referrerDescriptor{}
	for _, m := range view.Referrers(name, d) {
		if filter != "" && m.ArtifactType != filter {
			continue
		}
		list = append(list, referrerDescriptor{
			MediaType: m.MediaType, Digest: m.Digest.String(), Size: m.Size,
			ArtifactType: m.ArtifactType, Annotations: m.Annotations,
		})
	}
	if filter != "" {
		w.Header().Set("OCI-Filters-Applied", "artifactType")
	}
	w.Header().Set("Content-Type", ocispec.MediaTypeImageIndex)
	json.NewEncoder(w).Encode(map[string]any{
		"schemaVersion": 2,
		"mediaType":     ocispec.MediaTypeImageIndex,
		"manifests":     list,
	})
}
