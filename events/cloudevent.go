package events

import (
	"strings"
	"time"

	"github.com/opencontainers/go-digest"
)

// CloudEvents types of what Berth publishes. The short form (without
// "dev.berth.") is what a Webhook's spec.events lists.
const (
	CETypeManifestPushed    = "dev.berth.manifest.pushed"
	CETypeManifestDeleted   = "dev.berth.manifest.deleted"
	CETypeTagUpdated        = "dev.berth.tag.updated"
	CETypeTagDeleted        = "dev.berth.tag.deleted"
	CETypeRepositoryDeleted = "dev.berth.repository.deleted"
	CETypeResourceApplied   = "dev.berth.resource.applied"
	CETypeResourceDeleted   = "dev.berth.resource.deleted"
	CETypePing              = "dev.berth.ping"
	// Jobs: garbage collection and retention runs.
	CETypeGCStarted          = "dev.berth.gc.started"
	CETypeGCCompleted        = "dev.berth.gc.completed"
	CETypeGCCancelled        = "dev.berth.gc.cancelled"
	CETypeRetentionCompleted = "dev.berth.retention.completed"
	// Replication: CETypeReplicationPrefix + a ReplicationReported kind
	// (dev.berth.replication.artifact.copied).
	CETypeReplicationPrefix = "dev.berth.replication."
	// CETypeQuotaWarning is derived in Apply, not an event of its own:
	// a namespace's usage reached 85% of its quota (fsm/quota.go).
	CETypeQuotaWarning = "dev.berth.quota.warning"
	// Pull events come from the serving node, not from the log
	// (events/pulls); they are opt-in (events.pulls) and best effort.
	CETypeManifestPulled = "dev.berth.manifest.pulled"
	CETypeBlobPulled     = "dev.berth.blob.pulled"

	// CEContentType is the media type of a CloudEvent in structured mode.
	CEContentType = "application/cloudevents+json"
	ceTypePrefix  = "dev.berth."
)

// LoggedTypes are the types the outbox publishes from the Raft log, in
// index order; pull events are not among them.
var LoggedTypes = []string{
	CETypeManifestPushed, CETypeManifestDeleted, CETypeTagUpdated, CETypeTagDeleted,
	CETypeRepositoryDeleted, CETypeResourceApplied, CETypeResourceDeleted, CETypeQuotaWarning,
}

// IsPullSubject reports whether a stream subject holds a pull event
// (berth.manifest_pulled.…, berth.blob_pulled.…): not from the log, no
// index.
func IsPullSubject(subject string) bool {
	rest, ok := strings.CutPrefix(subject, SubjectPrefix+".")
	if !ok {
		return false
	}
	typ, _, _ := strings.Cut(rest, ".")
	return strings.HasSuffix(typ, "_pulled")
}

// TypeSubjects is the subject filter of one type's events, every
// repository: "berth.manifest_pushed.>".
func TypeSubjects(ceType string) string {
	return SubjectPrefix + "." + strings.ReplaceAll(ShortType(ceType), ".", "_") + ".>"
}

// CloudEvent is one published event in CloudEvents 1.0 structured JSON.
// Its ID, "<cluster id>:<raft index>", names the event for all time: it is
// JetStream's Nats-Msg-Id (so a republished index is dropped) and what a
// receiver deduplicates by.
type CloudEvent struct {
	SpecVersion     string         `json:"specversion"`
	ID              string         `json:"id"`
	Source          string         `json:"source"`
	Type            string         `json:"type"`
	Time            time.Time      `json:"time"`
	Subject         string         `json:"subject,omitempty"`
	DataContentType string         `json:"datacontenttype"`
	Data            CloudEventData `json:"data"`
}

// CloudEventData is the payload of every Berth CloudEvent; fields that do
// not apply to a type are left out.
type CloudEventData struct {
	Repository   string        `json:"repository,omitempty"`
	Digest       digest.Digest `json:"digest,omitempty"`
	Tag          string        `json:"tag,omitempty"`
	Tags         []string      `json:"tags,omitempty"`
	MediaType    string        `json:"mediaType,omitempty"`
	Size         int64         `json:"size,omitempty"`
	ArtifactType string        `json:"artifactType,omitempty"`
	// Subject is the manifest a referrer points at.
	Subject digest.Digest `json:"subject,omitempty"`
	// Resources name what a resource event applied or deleted.
	Resources []ResourceRef `json:"resources,omitempty"`
	// Job describes a GC or retention run.
	Job       *JobData `json:"job,omitempty"`
	Actor     string   `json:"actor,omitempty"`
	UserAgent string   `json:"userAgent,omitempty"`
	RequestID string   `json:"requestId,omitempty"`
	// RemoteAddr is the client's address (host:port) of a pull event.
	RemoteAddr string `json:"remoteAddr,omitempty"`
	// Node is the node that served a pull event.
	Node string `json:"node,omitempty"`
	// Namespace, Usage and Quota (bytes) are a quota warning's.
	Namespace string `json:"namespace,omitempty"`
	Usage     int64  `json:"usage,omitempty"`
	Quota     int64  `json:"quota,omitempty"`
	// Index is the Raft index of a logged event; 0 for pull events,
	// which do not go through the log.
	Index uint64 `json:"index"`
}

// JobData is what a GC or retention event says of its run.
type JobData struct {
	Run              string `json:"run,omitempty"`    // GC run ID
	Policy           string `json:"policy,omitempty"` // retention policy
	DeleteUntagged   bool   `json:"deleteUntagged,omitempty"`
	Deleted          int    `json:"deleted,omitempty"`
	Bytes            int64  `json:"bytes,omitempty"`
	DeletedTags      int    `json:"deletedTags,omitempty"`
	DeletedManifests int    `json:"deletedManifests,omitempty"`
	KeptTags         int    `json:"keptTags,omitempty"`
	Skipped          int    `json:"skipped,omitempty"`
	Reason           string `json:"reason,omitempty"`
	// Replication: the policy's mode, push job, artifacts copied and
	// last error (Policy names the ReplicationPolicy).
	Mode      string `json:"mode,omitempty"`
	Job       string `json:"job,omitempty"`
	Artifacts int    `json:"artifacts,omitempty"`
	Error     string `json:"error,omitempty"`
}

// ResourceRef names one declarative resource.
type ResourceRef struct {
	Kind string `json:"kind"`
	Name string `json:"name"`
}

// EventID is a published event's ID: the cluster ID and the Raft index.
func EventID(clusterID string, index uint64) string {
	return MessageID(clusterID, index)
}

// ToCloudEvent renders the log entry at index as a CloudEvent. ok is false
// for entries that are the cluster's own bookkeeping (blob links, publish
// cursors): they are never published.
func ToCloudEvent(clusterID string, index uint64, ev Event) (ce CloudEvent, ok bool) {
	d := CloudEventData{Actor: ev.Origin.Actor, UserAgent: ev.Origin.UserAgent, RequestID: ev.Origin.RequestID, Index: index}
	var typ string
	switch p := ev.Payload.(type) {
	case ManifestPut:
		typ = CETypeManifestPushed
		d.Repository, d.Digest, d.MediaType, d.Size = p.Repo, p.Digest, p.MediaType, p.Size
		d.ArtifactType, d.Subject = p.ArtifactType, p.Subject
		if len(p.Tags) > 0 {
			d.Tag, d.Tags = p.Tags[0], p.Tags
		}
	case ManifestDeleted:
		typ = CETypeManifestDeleted
		d.Repository, d.Digest = p.Repo, p.Digest
	case TagSet:
		typ = CETypeTagUpdated
		d.Repository, d.Tag, d.Digest = p.Repo, p.Tag, p.Digest
	case TagDeleted:
		typ = CETypeTagDeleted
		d.Repository, d.Tag = p.Repo, p.Tag
	case RepositoryDeleted:
		typ = CETypeRepositoryDeleted
		d.Repository = p.Repo
	case ResourceApplied:
		typ = CETypeResourceApplied
		d.Resources = []ResourceRef{{Kind: p.Kind, Name: p.Name}}
	case ResourcesApplied:
		typ = CETypeResourceApplied
		for _, r := range p.Resources {
			d.Resources = append(d.Resources, ResourceRef{Kind: r.Kind, Name: r.Name})
		}
	case ResourceDeleted:
		typ = CETypeResourceDeleted
		d.Resources = []ResourceRef{{Kind: p.Kind, Name: p.Name}}
	case GCStarted:
		typ = CETypeGCStarted
		d.Job = &JobData{Run: p.Run, DeleteUntagged: p.DeleteUntagged}
	case GCSwept:
		typ = CETypeGCCompleted
		d.Job = &JobData{Run: p.Run, Deleted: p.Deleted, Bytes: p.Bytes}
	case GCCancelled:
		typ = CETypeGCCancelled
		d.Job = &JobData{Run: p.Run, Reason: p.Reason}
	case RetentionApplied:
		typ = CETypeRetentionCompleted
		d.Job = &JobData{Policy: p.Policy, DeletedTags: p.DeletedTags, DeletedManifests: p.DeletedManifests, KeptTags: p.KeptTags, Skipped: p.Skipped}
	case ReplicationReported:
		typ = CETypeReplicationPrefix + p.Kind
		d.Repository, d.Digest, d.Tags = p.Repo, digest.Digest(p.Digest), p.Tags
		d.Job = &JobData{Policy: p.Policy, Mode: p.Mode, Job: p.Job, Bytes: p.Bytes, Artifacts: p.Artifacts, Error: p.Error}
	default:
		return CloudEvent{}, false
	}
	ce = CloudEvent{
		SpecVersion: "1.0", ID: EventID(clusterID, index), Source: "berth://" + clusterID,
		Type: typ, Time: ev.Time.UTC(), DataContentType: "application/json", Data: d,
	}
	switch {
	case d.Tag != "":
		ce.Subject = d.Repository + ":" + d.Tag
	case d.Digest != "":
		ce.Subject = d.Repository + "@" + d.Digest.String()
	case d.Repository != "":
		ce.Subject = d.Repository
	case len(d.Resources) == 1:
		ce.Subject = d.Resources[0].Kind + "/" + d.Resources[0].Name
	case d.Job != nil && d.Job.Mode != "":
		ce.Subject = "replication/" + d.Job.Policy
	case d.Job != nil && d.Job.Policy != "":
		ce.Subject = "retention/" + d.Job.Policy
	case d.Job != nil:
		ce.Subject = "gc/" + d.Job.Run
	}
	return ce, true
}

// ShortType is the type without "dev.berth.": "manifest.pushed".
func ShortType(ceType string) string { return strings.TrimPrefix(ceType, ceTypePrefix) }

// SubjectPrefix is the root of every subject Berth publishes on; a stream
// that takes "berth.>" holds them all.
const SubjectPrefix = "berth"

// NATSSubject is where a CloudEvent is published:
// berth.<type>.<repository path>, with the type's dots as underscores
// ("manifest_pushed") and each path component as its own token, so that
// "berth.*.team-a.>" follows one namespace. Characters NATS reserves in a
// token are percent-escaped; a repository name never holds "%", so the
// escaping cannot be confused with the name. Events without a repository
// use their namespace's name, if any, or the token "_"
// (berth.resource_applied._).
func NATSSubject(ce CloudEvent) string {
	var b strings.Builder
	b.WriteString(SubjectPrefix)
	b.WriteByte('.')
	b.WriteString(strings.ReplaceAll(ShortType(ce.Type), ".", "_"))
	path := ce.Data.Repository
	if path == "" {
		path = ce.Data.Namespace // a quota warning not caused by a push
	}
	if path == "" {
		b.WriteString("._")
		return b.String()
	}
	for _, part := range strings.Split(path, "/") {
		b.WriteByte('.')
		b.WriteString(subjectEscaper.Replace(part))
	}
	return b.String()
}

var subjectEscaper = strings.NewReplacer(".", "%2E", "*", "%2A", ">", "%3E", "%", "%25", " ", "%20")
