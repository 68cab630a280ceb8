package fsm

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"regexp"

	"github.com/hashicorp/go-memdb"

	"github.com/berth-registry/berth/events"
)

// The event outbox's share of the state (ARCHITECTURE.md rule 8).
//
// The publisher cannot read the raw Raft log: an entry Apply refused had no
// effect and must never be published, and compaction drops log entries the
// publisher may not have sent yet. So Apply itself keeps the unpublished
// tail: each accepted entry that ToCloudEvent publishes is kept as an
// outbox row until an OutboxCursor passes it. Rows are part of snapshots,
// so compaction loses none. Until the first OutboxCursor (the outbox was
// never configured) nothing is kept.
const (
	tOutbox  = "outbox"
	tCluster = "cluster"
	// clusterKey is the key of the one row of tCluster.
	clusterKey = "cluster"
)

// OutboxRow is one accepted, not yet published log entry: its index and
// its bytes exactly as in the log, and the quota warnings Apply derived
// from it (quota.go), published after the entry's own event. The entry of
// a row that holds only warnings is not published itself.
type OutboxRow struct {
	Index    uint64
	Entry    json.RawMessage
	Warnings []events.QuotaWarning `json:",omitempty"`
}

// clusterRow holds the cluster's identity, the outbox's cursor and
// whether quotas are enforced. It exists once any was ever set, so a cluster that never used events
// writes snapshots exactly as before.
type clusterRow struct {
	Key           string
	ID            string `json:",omitempty"`
	OutboxEnabled bool   `json:",omitempty"`
	OutboxCursor  uint64 `json:",omitempty"`
	// Quotas is set by QuotasEnabled: from then on Apply enforces
	// namespace storage quotas (fsm/quota.go).
	Quotas bool `json:",omitempty"`
}

// indexIndexer indexes a uint64 field big-endian, so that the radix tree
// iterates rows in numeric order (memdb's UintFieldIndex uses varints,
// which do not sort).
type indexIndexer struct{}

func (indexIndexer) FromObject(obj any) (bool, []byte, error) {
	r, ok := obj.(*OutboxRow)
	if !ok {
		return false, nil, fmt.Errorf("outbox index: %T is not an *OutboxRow", obj)
	}
	return true, binary.BigEndian.AppendUint64(nil, r.Index), nil
}

func (indexIndexer) FromArgs(args ...any) ([]byte, error) {
	if len(args) != 1 {
		return nil, fmt.Errorf("outbox index: want one argument, got %d", len(args))
	}
	i, ok := args[0].(uint64)
	if !ok {
		return nil, fmt.Errorf("outbox index: %T is not a uint64", args[0])
	}
	return binary.BigEndian.AppendUint64(nil, i), nil
}

func init() {
	schema.Tables[tOutbox] = &memdb.TableSchema{Name: tOutbox, Indexes: map[string]*memdb.IndexSchema{
		idx: {Name: idx, Unique: true, Indexer: indexIndexer{}},
	}}
	schema.Tables[tCluster] = &memdb.TableSchema{Name: tCluster, Indexes: map[string]*memdb.IndexSchema{
		idx: {Name: idx, Unique: true, Indexer: str("Key")},
	}}
}

// clusterIDRe is what a cluster ID may look like: it is part of every
// event ID and of the CloudEvents source URI.
var clusterIDRe = regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9-]{0,63}$`)

func (w writer) cluster() clusterRow {
	if r, ok := w.first(tCluster, clusterKey).(*clusterRow); ok {
		return *r
	}
	return clusterRow{Key: clusterKey}
}

// recordOutbox keeps an accepted entry for the publisher, when the outbox
// is on and the entry is one that is published or gave rise to quota
// warnings.
func (w writer) recordOutbox(entry []byte, warnings []events.QuotaWarning) {
	if !w.cluster().OutboxEnabled {
		return
	}
	if _, ok := events.ToCloudEvent("", w.index, w.ev); !ok && len(warnings) == 0 {
		return
	}
	w.insert(tOutbox, &OutboxRow{Index: w.index, Entry: append(json.RawMessage(nil), entry...), Warnings: warnings})
}

func (w writer) outboxCursor(p events.OutboxCursor) error {
	c := w.cluster()
	switch {
	case p.Index >= w.index:
		return refuse(CodeInvalid, "outbox cursor %d is not before its own entry %d", p.Index, w.index)
	case p.Index < c.OutboxCursor:
		// A stale leader's cursor: the cursor never moves back.
		return refuse(CodeInvalid, "outbox cursor %d is behind the committed cursor %d", p.Index, c.OutboxCursor)
	}
	c.OutboxEnabled, c.OutboxCursor = true, p.Index
	w.insert(tCluster, &c)
	it, err := w.txn.Get(tOutbox, idx)
	if err != nil {
		panic(fmt.Sprintf("fsm: read outbox: %v", err))
	}
	var done []any
	for o := it.Next(); o != nil && o.(*OutboxRow).Index <= p.Index; o = it.Next() {
		done = append(done, o)
	}
	for _, o := range done {
		w.delete(tOutbox, o)
	}
	return nil
}

func (w writer) clusterIdentified(p events.ClusterIdentified) error {
	c := w.cluster()
	if c.ID != "" {
		return refuse(CodeInvalid, "the cluster is already identified as %q", c.ID)
	}
	if !clusterIDRe.MatchString(p.ID) {
		return refuse(CodeInvalid, "%q is not a valid cluster ID (letters, digits and dashes, at most 64)", p.ID)
	}
	c.ID = p.ID
	w.insert(tCluster, &c)
	return nil
}

// ClusterID is the cluster's ID, or "" before the first leader named it.
func (v *View) ClusterID() string {
	if r, ok := v.first(tCluster, clusterKey).(*clusterRow); ok {
		return r.ID
	}
	return ""
}

// OutboxCursor is the last committed publish cursor, and whether the
// outbox is on (a cursor was ever committed).
func (v *View) OutboxCursor() (cursor uint64, enabled bool) {
	if r, ok := v.first(tCluster, clusterKey).(*clusterRow); ok {
		return r.OutboxCursor, r.OutboxEnabled
	}
	return 0, false
}

// Pending lists up to limit outbox rows with an index above after, in
// index order.
func (v *View) Pending(after uint64, limit int) []OutboxRow {
	it, err := v.txn.LowerBound(tOutbox, idx, after+1)
	if err != nil {
		panic(fmt.Sprintf("fsm: read outbox: %v", err))
	}
	var rows []OutboxRow
	for o := it.Next(); o != nil && len(rows) < limit; o = it.Next() {
		rows = append(rows, *o.(*OutboxRow))
	}
	return rows
}

// PendingCount counts the outbox rows not yet published.
func (v *View) PendingCount() int {
	it, err := v.txn.Get(tOutbox, idx)
	if err != nil {
		panic(fmt.Sprintf("fsm: read outbox: %v", err))
	}
	n := 0
	for o := it.Next(); o != nil; o = it.Next() {
		n++
	}
	return n
}

// checkCluster checks the cluster row of a snapshot.
func (l *loader) cluster(c *clusterRow) error {
	if c.Key != clusterKey {
		return fmt.Errorf("cluster row has key %q, want %q", c.Key, clusterKey)
	}
	if c.ID != "" && !clusterIDRe.MatchString(c.ID) {
		return fmt.Errorf("%q is not a valid cluster ID", c.ID)
	}
	if c.OutboxCursor > 0 && !c.OutboxEnabled {
		return fmt.Errorf("outbox cursor %d is set but the outbox is off", c.OutboxCursor)
	}
	if c.OutboxCursor > l.index {
		return fmt.Errorf("outbox cursor %d is past the snapshot's index %d", c.OutboxCursor, l.index)
	}
	l.clusterRow = c
	return nil
}

// outbox checks one outbox row: it comes after the cluster row, above the
// cursor, not past the snapshot, and holds an event that is published.
func (l *loader) outbox(r *OutboxRow) error {
	c := l.clusterRow
	switch {
	case c == nil || !c.OutboxEnabled:
		return fmt.Errorf("outbox row %d, but the outbox is off", r.Index)
	case r.Index <= c.OutboxCursor:
		return fmt.Errorf("outbox row %d is at or before the cursor %d", r.Index, c.OutboxCursor)
	case r.Index > l.index:
		return fmt.Errorf("outbox row %d is past the snapshot's index %d", r.Index, l.index)
	}
	ev, err := events.Decode(r.Entry)
	if err != nil {
		return fmt.Errorf("outbox row %d: %w", r.Index, err)
	}
	if _, ok := events.ToCloudEvent("", r.Index, ev); !ok && len(r.Warnings) == 0 {
		return fmt.Errorf("outbox row %d holds a %s, which is never published", r.Index, ev.Type())
	}
	for _, wn := range r.Warnings {
		if !resourceNameRe.MatchString(wn.Namespace) && checkRepoName(wn.Namespace) != nil || wn.Usage <= 0 || wn.Quota <= 0 {
			return fmt.Errorf("outbox row %d holds a malformed quota warning for %q", r.Index, wn.Namespace)
		}
	}
	return nil
}
