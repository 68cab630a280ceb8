package fsm

import (
	"fmt"
	"slices"

	"github.com/hashicorp/go-memdb"
	"github.com/opencontainers/go-digest"

	"github.com/berth-registry/berth/events"
)

// writer applies one event inside one write transaction. Any error aborts
// the transaction, so a refused event leaves no trace.
type writer struct {
	txn *memdb.Txn
	ev  events.Event
}

func (w writer) first(table string, args ...any) any {
	v, err := w.txn.First(table, idx, args...)
	if err != nil {
		panic(fmt.Sprintf("fsm: lookup %s: %v", table, err)) // schema bug
	}
	return v
}

func (w writer) insert(table string, obj any) {
	if err := w.txn.Insert(table, obj); err != nil {
		panic(fmt.Sprintf("fsm: insert %s: %v", table, err))
	}
}

func (w writer) delete(table string, obj any) {
	if err := w.txn.Delete(table, obj); err != nil {
		panic(fmt.Sprintf("fsm: delete %s: %v", table, err))
	}
}

// repo returns a copy of the repository row (zero counters if absent).
// Rows in memdb are immutable once inserted: always copy, then insert.
func (w writer) repo(name string) repoRow {
	if r, ok := w.first(tRepo, name).(*repoRow); ok {
		return *r
	}
	return repoRow{Name: name}
}

// adjust changes a repository's counters and drops it when empty.
func (w writer) adjust(name string, manifests, tags, blobs int) {
	r := w.repo(name)
	r.Manifests += manifests
	r.Tags += tags
	r.Blobs += blobs
	if r.empty() {
		if old := w.first(tRepo, name); old != nil {
			w.delete(tRepo, old)
		}
		return
	}
	w.insert(tRepo, &r)
}

func (w writer) manifestPut(p events.ManifestPut) error {
	var missing []digest.Digest
	for _, b := range p.Blobs {
		if w.first(tBlob, p.Repo, b.String()) == nil {
			missing = append(missing, b)
		}
	}
	for _, m := range p.Manifests {
		if w.first(tManifest, p.Repo, m.String()) == nil {
			missing = append(missing, m)
		}
	}
	if len(missing) > 0 {
		slices.Sort(missing)
		missing = slices.Compact(missing)
		return &Refusal{Code: CodeManifestBlobUnknown, Message: "manifest references blobs or manifests unknown to " + p.Repo, Missing: missing}
	}
	m := &Manifest{
		Repo: p.Repo, Digest: p.Digest, MediaType: p.MediaType, Size: p.Size,
		ArtifactType: p.ArtifactType, Annotations: p.Annotations, Subject: p.Subject,
		Blobs: p.Blobs, Manifests: p.Manifests, Created: w.ev.Time,
	}
	if old, ok := w.first(tManifest, p.Repo, p.Digest.String()).(*Manifest); ok {
		m.Created = old.Created
	} else {
		w.adjust(p.Repo, 1, 0, 0)
	}
	w.insert(tManifest, m)
	if p.Subject != "" {
		w.insert(tReferrer, &referrerRow{Repo: p.Repo, Subject: p.Subject, Digest: p.Digest})
	}
	for _, tag := range p.Tags {
		w.setTag(p.Repo, tag, p.Digest)
	}
	return nil
}

func (w writer) setTag(repo, tag string, d digest.Digest) {
	if w.first(tTag, repo, tag) == nil {
		w.adjust(repo, 0, 1, 0)
	}
	w.insert(tTag, &tagRow{Repo: repo, Tag: tag, Digest: d})
}

func (w writer) manifestDeleted(p events.ManifestDeleted) error {
	m, ok := w.first(tManifest, p.Repo, p.Digest.String()).(*Manifest)
	if !ok {
		return refuse(CodeManifestUnknown, "manifest %s is not in %s", p.Digest, p.Repo)
	}
	w.delete(tManifest, m)
	w.adjust(p.Repo, -1, 0, 0)
	if m.Subject != "" {
		if r := w.first(tReferrer, p.Repo, m.Subject.String(), m.Digest.String()); r != nil {
			w.delete(tReferrer, r)
		}
	}
	// Collect before deleting: deleting while iterating a memdb result
	// invalidates the iterator.
	var tags []*tagRow
	it, err := w.txn.Get(tTag, idx+"_prefix", p.Repo+"\x00")
	if err != nil {
		panic(err)
	}
	for o := it.Next(); o != nil; o = it.Next() {
		if t := o.(*tagRow); t.Digest == p.Digest {
			tags = append(tags, t)
		}
	}
	for _, t := range tags {
		w.delete(tTag, t)
	}
	if len(tags) > 0 {
		w.adjust(p.Repo, 0, -len(tags), 0)
	}
	return nil
}

func (w writer) tagSet(p events.TagSet) error {
	if w.first(tManifest, p.Repo, p.Digest.String()) == nil {
		return refuse(CodeManifestUnknown, "manifest %s is not in %s", p.Digest, p.Repo)
	}
	w.setTag(p.Repo, p.Tag, p.Digest)
	return nil
}

func (w writer) tagDeleted(p events.TagDeleted) error {
	t := w.first(tTag, p.Repo, p.Tag)
	if t == nil {
		return refuse(CodeTagUnknown, "tag %s is not in %s", p.Tag, p.Repo)
	}
	w.delete(tTag, t)
	w.adjust(p.Repo, 0, -1, 0)
	return nil
}

func (w writer) blobLinked(p events.BlobLinked) error {
	if w.first(tBlob, p.Repo, p.Digest.String()) == nil {
		w.adjust(p.Repo, 0, 0, 1)
		w.insert(tBlob, &BlobLink{Repo: p.Repo, Digest: p.Digest, Size: p.Size, Linked: w.ev.Time})
	}
	return nil
}

func (w writer) blobUnlinked(p events.BlobUnlinked) error {
	b := w.first(tBlob, p.Repo, p.Digest.String())
	if b == nil {
		return refuse(CodeBlobUnknown, "blob %s is not in %s", p.Digest, p.Repo)
	}
	w.delete(tBlob, b)
	w.adjust(p.Repo, 0, 0, -1)
	return nil
}

func (w writer) repositoryDeleted(p events.RepositoryDeleted) error {
	r := w.first(tRepo, p.Repo)
	if r == nil {
		return refuse(CodeNameUnknown, "repository %s does not exist", p.Repo)
	}
	for _, table := range []string{tManifest, tTag, tBlob, tReferrer} {
		if _, err := w.txn.DeletePrefix(table, idx+"_prefix", p.Repo+"\x00"); err != nil {
			panic(fmt.Sprintf("fsm: delete %s of %s: %v", table, p.Repo, err))
		}
	}
	w.delete(tRepo, r)
	return nil
}
