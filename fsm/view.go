package fsm

import (
	"time"

	"github.com/opencontainers/go-digest"
)

// CONTRACT (to be implemented): the read side of the FSM. A View is a
// consistent point-in-time snapshot of the materialized state (a go-memdb
// read transaction), so a handler that makes several queries sees one state.

// Manifest is the metadata the FSM keeps for a manifest; its bytes live in the
// blob store under Digest.
type Manifest struct {
	Repo         string
	Digest       digest.Digest
	MediaType    string
	Size         int64
	ArtifactType string
	Annotations  map[string]string
	Subject      digest.Digest
	Blobs        []digest.Digest
	Manifests    []digest.Digest
	Created      time.Time
}

// BlobLink records that a blob is visible in a repository (rule 5).
type BlobLink struct {
	Repo   string
	Digest digest.Digest
	Size   int64
	Linked time.Time
}

// Resource is a declarative resource as stored: Document is the normalized
// JSON with metadata.generation filled in.
type Resource struct {
	Kind       string
	Name       string
	Generation int64
	Document   []byte
	Created    time.Time
	Updated    time.Time
}
