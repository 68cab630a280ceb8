package fsm

import (
	"fmt"
	"time"

	"github.com/hashicorp/go-memdb"

	"github.com/berth-registry/berth/events"
)

// Mirror cursors (issue 12): one row per mirror policy, saying how far the
// policy has followed its origin's event stream. The table is empty until
// a mirror committed its first cursor, so older snapshots' bytes are
// unchanged. A deleted policy keeps its row: re-created under the same
// name, it resumes rather than copying everything again.
const tMirror = "mirror"

// maxPolicyName bounds MirrorCursor.Policy, a resource name.
const maxPolicyName = 63

// MirrorCursor is a policy's committed position on its origin.
type MirrorCursor struct {
	Policy string `json:"policy"`
	// Index is the origin's Raft index of the last event applied here.
	Index uint64 `json:"index"`
	// Seq is the origin stream's sequence of that event, 0 when unknown.
	Seq    uint64 `json:"seq,omitempty"`
	Synced bool   `json:"synced,omitempty"`
	// Time is when the mirror committed it, At the mirror's own index.
	Time time.Time `json:"time"`
	At   uint64    `json:"at"`
}

func init() {
	schema.Tables[tMirror] = &memdb.TableSchema{Name: tMirror, Indexes: map[string]*memdb.IndexSchema{
		idx: {Name: idx, Unique: true, Indexer: str("Policy")},
	}}
}

func checkMirrorPolicy(name string) error {
	if name == "" || len(name) > maxPolicyName {
		return fmt.Errorf("mirror cursor: policy name %q must be 1-%d characters", name, maxPolicyName)
	}
	return nil
}

func (w writer) mirrorCursor(p events.MirrorCursor) error {
	if err := checkMirrorPolicy(p.Policy); err != nil {
		return refuse(CodeInvalid, "%v", err)
	}
	w.insert(tMirror, &MirrorCursor{Policy: p.Policy, Index: p.Index, Seq: p.Seq, Synced: p.Synced, Time: w.ev.Time.UTC(), At: w.index})
	return nil
}

// MirrorCursor is the committed cursor of policy; ok is false before its
// first one.
func (v *View) MirrorCursor(policy string) (MirrorCursor, bool) {
	if c, ok := v.first(tMirror, policy).(*MirrorCursor); ok {
		return *c, true
	}
	return MirrorCursor{}, false
}

// mirror checks a mirror cursor row of a snapshot.
func (l *loader) mirror(c *MirrorCursor) ([]any, error) {
	if err := checkMirrorPolicy(c.Policy); err != nil {
		return nil, err
	}
	if c.At > l.index {
		return nil, fmt.Errorf("mirror cursor %q committed at index %d, past the snapshot's index %d", c.Policy, c.At, l.index)
	}
	return []any{c.Policy}, nil
}
