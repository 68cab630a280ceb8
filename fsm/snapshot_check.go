package fsm

import (
	// The digest algorithms a row may name must be linked in for
	// digest.Validate to accept them.
	_ "crypto/sha256"
	_ "crypto/sha512"
	"encoding/json"
	"fmt"
	"regexp"

	"github.com/hashicorp/go-memdb"
	"github.com/opencontainers/go-digest"
)

// A snapshot can come from outside (clusterctl snapshot restore), so every
// row is checked as it is loaded: a digest that does not parse, a negative
// size, an invalid name or a reference to a row that is not there would
// otherwise restore without error and then fail requests with a 500, or
// panic a later Apply. The checks are invariants every Apply ever kept, so
// a node's own snapshot always passes them; they stop short of anything a
// past binary might have written differently without harm, since a node
// restores its own snapshots through the same code when it starts.

// The names the OCI API accepts (node/api/routes.go, the distribution
// spec's grammar) and the resource names fsm/resource accepts.
var (
	repoNameRe     = regexp.MustCompile(`^[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*(/[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*)*$`)
	tagRe          = regexp.MustCompile(`^[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}$`)
	resourceKindRe = regexp.MustCompile(`^[A-Z][A-Za-z0-9]{0,62}$`)
	resourceNameRe = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$`)
)

const maxRepoName = 255

func checkDigest(what string, d digest.Digest) error {
	if err := d.Validate(); err != nil {
		return fmt.Errorf("%s: digest %q: %w", what, d, err)
	}
	return nil
}

func checkRepoName(name string) error {
	if len(name) > maxRepoName || !repoNameRe.MatchString(name) {
		return fmt.Errorf("%q is not a valid repository name", name)
	}
	return nil
}

// loader checks and inserts a snapshot's rows into a private database.
type loader struct {
	txn  *memdb.Txn
	tags tagLoader
	// What the rows hold, compared at the end with the repo rows'
	// counters.
	manifests, blobs map[string]int
	repos, resources int
	// index is the snapshot's header index; clusterRow its cluster row,
	// which the outbox rows are checked against.
	index      uint64
	clusterRow *clusterRow
}

func newLoader(txn *memdb.Txn, index uint64) *loader {
	return &loader{txn: txn, tags: tagLoader{txn: txn}, manifests: map[string]int{}, blobs: map[string]int{}, index: index}
}

func (l *loader) first(table string, args ...any) any {
	o, err := l.txn.First(table, idx, args...)
	if err != nil {
		return nil
	}
	return o
}

func (l *loader) needRepo(name string) error {
	if l.first(tRepo, name) == nil {
		return fmt.Errorf("repository %q has no repo row before its rows", name)
	}
	return nil
}

// add checks one decoded row and inserts it.
func (l *loader) add(table string, obj any) error {
	if t, ok := obj.(*tagRow); ok {
		return l.tags.add(t)
	}
	if err := l.tags.flush(); err != nil {
		return err
	}
	var err error
	var key []any
	switch o := obj.(type) {
	case *repoRow:
		err = l.repo(o)
		key = []any{o.Name}
	case *Manifest:
		err = l.manifest(o)
		key = []any{o.Repo, o.Digest.String()}
	case *BlobLink:
		err = l.blob(o)
		key = []any{o.Repo, o.Digest.String()}
	case *referrerRow:
		err = l.referrer(o)
		key = []any{o.Repo, o.Subject.String(), o.Digest.String()}
	case *Resource:
		err = checkResource(o)
		l.resources++
		key = []any{o.Kind, o.Name}
	case *historyRow:
		err = l.history(o)
		key = []any{o.Kind, o.Name, o.Generation}
	case *clusterRow:
		err = l.cluster(o)
		key = []any{o.Key}
	case *OutboxRow:
		err = l.outbox(o)
		key = []any{o.Index}
	case *GCRun, *gcBlobRow, *gcManifestRow, *gcTouchedRow, *gcTombRow, *GCRecord, *gcOrphanRow:
		key, err = l.gc(o)
	case *SigningKey:
		key, err = l.signingKey(o)
	case *pullTimeRow:
		key, err = l.pullTime(o)
	case *authEpochRow:
		key, err = l.authEpoch(o)
	case *readOnlyRow:
		err = l.readOnly(o)
		key = []any{o.Key}
	case *MirrorCursor:
		key, err = l.mirror(o)
	case *PushJob:
		key, err = l.pushJob(o)
	case *pushCopiedRow:
		key, err = l.pushCopied(o)
	default:
		err = fmt.Errorf("no check for %T", obj)
	}
	if err != nil {
		return err
	}
	// memdb replaces a row with the same key; a snapshot never holds two.
	if l.first(table, key...) != nil {
		return fmt.Errorf("row %v is given twice", key)
	}
	return l.txn.Insert(table, obj)
}

func (l *loader) repo(r *repoRow) error {
	if err := checkRepoName(r.Name); err != nil {
		return err
	}
	if r.Manifests < 0 || r.Blobs < 0 || r.Tags < 0 {
		return fmt.Errorf("repository %q has a negative count", r.Name)
	}
	// The tag rows are the data and the counter only a cache of their
	// number: tagLoader.flush sets it from the index it builds.
	r.Tags = 0
	l.repos++
	return nil
}

func (l *loader) manifest(m *Manifest) error {
	if err := l.needRepo(m.Repo); err != nil {
		return err
	}
	what := "manifest in " + m.Repo
	if err := checkDigest(what, m.Digest); err != nil {
		return err
	}
	if m.Size < 0 {
		return fmt.Errorf("manifest %s@%s has a negative size %d", m.Repo, m.Digest, m.Size)
	}
	if m.Subject != "" {
		if err := checkDigest(what+" subject", m.Subject); err != nil {
			return err
		}
	}
	for _, list := range [][]digest.Digest{m.Blobs, m.Manifests} {
		for _, d := range list {
			if err := checkDigest(what+" reference", d); err != nil {
				return err
			}
		}
	}
	l.manifests[m.Repo]++
	return nil
}

func (l *loader) blob(b *BlobLink) error {
	if err := l.needRepo(b.Repo); err != nil {
		return err
	}
	if err := checkDigest("blob in "+b.Repo, b.Digest); err != nil {
		return err
	}
	if b.Size < 0 {
		return fmt.Errorf("blob %s@%s has a negative size %d", b.Repo, b.Digest, b.Size)
	}
	l.blobs[b.Repo]++
	return nil
}

func (l *loader) referrer(r *referrerRow) error {
	if err := l.needRepo(r.Repo); err != nil {
		return err
	}
	if err := checkDigest("referrer subject", r.Subject); err != nil {
		return err
	}
	// Only that the manifest exists: requiring its subject to match too
	// would refuse a node's own snapshot if two binaries ever parsed one
	// manifest's subject differently, and a stale row serves no error.
	if l.first(tManifest, r.Repo, r.Digest.String()) == nil {
		return fmt.Errorf("referrer %s@%s of %s: the snapshot holds no such manifest", r.Repo, r.Digest, r.Subject)
	}
	return nil
}

func checkResource(r *Resource) error {
	if !resourceKindRe.MatchString(r.Kind) || !resourceNameRe.MatchString(r.Name) {
		return fmt.Errorf("resource %q/%q: not a valid kind and name", r.Kind, r.Name)
	}
	if r.Generation < 1 {
		return fmt.Errorf("resource %s/%s: generation %d is not positive", r.Kind, r.Name, r.Generation)
	}
	var doc map[string]any
	if err := json.Unmarshal(r.Document, &doc); err != nil || doc == nil {
		return fmt.Errorf("resource %s/%s: document is not a JSON object", r.Kind, r.Name)
	}
	if _, ok := doc["metadata"].(map[string]any); !ok {
		return fmt.Errorf("resource %s/%s: document has no metadata object", r.Kind, r.Name)
	}
	return nil
}

func (l *loader) history(h *historyRow) error {
	if h.Resource.Kind != h.Kind || h.Resource.Name != h.Name || h.Resource.Generation != int64(h.Generation) {
		return fmt.Errorf("history of %s/%s generation %d holds %s/%s generation %d", h.Kind, h.Name, h.Generation, h.Resource.Kind, h.Resource.Name, h.Resource.Generation)
	}
	if err := checkResource(&h.Resource); err != nil {
		return fmt.Errorf("history: %w", err)
	}
	// The history of a deleted resource is kept (resourceDeleted), so a
	// row needs a later current resource only while one exists; a row
	// that records a delete cannot have one (a new resource of the name
	// drops the old history).
	cur, ok := l.first(tResource, h.Kind, h.Name).(*Resource)
	switch {
	case ok && h.Deleted != nil:
		return fmt.Errorf("history of %s/%s generation %d records a delete, but the resource exists", h.Kind, h.Name, h.Generation)
	case ok && cur.Generation <= h.Resource.Generation:
		return fmt.Errorf("history of %s/%s generation %d has no later current resource", h.Kind, h.Name, h.Generation)
	}
	return nil
}

// finish runs the checks that need every row, and reports whether the
// state is empty.
func (l *loader) finish() (empty bool, err error) {
	if err := l.tags.flush(); err != nil {
		return false, err
	}
	it, err := l.txn.Get(tRepo, idx)
	if err != nil {
		return false, err
	}
	for o := it.Next(); o != nil; o = it.Next() {
		r := o.(*repoRow)
		if r.Manifests != l.manifests[r.Name] || r.Blobs != l.blobs[r.Name] {
			return false, fmt.Errorf("repository %q counts %d manifests and %d blobs, its rows hold %d and %d", r.Name, r.Manifests, r.Blobs, l.manifests[r.Name], l.blobs[r.Name])
		}
		if r.empty() {
			return false, fmt.Errorf("repository %q holds nothing", r.Name)
		}
	}
	if err := l.deletedHistories(); err != nil {
		return false, err
	}
	// Usage rows are derived, not stored (quota.go).
	if err := deriveUsage(l.txn); err != nil {
		return false, fmt.Errorf("namespace usage: %w", err)
	}
	return l.repos == 0 && l.resources == 0, nil
}

// deletedHistories checks that the history of every resource that does
// not exist ends with the row of its delete.
func (l *loader) deletedHistories() error {
	it, err := l.txn.Get(tHistory, idx)
	if err != nil {
		return err
	}
	// Rows come in (kind, name, generation) order: the last row of each
	// resource is the one before the next resource's first.
	var last *historyRow
	check := func() error {
		if last == nil || last.Deleted != nil {
			return nil
		}
		if _, ok := l.first(tResource, last.Kind, last.Name).(*Resource); ok {
			return nil
		}
		return fmt.Errorf("history of %s/%s generation %d has no later current resource and records no delete", last.Kind, last.Name, last.Generation)
	}
	for o := it.Next(); o != nil; o = it.Next() {
		h := o.(*historyRow)
		if last != nil && (last.Kind != h.Kind || last.Name != h.Name) {
			if err := check(); err != nil {
				return err
			}
		}
		last = h
	}
	return check()
}
