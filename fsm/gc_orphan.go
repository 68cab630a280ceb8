package fsm

import (
	"fmt"
	"time"

	"github.com/hashicorp/go-memdb"
	"github.com/opencontainers/go-digest"

	"github.com/berth-registry/berth/events"
)

// Orphans are digests whose bytes may be left in the store with no link
// or manifest row naming them: a deleted manifest, an unlinked blob, a
// deleted repository's blobs and manifests. The mark finds garbage only
// through the state, so without these rows such bytes would never be
// collected. A later link or manifest put of the digest drops its row, and
// so does the sweep that deletes it. A registry that never deletes keeps
// its snapshots' bytes. (An older binary keeps no such rows: during a
// rolling upgrade its snapshots may lack some, which costs only bytes left
// in the store, never a wrong delete: the candidates GC deletes travel in
// its own events.)
const tGCOrphan = "gcorphan"

type gcOrphanRow struct {
	Digest digest.Digest
	Size   int64
	Time   time.Time
}

func init() {
	schema.Tables[tGCOrphan] = &memdb.TableSchema{Name: tGCOrphan, Indexes: map[string]*memdb.IndexSchema{
		idx: {Name: idx, Unique: true, Indexer: str("Digest")},
	}}
}

// gcOrphansOf lists, before the event is applied, the digests (and sizes)
// whose row in a repository the event removes.
func (w writer) gcOrphansOf(p events.Payload) []gcOrphanRow {
	var out []gcOrphanRow
	switch p := p.(type) {
	case events.ManifestDeleted:
		if m, ok := w.first(tManifest, p.Repo, p.Digest.String()).(*Manifest); ok {
			out = append(out, gcOrphanRow{Digest: m.Digest, Size: m.Size})
		}
	case events.BlobUnlinked:
		if b, ok := w.first(tBlob, p.Repo, p.Digest.String()).(*BlobLink); ok {
			out = append(out, gcOrphanRow{Digest: b.Digest, Size: b.Size})
		}
	case events.RepositoryDeleted:
		for _, table := range []string{tManifest, tBlob} {
			it, err := w.txn.Get(table, idx+"_prefix", p.Repo+"\x00")
			if err != nil {
				panic(fmt.Sprintf("fsm: read %s of %s: %v", table, p.Repo, err))
			}
			for o := it.Next(); o != nil; o = it.Next() {
				switch r := o.(type) {
				case *Manifest:
					out = append(out, gcOrphanRow{Digest: r.Digest, Size: r.Size})
				case *BlobLink:
					out = append(out, gcOrphanRow{Digest: r.Digest, Size: r.Size})
				}
			}
		}
	}
	return out
}

// gcRecordOrphans runs after an accepted event: it notes what the event
// left unreferenced, and forgets a digest a link or manifest put names.
func (w writer) gcRecordOrphans(p events.Payload, orphans []gcOrphanRow) {
	var named digest.Digest
	switch p := p.(type) {
	case events.BlobLinked:
		named = p.Digest
	case events.ManifestPut:
		named = p.Digest
	}
	if named != "" {
		if o := w.first(tGCOrphan, named.String()); o != nil {
			w.delete(tGCOrphan, o)
		}
		return
	}
	if len(orphans) == 0 {
		return
	}
	for _, o := range orphans {
		o.Time = w.ev.Time
		w.insert(tGCOrphan, &o)
	}
}

// bytesOrphaned notes bytes of a refused write as an orphan, unless a
// link or a manifest holds the digest (then they are not garbage).
func (w writer) bytesOrphaned(p events.BytesOrphaned) error {
	if err := checkDigest("orphaned bytes", p.Digest); err != nil {
		return refuse(CodeInvalid, "%v", err)
	}
	if p.Size < 0 {
		return refuse(CodeInvalid, "orphaned bytes %s: negative size %d", p.Digest, p.Size)
	}
	// A link holds it, or a stored manifest reaches it (its own bytes
	// or a blob it lists: the registry-wide usage rows, accounting.go).
	for _, table := range []string{tBlob, tRegUsage} {
		if o, err := w.txn.First(table, idxDigest, p.Digest.String()); err == nil && o != nil {
			return nil
		}
	}
	w.insert(tGCOrphan, &gcOrphanRow{Digest: p.Digest, Size: p.Size, Time: w.ev.Time})
	return nil
}

// EachGCOrphan calls fn for every orphaned digest, in digest order, with
// the event time at which it was orphaned.
func (v *View) EachGCOrphan(fn func(d digest.Digest, size int64, since time.Time) bool) {
	v.each(tGCOrphan, func(o any) bool {
		r := o.(*gcOrphanRow)
		return fn(r.Digest, r.Size, r.Time)
	})
}
