package events

import (
	"time"

	"github.com/opencontainers/go-digest"
)

// TypePullsRecorded is generation 3 (generation.go).
const TypePullsRecorded Type = "PullsRecorded"

// MaxPullsRecorded bounds the entries of one PullsRecorded: a node with
// more pulls in a period sends several.
const MaxPullsRecorded = 2048

// PullsRecorded carries the last time each manifest was pulled through
// one node, batched about once a minute: retention's keepPulledWithin
// needs pull times, and a Raft entry per pull would turn every read into a
// write. Apply keeps the latest time per manifest and ignores manifests
// that are gone. It is never published.
type PullsRecorded struct {
	Pulls []PullTime `json:"pulls"`
}

// PullTime is one manifest's last pull seen by the sending node.
type PullTime struct {
	Repo   string        `json:"repo"`
	Digest digest.Digest `json:"digest"`
	Time   time.Time     `json:"time"`
}

func (PullsRecorded) EventType() Type    { return TypePullsRecorded }
func (PullsRecorded) SchemaVersion() int { return 1 }
