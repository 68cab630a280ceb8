package fsm

import (
	"github.com/opencontainers/go-digest"
	"github.com/tidwall/btree"
)

// tagEntry is one tag of a repository. The repository name is not
// repeated: at a million tags every byte per tag is a megabyte of RSS.
type tagEntry struct {
	Tag    string
	Digest digest.Digest
}

func tagLess(a, b tagEntry) bool { return a.Tag < b.Tag }

// digestLess orders the reverse index: by digest, then tag, so the tags of
// one manifest are adjacent and a seek to {Digest: d} finds the first.
func digestLess(a, b tagEntry) bool {
	if a.Digest != b.Digest {
		return a.Digest < b.Digest
	}
	return a.Tag < b.Tag
}

// tagIndex holds one repository's tags in lexical order; the repository's
// repoRow points at it.
//
// Why not one memdb row per tag: each row cost a radix leaf, a share of
// inner nodes and their watch channels, and that was about 60% of the live
// heap at a million tags. With an index per repository, `berth-bench scale`
// (100k repositories of 10 tags) went from 1169 to 360 bytes of RSS per tag
// after applying the events, and from 884 to 332 after a restore.
//
// Why a persistent B-tree (github.com/tidwall/btree, MIT, no dependencies):
// memdb gives every View a snapshot, so an index reachable from a committed
// row must never change; each write transaction changes a copy and stores
// it in a new repoRow. BTreeG.Copy is O(1) and lazy (a write copies only the
// nodes on its path), so a tag put stays O(log n) in a repository of a
// million tags, where a sorted slice copied per change would copy megabytes
// per put.
//
// byDigest is the same set of entries ordered by digest (sharing the
// strings of bt), so that deleting a manifest inside Apply finds its tags
// in O(k + log n) for k tags instead of scanning the repository's n tags:
// Apply is serial, and one delete in a repository of a million tags held
// up every write behind it. It costs one more B-tree item (two string
// headers) per tag. It is derived state: snapshots hold only bt, and load
// rebuilds it, so the snapshot bytes are what they were.
//
// An index is immutable once the transaction that built it committed (or,
// in Restore, once the state is published); only clone and newTagIndex
// hand out one that may change. All read methods accept a nil index, which
// is what a repository without tags has.
type tagIndex struct {
	bt       btree.BTreeG[tagEntry] // by tag
	byDigest btree.BTreeG[tagEntry] // by digest, then tag
}

func newTagIndex() *tagIndex {
	// NoLocks: a committed index is only ever read, and only the Apply
	// goroutine writes (to a private copy), so a per-tree RWMutex would
	// cost memory per repository and contention for nothing.
	return &tagIndex{
		bt:       *btree.NewBTreeGOptions(tagLess, btree.Options{NoLocks: true}),
		byDigest: *btree.NewBTreeGOptions(digestLess, btree.Options{NoLocks: true}),
	}
}

// clone returns a copy that may be changed without affecting t; nodes are
// shared until the copy writes them. BTreeG.Copy also writes a fresh
// isolation id into its receiver (tidwall/btree#40), and t may be read by
// a View at this moment, so Copy runs on a private shallow copy of the
// tree header, never on t itself: a committed index is never written, not
// even one word.
func (t *tagIndex) clone() *tagIndex {
	shadow, shadowByDigest := t.bt, t.byDigest
	return &tagIndex{bt: *shadow.Copy(), byDigest: *shadowByDigest.Copy()}
}

func (t *tagIndex) len() int {
	if t == nil {
		return 0
	}
	return t.bt.Len()
}

func (t *tagIndex) get(tag string) (digest.Digest, bool) {
	if t == nil {
		return "", false
	}
	e, ok := t.bt.Get(tagEntry{Tag: tag})
	return e.Digest, ok
}

// set points tag at d.
func (t *tagIndex) set(tag string, d digest.Digest) {
	e := tagEntry{Tag: tag, Digest: d}
	t.reindex(t.bt.Set(e))
	t.byDigest.Set(e)
}

// reindex drops the reverse entry of a tag that bt just replaced.
func (t *tagIndex) reindex(prev tagEntry, replaced bool) {
	if replaced {
		t.byDigest.Delete(prev)
	}
}

// load adds a tag during a bulk build. Tags that arrive in order (as a
// snapshot writes them) are appended to the rightmost leaf without a
// search; any other order still yields the right tree.
// The reverse index gets its entries in tag order, so it is built by
// search (O(log n) each).
func (t *tagIndex) load(tag string, d digest.Digest) {
	e := tagEntry{Tag: tag, Digest: d}
	t.reindex(t.bt.Load(e))
	t.byDigest.Set(e)
}

func (t *tagIndex) delete(tag string) bool {
	prev, ok := t.bt.Delete(tagEntry{Tag: tag})
	if ok {
		t.byDigest.Delete(prev)
	}
	return ok
}

// tagsOf lists the tags pointing at d in lexical order, in O(k + log n).
func (t *tagIndex) tagsOf(d digest.Digest) []string {
	if t == nil {
		return nil
	}
	var tags []string
	t.byDigest.Ascend(tagEntry{Digest: d}, func(e tagEntry) bool {
		if e.Digest != d {
			return false
		}
		tags = append(tags, e.Tag)
		return true
	})
	return tags
}

// ascend calls fn for each tag >= from in lexical order until fn returns
// false.
func (t *tagIndex) ascend(from string, fn func(tagEntry) bool) {
	if t == nil {
		return
	}
	t.bt.Ascend(tagEntry{Tag: from}, fn)
}

// each calls fn for every tag in lexical order until fn returns false.
func (t *tagIndex) each(fn func(tagEntry) bool) {
	if t == nil {
		return
	}
	t.bt.Scan(fn)
}
