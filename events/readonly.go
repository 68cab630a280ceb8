package events

// TypeReadOnlySet is codec generation 3 (generation.go): a voter that
// cannot decode it would halt, so the leader proposes it only once every
// voter announced generation 3.
const TypeReadOnlySet Type = "ReadOnlySet"

// MaxReadOnlyReason bounds ReadOnlySet.Reason: it is repeated in every
// refused write's error message.
const MaxReadOnlyReason = 256

// ReadOnlySet turns the cluster's read-only mode on or off. While it is on,
// Apply refuses every registry write (manifests, tags, blob links,
// repository deletes) and garbage collection does not sweep; reads,
// resource applies and lifting the mode go on. Committing it through the
// log means every node switches at the same index, so no node accepts a
// write another already refuses. Who set it and when come from the
// event's Origin and Time.
type ReadOnlySet struct {
	On     bool   `json:"on"`
	Reason string `json:"reason,omitempty"`
}

func (ReadOnlySet) EventType() Type    { return TypeReadOnlySet }
func (ReadOnlySet) SchemaVersion() int { return 1 }
