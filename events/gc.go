package events

import "github.com/opencontainers/go-digest"

// Garbage collection through the log (ARCHITECTURE.md rule 10). A run is a
// sequence of events, all proposed by the leader's GC job:
//
//	GCStarted → GCMarked × n → GCSweepStarted → (bytes deleted) → GCSwept
//
// GCStarted opens the run: from then on Apply notes every digest that an
// event references, so a candidate computed from a view older than its
// GCMarked chunk is still dropped when something referenced it meanwhile.
// The candidate set is split into GCMarked chunks of at most MaxGCChunk
// digests each (a Raft entry stays well under a megabyte however much
// garbage there is). GCSweepStarted freezes the set: the FSM removes the
// candidates' links and manifest rows and refuses any later event that
// references one, until GCSwept ends the run after the bytes are gone.
// GCCancelled abandons a run that is not sweeping yet.
//
// All five are codec generation 2 (generation.go).
const (
	TypeGCStarted      Type = "GCStarted"
	TypeGCMarked       Type = "GCMarked"
	TypeGCSweepStarted Type = "GCSweepStarted"
	TypeGCSwept        Type = "GCSwept"
	TypeGCCancelled    Type = "GCCancelled"
)

// MaxGCChunk bounds the digests (blobs plus manifests) of one GCMarked
// event: 10,000 sha256 digests are about 750 kB of JSON.
const MaxGCChunk = 10000

// ManifestRef names a manifest in a repository.
type ManifestRef struct {
	Repo   string        `json:"repo"`
	Digest digest.Digest `json:"digest"`
}

// GCStarted opens a GC run. Grace is how old (in event time, against this
// event's time) a blob link or untagged manifest must be before nothing
// referencing it makes it garbage: a layer whose manifest has not come yet
// is not garbage.
type GCStarted struct {
	Run            string `json:"run"`
	DeleteUntagged bool   `json:"deleteUntagged,omitempty"`
	GraceSeconds   int64  `json:"graceSeconds"`
}

func (GCStarted) EventType() Type    { return TypeGCStarted }
func (GCStarted) SchemaVersion() int { return 1 }

// GCMarked adds candidates to the open run: Blobs are digests whose bytes
// the sweep deletes (no repository keeps them), Manifests the manifest rows
// it removes (with deleteUntagged). A manifest's own digest is in Blobs too
// when no repository keeps it.
type GCMarked struct {
	Run       string          `json:"run"`
	Blobs     []digest.Digest `json:"blobs,omitempty"`
	Manifests []ManifestRef   `json:"manifests,omitempty"`
}

func (GCMarked) EventType() Type    { return TypeGCMarked }
func (GCMarked) SchemaVersion() int { return 1 }

// GCSweepStarted freezes the run's candidate set and removes the
// candidates' links and manifest rows from every repository.
type GCSweepStarted struct {
	Run string `json:"run"`
}

func (GCSweepStarted) EventType() Type    { return TypeGCSweepStarted }
func (GCSweepStarted) SchemaVersion() int { return 1 }

// GCSwept ends a run whose bytes are deleted, with what it reclaimed.
type GCSwept struct {
	Run     string `json:"run"`
	Deleted int    `json:"deleted"`
	Bytes   int64  `json:"bytes"`
}

func (GCSwept) EventType() Type    { return TypeGCSwept }
func (GCSwept) SchemaVersion() int { return 1 }

// GCCancelled abandons a run before its sweep started; nothing is deleted.
type GCCancelled struct {
	Run    string `json:"run"`
	Reason string `json:"reason,omitempty"`
}

func (GCCancelled) EventType() Type    { return TypeGCCancelled }
func (GCCancelled) SchemaVersion() int { return 1 }
