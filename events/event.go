// Package events holds Berth's event vocabulary: the types that are written
// to the Raft log, their versioned wire codec, and (later) the NATS outbox.
//
// Events are forever (ARCHITECTURE.md rule 3). A payload type's shape may only
// change by adding a new schema version; the codec keeps a decoder for every
// version ever written and upgrades old payloads to the current struct, so a
// new binary replays any old log or snapshot.
package events

import (
	"encoding/json"
	"time"

	"github.com/opencontainers/go-digest"
)

// Type names an event kind. The string is part of the wire format.
type Type string

// The event types. Never rename or reuse one.
const (
	TypeManifestPut       Type = "ManifestPut"
	TypeManifestDeleted   Type = "ManifestDeleted"
	TypeTagSet            Type = "TagSet"
	TypeTagDeleted        Type = "TagDeleted"
	TypeBlobLinked        Type = "BlobLinked"
	TypeBlobUnlinked      Type = "BlobUnlinked"
	TypeRepositoryDeleted Type = "RepositoryDeleted"
	TypeResourceApplied   Type = "ResourceApplied"
	TypeResourceDeleted   Type = "ResourceDeleted"
	TypeResourcesApplied  Type = "ResourcesApplied"
)

// Payload is the body of one event. Each concrete payload names its type and
// current schema version so the codec can stamp them.
type Payload interface {
	EventType() Type
	SchemaVersion() int
}

// Event is one entry of the Raft log. Time is stamped by the proposer, never
// by Apply, so that replaying the log is deterministic (rule 2).
type Event struct {
	Time time.Time
	// Origin says who caused the event. Older binaries ignore it, so it
	// needs no schema version of its own.
	Origin  Origin
	Payload Payload
}

// Type is a shortcut for e.Payload.EventType().
func (e Event) Type() Type { return e.Payload.EventType() }

// ManifestPut stores a manifest in a repository and, atomically, points the
// listed tags at it. The manifest bytes already sit in the blob store under
// Digest; the event carries only what queries, GC and Apply's checks need.
type ManifestPut struct {
	Repo      string        `json:"repo"`
	Digest    digest.Digest `json:"digest"`
	MediaType string        `json:"mediaType"`
	Size      int64         `json:"size"`
	// ArtifactType and Annotations are what the referrers API reports.
	ArtifactType string            `json:"artifactType,omitempty"`
	Annotations  map[string]string `json:"annotations,omitempty"`
	// Subject is the manifest this one refers to, if any. It need not exist.
	Subject digest.Digest `json:"subject,omitempty"`
	// Blobs are the config and layers that must already be linked to Repo.
	// Non-distributable layers are left out: they are never pushed.
	Blobs []digest.Digest `json:"blobs,omitempty"`
	// Manifests are the children of an index that must already exist in Repo.
	Manifests []digest.Digest `json:"manifests,omitempty"`
	// Tags are set to Digest in the same step (a push by tag, or ?tag=).
	Tags []string `json:"tags,omitempty"`
}

func (ManifestPut) EventType() Type    { return TypeManifestPut }
func (ManifestPut) SchemaVersion() int { return 1 }

// ManifestDeleted removes a manifest from a repository together with every
// tag that points at it.
type ManifestDeleted struct {
	Repo   string        `json:"repo"`
	Digest digest.Digest `json:"digest"`
}

func (ManifestDeleted) EventType() Type    { return TypeManifestDeleted }
func (ManifestDeleted) SchemaVersion() int { return 1 }

// TagSet points a tag at a manifest that already exists in the repository.
type TagSet struct {
	Repo   string        `json:"repo"`
	Tag    string        `json:"tag"`
	Digest digest.Digest `json:"digest"`
}

func (TagSet) EventType() Type    { return TypeTagSet }
func (TagSet) SchemaVersion() int { return 1 }

// TagDeleted removes a tag; the manifest stays.
type TagDeleted struct {
	Repo string `json:"repo"`
	Tag  string `json:"tag"`
}

func (TagDeleted) EventType() Type    { return TypeTagDeleted }
func (TagDeleted) SchemaVersion() int { return 1 }

// BlobLinked makes a blob, whose bytes are already durable in the blob store,
// visible in a repository (rule 5). It follows a finished upload or a mount.
type BlobLinked struct {
	Repo   string        `json:"repo"`
	Digest digest.Digest `json:"digest"`
	Size   int64         `json:"size"`
	// Since is the applied index the proposing node had reached before
	// it wrote (or found) the bytes. Apply refuses the link when GC swept
	// the digest at a later index: the sweep may have deleted those very
	// bytes, so the client must upload them again. Zero (version 1, or
	// no GC ever ran) is treated as "before every sweep".
	Since uint64 `json:"since,omitempty"`
}

func (BlobLinked) EventType() Type { return TypeBlobLinked }

// SchemaVersion is 2 only for a link that carries Since: version 2 is
// codec generation 2, which a rolling upgrade admits only once every voter
// decodes it, and a link without Since stays version 1 so uploads never
// wait for that.
func (b BlobLinked) SchemaVersion() int {
	if b.Since != 0 {
		return 2
	}
	return 1
}

// BlobUnlinked removes a blob from a repository. The bytes stay until GC
// finds no reference left.
type BlobUnlinked struct {
	Repo   string        `json:"repo"`
	Digest digest.Digest `json:"digest"`
}

func (BlobUnlinked) EventType() Type    { return TypeBlobUnlinked }
func (BlobUnlinked) SchemaVersion() int { return 1 }

// RepositoryDeleted removes a repository with all its tags, manifests and
// blob links.
type RepositoryDeleted struct {
	Repo string `json:"repo"`
}

func (RepositoryDeleted) EventType() Type    { return TypeRepositoryDeleted }
func (RepositoryDeleted) SchemaVersion() int { return 1 }

// ResourceApplied creates or updates a declarative resource (rule 11).
// Document is the whole resource as the user sent it, normalized to JSON.
// The FSM assigns metadata.generation: it goes up by one whenever the spec
// (or labels) change, and an identical apply changes nothing.
type ResourceApplied struct {
	Kind     string          `json:"kind"`
	Name     string          `json:"name"`
	Document json.RawMessage `json:"document"`
}

func (ResourceApplied) EventType() Type    { return TypeResourceApplied }
func (ResourceApplied) SchemaVersion() int { return 1 }

// ResourcesApplied applies several resources in one log entry, in order:
// Apply takes all of them or, if it refuses any, none. It is what a
// multi-document `clusterctl apply -f` commits, so a file never ends up
// half applied (rule 12). Each element is applied exactly as a
// ResourceApplied event of its own would be.
type ResourcesApplied struct {
	Resources []ResourceApplied `json:"resources"`
}

func (ResourcesApplied) EventType() Type    { return TypeResourcesApplied }
func (ResourcesApplied) SchemaVersion() int { return 1 }

// ResourceDeleted removes a declarative resource.
type ResourceDeleted struct {
	Kind string `json:"kind"`
	Name string `json:"name"`
}

func (ResourceDeleted) EventType() Type    { return TypeResourceDeleted }
func (ResourceDeleted) SchemaVersion() int { return 1 }
