package fsm

import (
	"fmt"
	"strings"
	"time"
	"unicode"

	"github.com/hashicorp/go-memdb"

	"github.com/berth-registry/berth/events"
)

// Read-only mode's share of the state (issue 10, point 4). One row, which
// exists once the mode was ever turned on, so a cluster that never used it
// writes snapshots exactly as before and an older snapshot restores with
// the mode off.
//
// While the mode is on, Apply refuses every registry write with
// CodeReadOnly: the order of the log decides, so a write proposed on any
// node just before the switch either committed before it or is refused,
// on every node alike. The HTTP layer also refuses uploads early from the
// local state, so no bytes are written for a link Apply would refuse; that
// check is only an optimization, this one is the rule.
//
// What still applies: resources (the operator may need to change
// configuration during maintenance), the outbox's bookkeeping, GC marks,
// cancels and the end of a sweep whose deletes already ran, and
// ReadOnlySet itself. A GC run does not start and a sweep does not begin
// (GCStarted, GCSweepStarted): the sweep deletes bytes, which is what an
// operator who froze the registry (to copy the bucket, say) must not see.
// Replication into this cluster (not built yet) must pause too: its writes
// are registry writes, which Apply refuses anyway, and its job should
// check View.ReadOnly before fetching anything.
const (
	tReadOnly   = "readonly"
	readOnlyKey = "readonly"
)

// CodeReadOnly refuses a write while the registry is in read-only mode.
const CodeReadOnly Code = "READ_ONLY"

// ReadOnly is the read-only mode as the log last set it.
type ReadOnly struct {
	On     bool   `json:"on"`
	Reason string `json:"reason,omitempty"`
	// Actor is who set (or lifted) it, from the event's origin.
	Actor string `json:"actor,omitempty"`
	// Since is the event time of the change, Index its log index; both
	// zero when the mode was never turned on.
	Since time.Time `json:"since,omitzero"`
	Index uint64    `json:"index,omitempty"`
}

// Message is what a refused write tells the client: why, since when, and
// how to lift it.
func (r ReadOnly) Message() string {
	var b strings.Builder
	b.WriteString("registry is in read-only mode")
	var by []string
	if r.Actor != "" {
		by = append(by, "by "+r.Actor)
	}
	if !r.Since.IsZero() {
		by = append(by, "at "+r.Since.UTC().Format(time.RFC3339))
	}
	if len(by) > 0 || r.Reason != "" {
		b.WriteString(" (set")
		if len(by) > 0 {
			b.WriteString(" " + strings.Join(by, " "))
		}
		if r.Reason != "" {
			b.WriteString(": " + r.Reason)
		}
		b.WriteString(")")
	}
	b.WriteString("; clusterctl readonly off lifts it")
	return b.String()
}

// readOnlyRow is the stored form, one row under readOnlyKey.
type readOnlyRow struct {
	Key string
	ReadOnly
}

func init() {
	schema.Tables[tReadOnly] = &memdb.TableSchema{Name: tReadOnly, Indexes: map[string]*memdb.IndexSchema{
		idx: {Name: idx, Unique: true, Indexer: str("Key")},
	}}
}

// CheckReadOnlyReason reports what is wrong with a reason, or nil. The
// admin API asks it before proposing; Apply asks it again, as the log may
// hold what any client sent.
func CheckReadOnlyReason(s string) error {
	switch {
	case len(s) > events.MaxReadOnlyReason:
		return fmt.Errorf("the reason is %d bytes long; at most %d", len(s), events.MaxReadOnlyReason)
	case strings.IndexFunc(s, unicode.IsControl) >= 0:
		return fmt.Errorf("the reason holds a control character (newline, tab, ...); use one line of text")
	}
	return nil
}

func (w writer) readOnly() ReadOnly {
	if r, ok := w.first(tReadOnly, readOnlyKey).(*readOnlyRow); ok {
		return r.ReadOnly
	}
	return ReadOnly{}
}

// readOnlyGuard refuses a registry write, or the start of a GC run or
// sweep, while the mode is on.
func (w writer) readOnlyGuard(p events.Payload) error {
	ro := w.readOnly()
	if !ro.On || !refusedWhileReadOnly(p) {
		return nil
	}
	return &Refusal{Code: CodeReadOnly, Message: ro.Message()}
}

// refusedWhileReadOnly lists what read-only mode stops. Anything not named
// here (resources, bookkeeping, event types added later) still applies:
// a new kind of registry write must be added.
func refusedWhileReadOnly(p events.Payload) bool {
	switch p.(type) {
	case events.ManifestPut, events.ManifestDeleted, events.TagSet, events.TagDeleted,
		events.BlobLinked, events.BlobUnlinked, events.RepositoryDeleted,
		events.GCStarted, events.GCSweepStarted:
		return true
	}
	return false
}

func (w writer) readOnlySet(p events.ReadOnlySet) error {
	if err := CheckReadOnlyReason(p.Reason); err != nil {
		return refuse(CodeInvalid, "read-only mode: %v", err)
	}
	cur := w.readOnly()
	if !p.On && !cur.On {
		return nil // already off (or never on): nothing changes
	}
	reason := p.Reason
	if !p.On {
		reason = "" // the reason was for turning it on; lifting keeps none
	}
	w.insert(tReadOnly, &readOnlyRow{Key: readOnlyKey, ReadOnly: ReadOnly{
		On: p.On, Reason: reason, Actor: w.ev.Origin.Actor, Since: w.ev.Time.UTC(), Index: w.index,
	}})
	return nil
}

// ReadOnly is the read-only mode in this view; the zero value (off) when
// it was never turned on.
func (v *View) ReadOnly() ReadOnly {
	if r, ok := v.first(tReadOnly, readOnlyKey).(*readOnlyRow); ok {
		return r.ReadOnly
	}
	return ReadOnly{}
}

// readOnlyRow checks the read-only row of a snapshot.
func (l *loader) readOnly(r *readOnlyRow) error {
	if r.Key != readOnlyKey {
		return fmt.Errorf("read-only row has key %q, want %q", r.Key, readOnlyKey)
	}
	if err := CheckReadOnlyReason(r.Reason); err != nil {
		return fmt.Errorf("read-only row: %w", err)
	}
	if r.Index > l.index {
		return fmt.Errorf("read-only mode set at index %d, past the snapshot's index %d", r.Index, l.index)
	}
	return nil
}
