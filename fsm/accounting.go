package fsm

import (
	"fmt"

	"github.com/hashicorp/go-memdb"
)

// Storage accounting per repository and for the registry (issue 11;
// docs/design.md, "Storage accounting").
//
// It is the namespace usage of quota.go kept for two more owners: each
// repository, and the registry as a whole. The same reference-counted
// rows (usageRow), changed at the same call sites (manifestUsage on a
// manifest put or delete, a repository delete, a GC sweep; usageResize on
// a link made or removed), so every event costs O(the digests it
// touches) per owner, and the same rebuild from the manifests and links
// of a snapshot (deriveUsage), so the snapshot format is unchanged.
//
// For each owner two sums are kept beside the rows:
//   - Bytes, deduplicated: each distinct digest the owner's manifest rows
//     reach, once, at its size (sizeOfUsage). For the registry this is
//     what the blob store holds for manifests' content.
//   - Logical: for each manifest row, its own size plus the size of each
//     distinct blob it lists: a layer two manifests share counts twice.
//     Since a row's Refs counts exactly those manifest rows, Logical is
//     the sum of Refs×Size over the rows.
//
// An owner's totals row exists while it has usage rows, so a deleted
// repository leaves nothing behind.
const (
	tRepoUsage   = "repousage"
	tRepoStorage = "repostorage"
	tRegUsage    = "regusage"
	tRegStorage  = "regstorage"
	// regOwner is the owner of the registry's rows: any non-empty key
	// does, since its tables hold nothing else.
	regOwner = "registry"
)

// usageTables are the reference-count tables, one per kind of owner.
var usageTables = []string{tUsage, tRepoUsage, tRegUsage}

// usageOwner is who a manifest row of repo counts for in table.
func usageOwner(table, repo string) string {
	switch table {
	case tUsage:
		return NamespaceOf(repo)
	case tRepoUsage:
		return repo
	default:
		return regOwner
	}
}

// storageRow is an owner's totals: Logical and Bytes as defined above,
// Digests the number of its usage rows.
type storageRow struct {
	Owner   string
	Logical int64
	Bytes   int64
	Digests int
}

func init() {
	for _, t := range []string{tRepoUsage, tRegUsage} {
		schema.Tables[t] = &memdb.TableSchema{Name: t, Indexes: map[string]*memdb.IndexSchema{
			idx:       {Name: idx, Unique: true, Indexer: compound("Owner", "Digest")},
			idxDigest: {Name: idxDigest, Indexer: str("Digest")},
		}}
	}
	for _, t := range []string{tRepoStorage, tRegStorage} {
		schema.Tables[t] = &memdb.TableSchema{Name: t, Indexes: map[string]*memdb.IndexSchema{
			idx: {Name: idx, Unique: true, Indexer: str("Owner")},
		}}
	}
}

// addTotals adds to the totals of owner in the usage table's kind. A
// namespace keeps only its deduplicated bytes (its quota counts them).
func (w writer) addTotals(table, owner string, logical, bytes int64, digests int) {
	switch table {
	case tUsage:
		w.addUsage(owner, bytes)
	case tRepoUsage:
		w.addStorage(tRepoStorage, owner, logical, bytes, digests)
	case tRegUsage:
		w.addStorage(tRegStorage, owner, logical, bytes, digests)
	default:
		panic(fmt.Sprintf("fsm: no totals for usage table %s", table))
	}
}

func (w writer) addStorage(table, owner string, logical, bytes int64, digests int) {
	if logical == 0 && bytes == 0 && digests == 0 {
		return
	}
	r := storageRow{Owner: owner}
	old, existed := w.first(table, owner).(*storageRow)
	if existed {
		r = *old
	}
	r.Logical += logical
	r.Bytes += bytes
	r.Digests += digests
	if r.Digests <= 0 {
		if existed {
			w.delete(table, old)
		}
		return
	}
	w.insert(table, &r)
}

// RepositoryStorage is what one repository holds and the bytes it stores.
type RepositoryStorage struct {
	Repository string
	Tags       int
	Manifests  int
	// Blobs counts the blobs linked into the repository (pushed or
	// mounted), whether a manifest references them or not.
	Blobs int
	// Logical and Bytes are as defined in accounting.go: every manifest
	// with the blobs it lists, against each distinct digest once.
	Logical int64
	Bytes   int64
}

// StorageTotals is the registry's accounting: Logical is the sum of the
// repositories' logical bytes, Bytes the distinct digests any manifest
// reaches (what the store holds for them) and Digests their number.
type StorageTotals struct {
	Logical int64
	Bytes   int64
	Digests int
}

func (v *View) repositoryStorage(r *repoRow) RepositoryStorage {
	s := RepositoryStorage{Repository: r.Name, Tags: r.Tags, Manifests: r.Manifests, Blobs: r.Blobs}
	if u, ok := v.first(tRepoStorage, r.Name).(*storageRow); ok {
		s.Logical, s.Bytes = u.Logical, u.Bytes
	}
	return s
}

// RepositoryStorage returns one repository's accounting; false when the
// repository holds nothing.
func (v *View) RepositoryStorage(repo string) (RepositoryStorage, bool) {
	r, ok := v.first(tRepo, repo).(*repoRow)
	if !ok {
		return RepositoryStorage{}, false
	}
	return v.repositoryStorage(r), true
}

// RepositoryStorages lists the accounting of the repositories after last,
// in lexical order, as Repositories pages names; n < 0 means no limit.
func (v *View) RepositoryStorages(last string, n int) (out []RepositoryStorage, more bool) {
	it, err := v.txn.LowerBound(tRepo, idx, last)
	if err != nil {
		panic(err)
	}
	for o := it.Next(); o != nil; o = it.Next() {
		r := o.(*repoRow)
		if r.Name == last {
			continue
		}
		if n >= 0 && len(out) == n {
			return out, true
		}
		out = append(out, v.repositoryStorage(r))
	}
	return out, false
}

// StorageTotals returns the registry's accounting.
func (v *View) StorageTotals() StorageTotals {
	if u, ok := v.first(tRegStorage, regOwner).(*storageRow); ok {
		return StorageTotals{Logical: u.Logical, Bytes: u.Bytes, Digests: u.Digests}
	}
	return StorageTotals{}
}
