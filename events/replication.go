package events

// TypeReplicationReported is codec generation 4 (generation.go).
const TypeReplicationReported Type = "ReplicationReported"

// Kinds of ReplicationReported, each published as
// dev.berth.replication.<kind>.
const (
	ReplicationStarted  = "started"
	ReplicationCopied   = "artifact.copied"
	ReplicationFailed   = "failed"
	ReplicationCaughtUp = "caught-up"
)

// ReplicationReported is a replication policy's progress, committed by
// the leader that runs the policy so that it reaches the event stream,
// and through it webhooks, in order with the changes it describes. A
// push job's copied artifacts double as its progress record: a new
// leader resumes the job after the artifacts already reported.
//
// The leader reports a failure once per change of error, not per retry,
// so a dead destination does not fill the log.
type ReplicationReported struct {
	Policy string `json:"policy"`
	Mode   string `json:"mode"` // mirror | push | proxy
	Kind   string `json:"kind"` // started | artifact.copied | failed | caught-up
	// Job names one push run (trigger schedule or manual); empty for
	// event-driven work.
	Job    string   `json:"job,omitempty"`
	Repo   string   `json:"repo,omitempty"`
	Digest string   `json:"digest,omitempty"`
	Tags   []string `json:"tags,omitempty"`
	// Bytes copied for this artifact, or by the job when it caught up.
	Bytes     int64  `json:"bytes,omitempty"`
	Artifacts int    `json:"artifacts,omitempty"`
	Error     string `json:"error,omitempty"`
}

func (ReplicationReported) EventType() Type    { return TypeReplicationReported }
func (ReplicationReported) SchemaVersion() int { return 1 }
