package fsm

import (
	"fmt"
	"sort"
	"time"

	"github.com/hashicorp/go-memdb"

	"github.com/opencontainers/go-digest"
)

// Manifest is the metadata the FSM keeps for a manifest; its bytes live in the
// blob store under Digest.
type Manifest struct {
	Repo         string
	Digest       digest.Digest
	MediaType    string
	Size         int64
	ArtifactType string
	Annotations  map[string]string
	Subject      digest.Digest
	Blobs        []digest.Digest
	Manifests    []digest.Digest
	Created      time.Time
}

// BlobLink records that a blob is visible in a repository (rule 5).
type BlobLink struct {
	Repo   string
	Digest digest.Digest
	Size   int64
	Linked time.Time
}

// Resource is a declarative resource as stored: Document is the normalized
// JSON with metadata.generation filled in.
type Resource struct {
	Kind       string
	Name       string
	Generation int64
	Document   []byte
	Created    time.Time
	Updated    time.Time
	// Actor is who applied this generation (the event's Origin), for
	// `clusterctl history`. Empty for generations applied before every
	// voter ran a binary that records it (writer.recordsActors).
	Actor string `json:",omitempty"`
}

// View is a consistent point-in-time read of the state (a go-memdb read
// transaction): a handler that makes several queries sees one state.
type View struct {
	txn   *memdb.Txn
	index uint64
}

// Index is the applied index the view reflects at least.
func (v *View) Index() uint64 { return v.index }

func (v *View) first(table string, args ...any) any {
	o, err := v.txn.First(table, idx, args...)
	if err != nil {
		panic(fmt.Sprintf("fsm: read %s: %v", table, err)) // schema bug
	}
	return o
}

// RepositoryExists reports whether the repository holds anything.
func (v *View) RepositoryExists(repo string) bool { return v.first(tRepo, repo) != nil }

// Repositories lists repository names after last in lexical order; n < 0
// means no limit. more reports whether names remain after the page.
func (v *View) Repositories(last string, n int) (names []string, more bool) {
	it, err := v.txn.LowerBound(tRepo, idx, last)
	if err != nil {
		panic(err)
	}
	for o := it.Next(); o != nil; o = it.Next() {
		name := o.(*repoRow).Name
		if name == last {
			continue
		}
		if n >= 0 && len(names) == n {
			return names, true
		}
		names = append(names, name)
	}
	return names, false
}

// tags returns a repository's tag index (nil if it has no tags). The index
// belongs to the row this view's transaction sees, so it never changes.
func (v *View) tags(repo string) *tagIndex {
	if r, ok := v.first(tRepo, repo).(*repoRow); ok {
		return r.tags
	}
	return nil
}

// Tags lists a repository's tags after last in lexical order; n < 0 means
// no limit. more reports whether tags remain after the page.
func (v *View) Tags(repo, last string, n int) (tags []string, more bool) {
	v.tags(repo).ascend(last, func(e tagEntry) bool {
		if e.Tag == last {
			return true
		}
		if n >= 0 && len(tags) == n {
			more = true
			return false
		}
		tags = append(tags, e.Tag)
		return true
	})
	return tags, more
}

// Tag resolves a tag to a manifest digest.
func (v *View) Tag(repo, tag string) (digest.Digest, bool) {
	return v.tags(repo).get(tag)
}

// TagsFor lists the tags pointing at a manifest, sorted, from the tag
// index's reverse index (O(k + log n)).
func (v *View) TagsFor(repo string, d digest.Digest) []string {
	return v.tags(repo).tagsOf(d)
}

// Manifest returns a manifest's metadata.
func (v *View) Manifest(repo string, d digest.Digest) (Manifest, bool) {
	if m, ok := v.first(tManifest, repo, d.String()).(*Manifest); ok {
		return *m, true
	}
	return Manifest{}, false
}

// BlobLink reports whether a blob is visible in a repository.
func (v *View) BlobLink(repo string, d digest.Digest) (BlobLink, bool) {
	if b, ok := v.first(tBlob, repo, d.String()).(*BlobLink); ok {
		return *b, true
	}
	return BlobLink{}, false
}

// FindBlobLink returns some repository's link to d, for a cross-repository
// mount without a `from`.
func (v *View) FindBlobLink(d digest.Digest) (BlobLink, bool) {
	o, err := v.txn.First(tBlob, idxDigest, d.String())
	if err != nil {
		panic(err)
	}
	if b, ok := o.(*BlobLink); ok {
		return *b, true
	}
	return BlobLink{}, false
}

// ReferrersQuery selects one page of a subject's referrers.
type ReferrersQuery struct {
	// After is the last digest of the previous page ("" for the first).
	After digest.Digest
	// Limit caps the manifests returned; it must be positive.
	Limit int
	// ArtifactType, if set, keeps only manifests of that artifact type.
	ArtifactType string
}

// referrersScanFactor bounds the rows one page may look at to this many
// times its Limit, so a filter that matches little cannot turn one request
// into a walk over every referrer of a subject; such a page comes back
// short, with a cursor to go on.
const referrersScanFactor = 4

// Referrers lists, in digest order, the manifests in repo whose subject is
// subject, one page at a time. next is the cursor for the following page
// (the last digest looked at), "" when there is nothing after this page.
func (v *View) Referrers(repo string, subject digest.Digest, q ReferrersQuery) (out []Manifest, next digest.Digest) {
	limit := max(q.Limit, 1)
	it, err := v.txn.LowerBound(tReferrer, idx, repo, subject.String(), q.After.String())
	if err != nil {
		panic(err)
	}
	scanned := 0
	for o := it.Next(); o != nil; o = it.Next() {
		r := o.(*referrerRow)
		if r.Repo != repo || r.Subject != subject {
			break
		}
		if r.Digest == q.After {
			continue
		}
		if len(out) == limit || scanned == limit*referrersScanFactor {
			return out, next
		}
		scanned++
		next = r.Digest
		m, ok := v.Manifest(repo, r.Digest)
		if ok && (q.ArtifactType == "" || m.ArtifactType == q.ArtifactType) {
			out = append(out, m)
		}
	}
	return out, ""
}

// Resource returns one declarative resource.
func (v *View) Resource(kind, name string) (Resource, bool) {
	if r, ok := v.first(tResource, kind, name).(*Resource); ok {
		return *r, true
	}
	return Resource{}, false
}

// Resources lists the resources of a kind, sorted by name.
func (v *View) Resources(kind string) []Resource {
	it, err := v.txn.Get(tResource, idx+"_prefix", kind+"\x00")
	if err != nil {
		panic(err)
	}
	var out []Resource
	for o := it.Next(); o != nil; o = it.Next() {
		out = append(out, *o.(*Resource))
	}
	return out
}

// Deletion is when and by whom a resource was deleted; its last
// generation is the last of ResourceHistory.
type Deletion struct {
	Time  time.Time
	Actor string
}

// ResourceDeletion reports how a resource that no longer exists was
// deleted, if its history was kept (see writer.resourceDeleted).
func (v *View) ResourceDeletion(kind, name string) (Deletion, bool) {
	if _, ok := v.Resource(kind, name); ok {
		return Deletion{}, false
	}
	it, err := v.txn.Get(tHistory, idx+"_prefix", kind, name)
	if err != nil {
		panic(err)
	}
	for o := it.Next(); o != nil; o = it.Next() {
		if h := o.(*historyRow); h.Kind == kind && h.Name == name && h.Deleted != nil {
			return Deletion{Time: *h.Deleted, Actor: h.DeletedBy}, true
		}
	}
	return Deletion{}, false
}

// ResourceHistory lists earlier generations of a resource, oldest first.
// For a deleted resource whose history was kept, the last is the
// generation that was deleted.
func (v *View) ResourceHistory(kind, name string) []Resource {
	it, err := v.txn.Get(tHistory, idx+"_prefix", kind, name)
	if err != nil {
		panic(err)
	}
	var out []Resource
	for o := it.Next(); o != nil; o = it.Next() {
		if h := o.(*historyRow); h.Kind == kind && h.Name == name {
			out = append(out, h.Resource)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Generation < out[j].Generation })
	return out
}
