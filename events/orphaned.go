package events

import "github.com/opencontainers/go-digest"

// TypeBytesOrphaned is generation 3 (generation.go).
const TypeBytesOrphaned Type = "BytesOrphaned"

// BytesOrphaned tells garbage collection about bytes a request wrote to
// the store whose event Apply then refused (a manifest over its
// namespace's quota, a link in read-only mode): no other event names
// them, so without it they would stay in the store for good. Apply notes
// the digest as an orphan only if nothing links or holds it, and GC
// deletes it once older than its grace period, through the same fenced
// sweep as every other candidate. It is never published.
type BytesOrphaned struct {
	Digest digest.Digest `json:"digest"`
	Size   int64         `json:"size"`
}

func (BytesOrphaned) EventType() Type    { return TypeBytesOrphaned }
func (BytesOrphaned) SchemaVersion() int { return 1 }
