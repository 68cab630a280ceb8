package fsm

import (
	"fmt"
	"time"

	"github.com/hashicorp/go-memdb"
	"github.com/opencontainers/go-digest"

	"github.com/berth-registry/berth/events"
)

// Garbage collection's share of the state (ARCHITECTURE.md rule 10; the
// race-freedom argument is in docs/design.md, "Garbage collection").
//
// While a run is open (GCStarted until GCSwept or GCCancelled) Apply notes,
// in tGCTouched, every (repository, digest) a link, manifest put or tag
// references. GCSweepStarted first takes every touched digest, and all it
// reaches through manifest rows (blobs, index children, referrers), out of
// the candidate set, then removes the remaining candidates' links and
// manifest rows and freezes the set: until GCSwept, a link or manifest put
// of a frozen digest is refused. GCSwept turns each swept digest into a
// tombstone, which refuses a BlobLinked whose bytes were written before the
// sweep ended (BlobLinked.Since), so a link is never accepted for bytes the
// sweep may have deleted.
//
// Every table is empty until the first run, so snapshots of a cluster that
// never collected garbage keep their bytes.
const (
	tGCRun       = "gcrun"
	tGCBlob      = "gcblob"
	tGCManifest  = "gcmanifest"
	tGCTouched   = "gctouched"
	tGCTombstone = "gctomb"
	tGCHistory   = "gchistory"
	gcRunKey     = "gc"
	// gcHistoryKeep bounds the finished runs kept for `clusterctl gc status`.
	gcHistoryKeep = 20

	GCPhaseMarking  = "marking"
	GCPhaseSweeping = "sweeping"
)

// CodeBlobSweeping refuses a link or manifest put of a digest GC is
// deleting, or deleted after the proposer wrote its bytes: upload it again.
const CodeBlobSweeping Code = "BLOB_SWEEPING"

// GCRun is the open GC run.
type GCRun struct {
	Key            string
	Run            string
	Phase          string
	DeleteUntagged bool `json:",omitempty"`
	GraceSeconds   int64
	Started        time.Time
	StartIndex     uint64
	SweepIndex     uint64 `json:",omitempty"`
	Blobs          int    // candidates marked so far
	Manifests      int
	// Bytes is the size of the blob candidates left at sweep start.
	Bytes int64 `json:",omitempty"`
}

// GCRecord is a finished run, for status.
type GCRecord struct {
	Key        string // StartIndex, zero-padded: rows sort by start
	Run        string
	Started    time.Time
	Finished   time.Time
	StartIndex uint64
	Candidates int
	Manifests  int
	Deleted    int
	Bytes      int64
	Outcome    string // swept or cancelled
	Reason     string `json:",omitempty"`
}

type gcBlobRow struct {
	Digest digest.Digest
	Size   int64
}

type gcManifestRow struct {
	Repo   string
	Digest digest.Digest
}

type gcTouchedRow struct {
	Repo   string
	Digest digest.Digest
}

// gcTombRow says digest's bytes were deleted by the sweep that ended at
// Index (the GCSwept entry), at event time Time.
type gcTombRow struct {
	Digest digest.Digest
	Index  uint64
	Time   time.Time
}

func init() {
	one := func(name string, ix memdb.Indexer) *memdb.TableSchema {
		return &memdb.TableSchema{Name: name, Indexes: map[string]*memdb.IndexSchema{idx: {Name: idx, Unique: true, Indexer: ix}}}
	}
	schema.Tables[tGCRun] = one(tGCRun, str("Key"))
	schema.Tables[tGCBlob] = one(tGCBlob, str("Digest"))
	schema.Tables[tGCManifest] = one(tGCManifest, compound("Repo", "Digest"))
	schema.Tables[tGCTouched] = one(tGCTouched, compound("Repo", "Digest"))
	schema.Tables[tGCTombstone] = one(tGCTombstone, str("Digest"))
	schema.Tables[tGCHistory] = one(tGCHistory, str("Key"))
}

func (w writer) gcRun() (GCRun, bool) {
	if r, ok := w.first(tGCRun, gcRunKey).(*GCRun); ok {
		return *r, true
	}
	return GCRun{}, false
}

func (w writer) all(table string) []any {
	it, err := w.txn.Get(table, idx)
	if err != nil {
		panic(fmt.Sprintf("fsm: read %s: %v", table, err))
	}
	var out []any
	for o := it.Next(); o != nil; o = it.Next() {
		out = append(out, o)
	}
	return out
}

// gcRefs lists what an event references, for the open GC run.
func gcRefs(p events.Payload) []gcTouchedRow {
	switch p := p.(type) {
	case events.BlobLinked:
		return []gcTouchedRow{{p.Repo, p.Digest}}
	case events.TagSet:
		return []gcTouchedRow{{p.Repo, p.Digest}}
	case events.ManifestPut:
		refs := []gcTouchedRow{{p.Repo, p.Digest}}
		for _, list := range [][]digest.Digest{p.Blobs, p.Manifests} {
			for _, d := range list {
				refs = append(refs, gcTouchedRow{p.Repo, d})
			}
		}
		if p.Subject != "" {
			refs = append(refs, gcTouchedRow{p.Repo, p.Subject})
		}
		return refs
	}
	return nil
}

// gcGuard runs before an event's own handler: it refuses an event that
// references a digest being swept (or swept after the proposer wrote the
// bytes), and notes the references of an event during marking.
func (w writer) gcGuard(p events.Payload) error {
	if l, ok := p.(events.BlobLinked); ok {
		if t, ok := w.first(tGCTombstone, l.Digest.String()).(*gcTombRow); ok && t.Index > l.Since {
			return refuse(CodeBlobSweeping, "blob %s was deleted by garbage collection (at index %d) after this upload began; upload it again", l.Digest, t.Index)
		}
	}
	run, ok := w.gcRun()
	if !ok {
		return nil
	}
	refs := gcRefs(p)
	if run.Phase == GCPhaseSweeping {
		var frozen []digest.Digest
		switch p := p.(type) {
		case events.BlobLinked:
			if w.first(tGCBlob, p.Digest.String()) != nil {
				frozen = append(frozen, p.Digest)
			}
		case events.ManifestPut:
			for _, d := range append([]digest.Digest{p.Digest}, p.Blobs...) {
				if w.first(tGCBlob, d.String()) != nil {
					frozen = append(frozen, d)
				}
			}
		}
		if len(frozen) > 0 {
			return &Refusal{Code: CodeBlobSweeping, Message: "garbage collection is deleting these digests; upload them again", Missing: frozen}
		}
		return nil
	}
	for _, r := range refs {
		w.insert(tGCTouched, &gcTouchedRow{Repo: r.Repo, Digest: r.Digest})
	}
	return nil
}

func (w writer) gcStarted(p events.GCStarted) error {
	if run, ok := w.gcRun(); ok {
		return refuse(CodeInvalid, "GC run %s is still open (%s)", run.Run, run.Phase)
	}
	if p.Run == "" || p.GraceSeconds < 0 {
		return refuse(CodeInvalid, "GC run needs a name and a grace period >= 0")
	}
	// Tombstones older than the grace period can refuse nothing more: no
	// upload that began before their sweep is still open.
	cutoff := w.ev.Time.Add(-time.Duration(p.GraceSeconds) * time.Second)
	for _, o := range w.all(tGCTombstone) {
		if o.(*gcTombRow).Time.Before(cutoff) {
			w.delete(tGCTombstone, o)
		}
	}
	w.insert(tGCRun, &GCRun{Key: gcRunKey, Run: p.Run, Phase: GCPhaseMarking, DeleteUntagged: p.DeleteUntagged,
		GraceSeconds: p.GraceSeconds, Started: w.ev.Time, StartIndex: w.index})
	return nil
}

func (w writer) openRun(name, phase string) (GCRun, error) {
	run, ok := w.gcRun()
	if !ok || run.Run != name {
		return run, refuse(CodeInvalid, "GC run %s is not open", name)
	}
	if phase != "" && run.Phase != phase {
		return run, refuse(CodeInvalid, "GC run %s is %s, not %s", name, run.Phase, phase)
	}
	return run, nil
}

func (w writer) gcMarked(p events.GCMarked) error {
	run, err := w.openRun(p.Run, GCPhaseMarking)
	if err != nil {
		return err
	}
	if len(p.Blobs)+len(p.Manifests) > events.MaxGCChunk {
		return refuse(CodeInvalid, "GCMarked holds %d digests, more than %d", len(p.Blobs)+len(p.Manifests), events.MaxGCChunk)
	}
	for _, d := range p.Blobs {
		if w.first(tGCBlob, d.String()) == nil {
			w.insert(tGCBlob, &gcBlobRow{Digest: d, Size: w.sizeOf(d)})
			run.Blobs++
		}
	}
	for _, m := range p.Manifests {
		if w.first(tGCManifest, m.Repo, m.Digest.String()) == nil {
			w.insert(tGCManifest, &gcManifestRow{Repo: m.Repo, Digest: m.Digest})
			run.Manifests++
		}
		// The mark lists a manifest's bytes among the blobs (in this or an
		// earlier chunk); a manifest has no link to take the size from.
		b, ok := w.first(tGCBlob, m.Digest.String()).(*gcBlobRow)
		mf, found := w.first(tManifest, m.Repo, m.Digest.String()).(*Manifest)
		if ok && found && b.Size == 0 {
			w.insert(tGCBlob, &gcBlobRow{Digest: b.Digest, Size: mf.Size})
		}
	}
	w.insert(tGCRun, &run)
	return nil
}

// sizeOf is a digest's size from any link or orphan row (0 if none). A
// manifest candidate's size comes with its row (gcMarked): a run once
// reported the bytes of manifests and orphans as 0 reclaimed.
func (w writer) sizeOf(d digest.Digest) int64 {
	if o, err := w.txn.First(tBlob, idxDigest, d.String()); err == nil && o != nil {
		return o.(*BlobLink).Size
	}
	if o, ok := w.first(tGCOrphan, d.String()).(*gcOrphanRow); ok {
		return o.Size
	}
	return 0
}

// keep takes (repo, d) and everything it reaches out of the candidates.
func (w writer) keep(repo string, d digest.Digest, seen map[gcTouchedRow]bool) {
	k := gcTouchedRow{repo, d}
	if seen[k] {
		return
	}
	seen[k] = true
	if o := w.first(tGCBlob, d.String()); o != nil {
		w.delete(tGCBlob, o)
	}
	if o := w.first(tGCManifest, repo, d.String()); o != nil {
		w.delete(tGCManifest, o)
	}
	m, ok := w.first(tManifest, repo, d.String()).(*Manifest)
	if !ok {
		return
	}
	for _, b := range m.Blobs {
		w.keep(repo, b, seen)
	}
	for _, c := range m.Manifests {
		w.keep(repo, c, seen)
	}
	it, err := w.txn.Get(tReferrer, idx+"_prefix", repo, d.String())
	if err != nil {
		panic(fmt.Sprintf("fsm: read referrers: %v", err))
	}
	var refs []digest.Digest
	for o := it.Next(); o != nil; o = it.Next() {
		if r := o.(*referrerRow); r.Repo == repo && r.Subject == d {
			refs = append(refs, r.Digest)
		}
	}
	for _, r := range refs {
		w.keep(repo, r, seen)
	}
}

func (w writer) gcSweepStarted(p events.GCSweepStarted) error {
	run, err := w.openRun(p.Run, GCPhaseMarking)
	if err != nil {
		return err
	}
	seen := map[gcTouchedRow]bool{}
	for _, o := range w.all(tGCTouched) {
		t := o.(*gcTouchedRow)
		w.keep(t.Repo, t.Digest, seen)
		w.delete(tGCTouched, o)
	}
	run.Blobs, run.Manifests, run.Bytes = 0, 0, 0
	for _, o := range w.all(tGCManifest) {
		m := o.(*gcManifestRow)
		run.Manifests++
		w.delete(tGCManifest, o)
		if _, ok := w.first(tManifest, m.Repo, m.Digest.String()).(*Manifest); ok {
			if err := w.manifestDeleted(events.ManifestDeleted{Repo: m.Repo, Digest: m.Digest}); err != nil {
				return err
			}
		}
	}
	for _, o := range w.all(tGCBlob) {
		b := o.(*gcBlobRow)
		run.Blobs++
		run.Bytes += b.Size
		if orphan := w.first(tGCOrphan, b.Digest.String()); orphan != nil {
			w.delete(tGCOrphan, orphan)
		}
		it, err := w.txn.Get(tBlob, idxDigest, b.Digest.String())
		if err != nil {
			panic(fmt.Sprintf("fsm: read links: %v", err))
		}
		var links []*BlobLink
		for l := it.Next(); l != nil; l = it.Next() {
			links = append(links, l.(*BlobLink))
		}
		for _, l := range links {
			w.delete(tBlob, l)
			w.adjust(l.Repo, 0, -1)
		}
		w.usageResize(b.Digest)
	}
	run.Phase, run.SweepIndex = GCPhaseSweeping, w.index
	w.insert(tGCRun, &run)
	return nil
}

func (w writer) gcSwept(p events.GCSwept) error {
	run, err := w.openRun(p.Run, GCPhaseSweeping)
	if err != nil {
		return err
	}
	for _, o := range w.all(tGCBlob) {
		w.insert(tGCTombstone, &gcTombRow{Digest: o.(*gcBlobRow).Digest, Index: w.index, Time: w.ev.Time})
		w.delete(tGCBlob, o)
	}
	w.finishRun(run, GCRecord{Deleted: p.Deleted, Bytes: p.Bytes, Outcome: "swept"})
	return nil
}

func (w writer) gcCancelled(p events.GCCancelled) error {
	run, err := w.openRun(p.Run, GCPhaseMarking)
	if err != nil {
		return err
	}
	for _, table := range []string{tGCBlob, tGCManifest, tGCTouched} {
		for _, o := range w.all(table) {
			w.delete(table, o)
		}
	}
	w.finishRun(run, GCRecord{Outcome: "cancelled", Reason: p.Reason})
	return nil
}

// finishRun closes the run and keeps a bounded record of it.
func (w writer) finishRun(run GCRun, rec GCRecord) {
	w.delete(tGCRun, w.first(tGCRun, gcRunKey))
	rec.Key = gcRecordKey(run.StartIndex)
	rec.Run, rec.Started, rec.Finished, rec.StartIndex = run.Run, run.Started, w.ev.Time, run.StartIndex
	rec.Candidates, rec.Manifests = run.Blobs, run.Manifests
	w.insert(tGCHistory, &rec)
	if old := w.all(tGCHistory); len(old) > gcHistoryKeep {
		for _, o := range old[:len(old)-gcHistoryKeep] {
			w.delete(tGCHistory, o)
		}
	}
}

func gcRecordKey(index uint64) string { return fmt.Sprintf("%020d", index) }
