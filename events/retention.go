package events

// TypeRetentionApplied is generation 3 (generation.go).
const TypeRetentionApplied Type = "RetentionApplied"

// RetentionApplied closes one run of a RetentionPolicy: the tag and
// manifest deletions it made went through the log before it, each with
// the actor retention:<policy>. It is published as
// dev.berth.retention.completed; the FSM changes nothing for it.
type RetentionApplied struct {
	Policy           string `json:"policy"`
	Index            uint64 `json:"index"` // the view the plan was made at
	DeletedTags      int    `json:"deletedTags"`
	DeletedManifests int    `json:"deletedManifests"`
	KeptTags         int    `json:"keptTags"`
	// Skipped are deletions Apply refused (a tag moved, deleted or made
	// immutable since the plan).
	Skipped int `json:"skipped"`
}

func (RetentionApplied) EventType() Type    { return TypeRetentionApplied }
func (RetentionApplied) SchemaVersion() int { return 1 }
