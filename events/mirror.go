package events

// TypeMirrorCursor is codec generation 3 (generation.go): the leader
// proposes it only once every voter announced generation 3.
const TypeMirrorCursor Type = "MirrorCursor"

// MirrorCursor records how far a mirror policy has followed its origin:
// every replicated event of the origin up to Index (the origin's Raft
// index, its Berth-Index header) is applied here. Seq is the origin
// stream's sequence of that event, where the next leader resumes reading
// (0 after an initial sync: the stream is read from its start and events
// up to Index are skipped). The mirror applies an event's change first
// and commits the cursor after it, so a crash in between repeats the
// event, which is idempotent, and never loses one.
type MirrorCursor struct {
	Policy string `json:"policy"`
	Index  uint64 `json:"index"`
	Seq    uint64 `json:"seq,omitempty"`
	// Synced is set by the cursor that ends an initial sync, from the
	// listing's Berth-Applied-Index, rather than by a streamed event.
	Synced bool `json:"synced,omitempty"`
}

func (MirrorCursor) EventType() Type    { return TypeMirrorCursor }
func (MirrorCursor) SchemaVersion() int { return 1 }
