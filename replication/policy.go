package replication

import (
	"context"
	"net/http"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/opencontainers/go-digest"

	"github.com/berth-registry/berth/blob"
	"github.com/berth-registry/berth/events"
)

// Policy is one mirror ReplicationPolicy with its origin resolved by the
// node: names mapped, filters as functions, credentials read.
type Policy struct {
	Name     string
	Registry string
	// Key changes whenever anything the running mirror depends on
	// changes (the policy's or the Registry's generation, a secret), so
	// the manager restarts it.
	Key string
	// Covers says whether a repository at the origin is mirrored;
	// Destination names it here; WantsTag filters tags.
	Covers      func(repo string) bool
	Destination func(repo string) string
	WantsTag    func(tag string) bool
	Deletion    bool
	// Bandwidth caps the bytes per second copied; 0 is unlimited.
	Bandwidth int64
	Origin    Origin
}

// Origin is where the origin's OCI API and event stream are.
type Origin struct {
	// URL is the OCI API's base (https://registry.eu.example.com).
	URL        string
	HTTP       *http.Client
	Username   string
	Password   string
	NATSURLs   []string
	Stream     string
	NATSOption []nats.Option // credentials, TLS
}

// Cursor is a committed position on the origin's stream.
type Cursor struct {
	Index uint64 // the origin's Raft index of the last applied event
	Seq   uint64 // its stream sequence
}

// Local is a consistent read of the mirror's own state.
type Local interface {
	Cursor(policy string) (Cursor, bool)
	RepositoryExists(repo string) bool
	Manifest(repo string, d digest.Digest) bool
	BlobLinked(repo string, d digest.Digest) bool
	Tag(repo, tag string) (digest.Digest, bool)
	// Tags lists every tag of repo.
	Tags(repo string) []string
	ReadOnly() bool
}

// Target is the mirror cluster as the replicator writes to it.
type Target struct {
	// View reads the current local state.
	View func() Local
	// Propose commits an event through the log; the caller's context
	// carries the events.Origin (actor replication:<policy>).
	Propose func(ctx context.Context, p events.Payload) error
	Blobs   blob.Store
	// Parse reads a manifest's references as the OCI API would on a
	// push (node/api): the returned ManifestPut has no Repo, Digest,
	// Size or Tags yet.
	Parse func(mediaType string, body []byte) (events.ManifestPut, error)
	// LinkSince is BlobLinked.Since for bytes about to be written or
	// found (node.Node.LinkSince).
	LinkSince func() uint64
	// Fence fails once this node's leader term is over (rule 9).
	Fence func() error
}

// Status is what `clusterctl replication status` and the metrics show of
// one policy.
type Status struct {
	Policy   string `json:"policy"`
	Registry string `json:"registry"`
	Running  bool   `json:"running"`
	// Syncing is set while an initial sync lists and copies the origin.
	Syncing bool `json:"syncing,omitempty"`
	// Cursor is the origin index applied here, with every event before
	// it; Seq its stream sequence. The log holds it at most 64 events or
	// 100 ms later (cursor.go); a follower shows the log's.
	Cursor uint64 `json:"cursor"`
	Seq    uint64 `json:"seq"`
	// OriginHead is the origin index of the newest replicated event in
	// the origin's stream; LagEntries the stream's events not applied
	// here yet, LagSeconds how long the mirror has been behind.
	OriginHead uint64  `json:"originHead"`
	LagEntries uint64  `json:"lagEntries"`
	LagSeconds float64 `json:"lagSeconds"`
	// Events, Artifacts and Bytes count what this leader term applied
	// and copied.
	Events    uint64 `json:"events"`
	Artifacts uint64 `json:"artifacts"`
	Bytes     int64  `json:"bytesCopied"`
	LastError string `json:"lastError,omitempty"`
	// ErrorTime is when LastError happened; it stays after a recovery
	// until the next error, so a flapping origin shows.
	ErrorTime time.Time `json:"errorTime,omitzero"`
	// LastEvent is when the last event was applied.
	LastEvent time.Time `json:"lastEvent,omitzero"`
	// Mode is the policy's mode (push policies say so; empty is mirror).
	Mode string `json:"mode,omitempty"`
	// Job is a push policy's newest job, from the log: JobState is
	// running, done or interrupted (open, not running on this leader).
	Job          string    `json:"job,omitempty"`
	JobState     string    `json:"jobState,omitempty"`
	JobArtifacts int       `json:"jobArtifacts,omitempty"`
	JobBytes     int64     `json:"jobBytes,omitempty"`
	JobFinished  time.Time `json:"jobFinished,omitzero"`
	// TTL is a proxy policy's revalidation interval.
	TTL string `json:"ttl,omitempty"`
}
