package fsm

import (
	"fmt"

	"github.com/hashicorp/go-memdb"

	"github.com/berth-registry/berth/events"
)

// tAuthEpoch holds one row: the index of the last entry that changed a
// Namespace, User or Robot. The OCI API's gate caches its decisions under
// it, so a cached decision is used only while no membership, account or
// robot changed since: revocation stays immediate, and the common request
// costs a map lookup instead of decoding documents.
const tAuthEpoch = "authepoch"

const authEpochKey = "auth"

type authEpochRow struct {
	Key   string
	Index uint64
}

func init() {
	schema.Tables[tAuthEpoch] = &memdb.TableSchema{Name: tAuthEpoch, Indexes: map[string]*memdb.IndexSchema{
		idx: {Name: idx, Unique: true, Indexer: str("Key")},
	}}
}

func authKind(kind string) bool {
	return kind == KindNamespace || kind == "User" || kind == "Robot"
}

// noteAuthChange moves the epoch when an accepted event touched an
// authorization kind.
func (w writer) noteAuthChange(p events.Payload) {
	touched := false
	switch p := p.(type) {
	case events.ResourceApplied:
		touched = authKind(p.Kind)
	case events.ResourceDeleted:
		touched = authKind(p.Kind)
	case events.ResourcesApplied:
		for _, r := range p.Resources {
			touched = touched || authKind(r.Kind)
		}
	}
	if touched {
		w.insert(tAuthEpoch, &authEpochRow{Key: authEpochKey, Index: w.index})
	}
}

func (l *loader) authEpoch(r *authEpochRow) ([]any, error) {
	if r.Key != authEpochKey || r.Index > l.index {
		return nil, fmt.Errorf("auth epoch row %q at %d (snapshot index %d)", r.Key, r.Index, l.index)
	}
	return []any{r.Key}, nil
}

// AuthEpoch is the index of the last change to a Namespace, User or
// Robot (0 if none ever changed).
func (v *View) AuthEpoch() uint64 {
	if r, ok := v.first(tAuthEpoch, authEpochKey).(*authEpochRow); ok {
		return r.Index
	}
	return 0
}
