package api

import (
	"encoding/json"
	"fmt"
	"mime"
	"net/http"
	"strings"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/berth-registry/berth/blob"
	"github.com/berth-registry/berth/events"
)

// Manifest media types Berth accepts.
const (
	mtOCIManifest    = ocispec.MediaTypeImageManifest
	mtOCIIndex       = ocispec.MediaTypeImageIndex
	mtDockerManifest = "application/vnd.docker.distribution.manifest.v2+json"
	mtDockerList     = "application/vnd.docker.distribution.manifest.list.v2+json"
	mtDockerSchema1  = "application/vnd.docker.distribution.manifest.v1+json"
	mtDockerSigned1  = "application/vnd.docker.distribution.manifest.v1+prettyjws"
)

// parsedManifest is what the registry needs from a manifest; the bytes
// themselves are stored untouched, so custom fields survive byte for byte.
type parsedManifest struct {
	MediaType    string
	ArtifactType string
	Annotations  map[string]string
	Subject      digest.Digest
	// Blobs must be linked in the repository: config and distributable layers.
	Blobs []digest.Digest
	// Manifests are an index's children; they must exist in the repository.
	Manifests []digest.Digest
}

type rawDescriptor struct {
	MediaType    string            `json:"mediaType"`
	Digest       string            `json:"digest"`
	Size         *int64            `json:"size"`
	URLs         []string          `json:"urls"`
	ArtifactType string            `json:"artifactType"`
	Annotations  map[string]string `json:"annotations"`
}

type rawManifest struct {
	SchemaVersion *int              `json:"schemaVersion"`
	MediaType     string            `json:"mediaType"`
	ArtifactType  string            `json:"artifactType"`
	Config        *rawDescriptor    `json:"config"`
	Layers        []rawDescriptor   `json:"layers"`
	Manifests     []rawDescriptor   `json:"manifests"`
	Subject       *rawDescriptor    `json:"subject"`
	Annotations   map[string]string `json:"annotations"`
	FSLayers      json.RawMessage   `json:"fsLayers"`
}

func invalid(format string, args ...any) *apiError {
	return newErr(http.StatusBadRequest, codeManifestInvalid, fmt.Sprintf(format, args...))
}

// parseManifest validates a manifest body. contentType is the request's
// Content-Type; when both it and the body's mediaType are set they must
// agree.
func parseManifest(contentType string, body []byte) (parsedManifest, error) {
	var raw rawManifest
	if err := json.Unmarshal(body, &raw); err != nil {
		return parsedManifest{}, invalid("manifest is not valid JSON: %v", err)
	}
	ct := ""
	if contentType != "" {
		if t, _, err := mime.ParseMediaType(contentType); err == nil {
			ct = t
		}
	}
	if ct == "application/json" || ct == "application/octet-stream" {
		ct = ""
	}
	mt := raw.MediaType
	switch {
	case ct != "" && mt != "" && ct != mt:
		return parsedManifest{}, invalid("Content-Type %q does not match the manifest's mediaType %q", ct, mt)
	case mt == "":
		mt = ct
	}
	if mt == "" {
		// OCI allows mediaType to be absent; infer from the shape.
		switch {
		case raw.Config != nil:
			mt = mtOCIManifest
		case raw.Manifests != nil:
			mt = mtOCIIndex
		}
	}
	p := parsedManifest{MediaType: mt, ArtifactType: raw.ArtifactType, Annotations: raw.Annotations}
	switch mt {
	case mtOCIManifest, mtDockerManifest:
		if err := checkSchemaVersion(raw); err != nil {
			return p, err
		}
		if raw.Manifests != nil {
			return p, invalid("an image manifest has no \"manifests\" field")
		}
		if raw.Config == nil {
			return p, invalid("image manifest needs a config descriptor")
		}
		if err := checkDescriptor("config", *raw.Config); err != nil {
			return p, err
		}
		p.Blobs = append(p.Blobs, digest.Digest(raw.Config.Digest))
		if raw.Layers == nil && mt == mtDockerManifest {
			return p, invalid("image manifest needs a layers array")
		}
		for i, l := range raw.Layers {
			if err := checkDescriptor(fmt.Sprintf("layers[%d]", i), l); err != nil {
				return p, err
			}
			if distributable(l) {
				p.Blobs = append(p.Blobs, digest.Digest(l.Digest))
			}
		}
		if p.ArtifactType == "" && mt == mtOCIManifest {
			// The referrers API reports the config's media type then.
			p.ArtifactType = raw.Config.MediaType
		}
	case mtOCIIndex, mtDockerList:
		if err := checkSchemaVersion(raw); err != nil {
			return p, err
		}
		if raw.Manifests == nil {
			return p, invalid("an index needs a manifests array")
		}
		if raw.Config != nil || raw.Layers != nil {
			return p, invalid("an index has no config or layers")
		}
		for i, m := range raw.Manifests {
			if err := checkDescriptor(fmt.Sprintf("manifests[%d]", i), m); err != nil {
				return p, err
			}
			p.Manifests = append(p.Manifests, digest.Digest(m.Digest))
		}
	case mtDockerSchema1, mtDockerSigned1:
		return p, newErr(http.StatusBadRequest, codeManifestInvalid, "Docker schema 1 manifests are not supported: push with a current client (schema 2 or OCI)")
	case "":
		if raw.FSLayers != nil {
			return p, newErr(http.StatusBadRequest, codeManifestInvalid, "Docker schema 1 manifests are not supported: push with a current client (schema 2 or OCI)")
		}
		return p, invalid("cannot tell the manifest type: set Content-Type or the mediaType field")
	default:
		return p, newErr(http.StatusBadRequest, codeManifestInvalid, "unsupported manifest media type "+quote(mt))
	}
	if raw.Subject != nil {
		if err := checkDescriptor("subject", *raw.Subject); err != nil {
			return p, err
		}
		p.Subject = digest.Digest(raw.Subject.Digest)
	}
	return p, nil
}

func checkSchemaVersion(raw rawManifest) error {
	if raw.SchemaVersion == nil || *raw.SchemaVersion != 2 {
		return invalid("schemaVersion must be 2")
	}
	return nil
}

func checkDescriptor(field string, d rawDescriptor) error {
	if d.MediaType == "" {
		return invalid("%s: mediaType is required", field)
	}
	if _, err := blob.ParseDigest(d.Digest); err != nil {
		return invalid("%s: %v", field, err)
	}
	if d.Size == nil || *d.Size < 0 {
		return invalid("%s: size must be a non-negative integer", field)
	}
	return nil
}

// distributable reports whether a layer is pushed to registries at all.
// Non-distributable (foreign) layers and layers fetched from URLs are not,
// so a manifest may reference them without the registry having them.
func distributable(l rawDescriptor) bool {
	if len(l.URLs) > 0 {
		return false
	}
	return !strings.Contains(l.MediaType, ".nondistributable.") &&
		l.MediaType != "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip"
}

// ParseManifest reads what a push of body would commit, for the mirror
// (replication), which stores manifests it copies exactly as a push
// would: the ManifestPut has no repository, digest, size or tags yet.
func ParseManifest(mediaType string, body []byte) (events.ManifestPut, error) {
	m, err := parseManifest(mediaType, body)
	if err != nil {
		return events.ManifestPut{}, err
	}
	return events.ManifestPut{
		MediaType: m.MediaType, ArtifactType: m.ArtifactType, Annotations: m.Annotations,
		Subject: m.Subject, Blobs: m.Blobs, Manifests: m.Manifests,
	}, nil
}
