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
	txn   *memdb.Txn
	ev    events.Event
	index uint64 // the entry's log index
	// quota collects the namespaces whose usage or quota the event
	// changes (quota.go); nil while a snapshot is loaded.
	quota *quotaChanges
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
func (w writer) adjust(name string, manifests, blobs int) {
	r := w.repo(name)
	r.Manifests += manifests
	r.Blobs += blobs
	w.save(r)
}

// save stores a changed copy of a repository row, or drops the row once
// the repository is empty. Tags is derived from the tag index, so the two
// never disagree.
func (w writer) save(r repoRow) {
	if r.tags.len() == 0 {
		r.tags = nil // a repository without tags holds no index
	}
	r.Tags = r.tags.len()
	if r.empty() {
		if old := w.first(tRepo, r.Name); old != nil {
			w.delete(tRepo, old)
		}
		return
	}
	w.insert(tRepo, &r)
}

// changeTags runs change on a private copy of a repository's tag index and
// stores the copy in a new repo row. The committed index is never written:
// a View opened before this event keeps reading it unchanged. Each event
// changes a repository's tags in one call, so it copies the changed path of
// the B-tree once, not once per tag.
func (w writer) changeTags(name string, change func(*tagIndex)) {
	r := w.repo(name)
	if r.tags == nil {
		r.tags = newTagIndex()
	} else {
		r.tags = r.tags.clone()
	}
	change(r.tags)
	w.save(r)
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
	if err := w.checkTagMoves(p.Repo, p.Tags, p.Digest); err != nil {
		return err
	}
	before := w.usageOf(NamespaceOf(p.Repo))
	m := &Manifest{
		Repo: p.Repo, Digest: p.Digest, MediaType: p.MediaType, Size: p.Size,
		ArtifactType: p.ArtifactType, Annotations: p.Annotations, Subject: p.Subject,
		Blobs: p.Blobs, Manifests: p.Manifests, Created: w.ev.Time,
	}
	if old, ok := w.first(tManifest, p.Repo, p.Digest.String()).(*Manifest); ok {
		m.Created = old.Created
		w.manifestUsage(old, -1)
	} else {
		w.adjust(p.Repo, 1, 0)
	}
	w.insert(tManifest, m)
	w.manifestUsage(m, 1)
	if err := w.checkQuota(p.Repo, before); err != nil {
		return err
	}
	if p.Subject != "" {
		w.insert(tReferrer, &referrerRow{Repo: p.Repo, Subject: p.Subject, Digest: p.Digest})
	}
	if len(p.Tags) > 0 {
		// The tags share the manifest row's digest string.
		w.changeTags(p.Repo, func(t *tagIndex) {
			for _, tag := range p.Tags {
				t.set(tag, m.Digest)
			}
		})
	}
	return nil
}

func (w writer) manifestDeleted(p events.ManifestDeleted) error {
	m, ok := w.first(tManifest, p.Repo, p.Digest.String()).(*Manifest)
	if !ok {
		return refuse(CodeManifestUnknown, "manifest %s is not in %s", p.Digest, p.Repo)
	}
	if err := w.checkTagRemovals(p.Repo, w.repo(p.Repo).tags.tagsOf(p.Digest), "deleted with manifest "+p.Digest.String()); err != nil {
		return err
	}
	w.delete(tManifest, m)
	w.forgetPulls(p.Repo, p.Digest)
	w.adjust(p.Repo, -1, 0)
	w.manifestUsage(m, -1)
	if m.Subject != "" {
		if r := w.first(tReferrer, p.Repo, m.Subject.String(), m.Digest.String()); r != nil {
			w.delete(tReferrer, r)
		}
	}
	// The reverse index, not a scan: Apply is serial, and a repository may
	// hold a million tags.
	if gone := w.repo(p.Repo).tags.tagsOf(p.Digest); len(gone) > 0 {
		w.changeTags(p.Repo, func(t *tagIndex) {
			for _, tag := range gone {
				t.delete(tag)
			}
		})
	}
	return nil
}

func (w writer) tagSet(p events.TagSet) error {
	m, ok := w.first(tManifest, p.Repo, p.Digest.String()).(*Manifest)
	if !ok {
		return refuse(CodeManifestUnknown, "manifest %s is not in %s", p.Digest, p.Repo)
	}
	if err := w.checkTagMoves(p.Repo, []string{p.Tag}, m.Digest); err != nil {
		return err
	}
	// m.Digest, not p.Digest: the tag then shares the manifest row's string.
	w.changeTags(p.Repo, func(t *tagIndex) { t.set(p.Tag, m.Digest) })
	return nil
}

func (w writer) tagDeleted(p events.TagDeleted) error {
	if _, ok := w.repo(p.Repo).tags.get(p.Tag); !ok {
		return refuse(CodeTagUnknown, "tag %s is not in %s", p.Tag, p.Repo)
	}
	if err := w.checkTagRemovals(p.Repo, []string{p.Tag}, "deleted"); err != nil {
		return err
	}
	w.changeTags(p.Repo, func(t *tagIndex) { t.delete(p.Tag) })
	return nil
}

func (w writer) blobLinked(p events.BlobLinked) error {
	if w.first(tBlob, p.Repo, p.Digest.String()) == nil {
		w.adjust(p.Repo, 0, 1)
		w.insert(tBlob, &BlobLink{Repo: p.Repo, Digest: p.Digest, Size: p.Size, Linked: w.ev.Time})
		w.usageResize(p.Digest)
	}
	return nil
}

func (w writer) blobUnlinked(p events.BlobUnlinked) error {
	b := w.first(tBlob, p.Repo, p.Digest.String())
	if b == nil {
		return refuse(CodeBlobUnknown, "blob %s is not in %s", p.Digest, p.Repo)
	}
	w.delete(tBlob, b)
	w.adjust(p.Repo, 0, -1)
	w.usageResize(p.Digest)
	return nil
}

func (w writer) repositoryDeleted(p events.RepositoryDeleted) error {
	r := w.first(tRepo, p.Repo)
	if r == nil {
		return refuse(CodeNameUnknown, "repository %s does not exist", p.Repo)
	}
	if rules := w.immutabilityRules(); len(rules) > 0 {
		var protected error
		w.repo(p.Repo).tags.each(func(e tagEntry) bool {
			if rule, ok := rules.protecting(p.Repo, e.Tag); ok {
				protected = immutable(rule, p.Repo, e.Tag, "deleted with its repository")
			}
			return protected == nil
		})
		if protected != nil {
			return protected
		}
	}
	// Its manifests leave the namespace's usage; the links' digests are
	// resized once the links are gone (quota.go).
	var linked []digest.Digest
	for _, table := range []string{tManifest, tBlob} {
		it, err := w.txn.Get(table, idx+"_prefix", p.Repo+"\x00")
		if err != nil {
			panic(fmt.Sprintf("fsm: read %s of %s: %v", table, p.Repo, err))
		}
		var ms []*Manifest
		for o := it.Next(); o != nil; o = it.Next() {
			switch r := o.(type) {
			case *Manifest:
				ms = append(ms, r)
			case *BlobLink:
				linked = append(linked, r.Digest)
			}
		}
		for _, m := range ms {
			w.manifestUsage(m, -1)
		}
	}
	// The repository's tags go with its row.
	for _, table := range []string{tManifest, tBlob, tReferrer, tPullTime} {
		if _, err := w.txn.DeletePrefix(table, idx+"_prefix", p.Repo+"\x00"); err != nil {
			panic(fmt.Sprintf("fsm: delete %s of %s: %v", table, p.Repo, err))
		}
	}
	w.delete(tRepo, r)
	for _, d := range linked {
		w.usageResize(d)
	}
	return nil
}
