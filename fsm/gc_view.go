package fsm

import (
	"fmt"

	"github.com/opencontainers/go-digest"
)

// GCRun returns the open GC run, if any.
func (v *View) GCRun() (GCRun, bool) {
	if r, ok := v.first(tGCRun, gcRunKey).(*GCRun); ok {
		return *r, true
	}
	return GCRun{}, false
}

// GCBlobCandidates lists the open run's blob candidates with their sizes,
// in digest order.
func (v *View) GCBlobCandidates() (ds []digest.Digest, sizes []int64) {
	v.each(tGCBlob, func(o any) bool {
		b := o.(*gcBlobRow)
		ds, sizes = append(ds, b.Digest), append(sizes, b.Size)
		return true
	})
	return ds, sizes
}

// GCManifestCandidates counts the open run's manifest candidates.
func (v *View) GCManifestCandidates() int {
	n := 0
	v.each(tGCManifest, func(any) bool { n++; return true })
	return n
}

// GCHistory lists the finished runs kept, oldest first.
func (v *View) GCHistory() []GCRecord {
	var out []GCRecord
	v.each(tGCHistory, func(o any) bool { out = append(out, *o.(*GCRecord)); return true })
	return out
}

// GCEverRan reports whether this cluster ever opened a GC run: from then
// on uploads stamp BlobLinked.Since (a version-2 event).
func (v *View) GCEverRan() bool {
	_, open := v.GCRun()
	return open || len(v.GCHistory()) > 0
}

func (v *View) each(table string, fn func(any) bool) {
	it, err := v.txn.Get(table, idx)
	if err != nil {
		panic(fmt.Sprintf("fsm: read %s: %v", table, err))
	}
	for o := it.Next(); o != nil; o = it.Next() {
		if !fn(o) {
			return
		}
	}
}

// EachManifest calls fn for every manifest row, repositories in order;
// fn returns false to stop. For GC's mark, which reads the whole state.
func (v *View) EachManifest(fn func(Manifest) bool) {
	v.each(tManifest, func(o any) bool { return fn(*o.(*Manifest)) })
}

// EachBlobLink calls fn for every blob link; fn returns false to stop.
func (v *View) EachBlobLink(fn func(BlobLink) bool) {
	v.each(tBlob, func(o any) bool { return fn(*o.(*BlobLink)) })
}

// EachTag calls fn for every tag of every repository.
func (v *View) EachTag(fn func(repo, tag string, d digest.Digest) bool) {
	v.each(tRepo, func(o any) bool {
		r := o.(*repoRow)
		cont := true
		r.tags.each(func(e tagEntry) bool {
			cont = fn(r.Name, e.Tag, e.Digest)
			return cont
		})
		return cont
	})
}
