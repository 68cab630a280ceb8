package fsm

import (
	"time"

	"github.com/hashicorp/go-memdb"
	"github.com/opencontainers/go-digest"
)

// Table names of the materialized state.
const (
	tRepo     = "repo"
	tManifest = "manifest"
	tTag      = "tag" // not a memdb table: tags live in repoRow.tags; the name survives in snapshots
	tBlob     = "blob"
	tReferrer = "referrer"
	tResource = "resource"
	tHistory  = "history"
	idx       = "id"
	idxDigest = "digest"
)

// repoRow exists while a repository holds anything; its counters let Apply
// drop it from the catalog the moment it becomes empty without a scan.
//
// tags holds the repository's tags (see tagIndex for why they are not memdb
// rows); Tags is always tags.len(), kept because the snapshot format has it.
// The field is unexported, so it is not part of the row's JSON.
type repoRow struct {
	Name      string
	Manifests int
	Tags      int
	Blobs     int
	tags      *tagIndex
}

func (r *repoRow) empty() bool { return r.Manifests == 0 && r.Tags == 0 && r.Blobs == 0 }

// referrerRow indexes a manifest under the subject it refers to.
type referrerRow struct {
	Repo    string
	Subject digest.Digest
	Digest  digest.Digest
}

// historyRow keeps earlier generations of a resource. The row of the
// generation a delete removed says so in Deleted and DeletedBy (omitted
// otherwise, so older snapshots' bytes are unchanged).
type historyRow struct {
	Kind       string
	Name       string
	Generation uint64
	Resource   Resource
	Deleted    *time.Time `json:",omitempty"`
	DeletedBy  string     `json:",omitempty"`
}

func str(field string) memdb.Indexer { return &memdb.StringFieldIndex{Field: field} }

func compound(fields ...string) memdb.Indexer {
	ix := &memdb.CompoundIndex{}
	for _, f := range fields {
		ix.Indexes = append(ix.Indexes, &memdb.StringFieldIndex{Field: f})
	}
	return ix
}

// The radix-tree indexes iterate in lexical order, which is what gives
// catalog and referrers their sorted, seekable pagination (tags get theirs
// from tagIndex). There is no tag table: a registry may hold millions of
// tags, and a memdb row per tag costs far more than the tag itself.
var schema = &memdb.DBSchema{Tables: map[string]*memdb.TableSchema{
	tRepo: {Name: tRepo, Indexes: map[string]*memdb.IndexSchema{
		idx: {Name: idx, Unique: true, Indexer: str("Name")},
	}},
	tManifest: {Name: tManifest, Indexes: map[string]*memdb.IndexSchema{
		idx: {Name: idx, Unique: true, Indexer: compound("Repo", "Digest")},
	}},
	tBlob: {Name: tBlob, Indexes: map[string]*memdb.IndexSchema{
		idx:       {Name: idx, Unique: true, Indexer: compound("Repo", "Digest")},
		idxDigest: {Name: idxDigest, Indexer: str("Digest")},
	}},
	tReferrer: {Name: tReferrer, Indexes: map[string]*memdb.IndexSchema{
		idx: {Name: idx, Unique: true, Indexer: compound("Repo", "Subject", "Digest")},
	}},
	tResource: {Name: tResource, Indexes: map[string]*memdb.IndexSchema{
		idx: {Name: idx, Unique: true, Indexer: compound("Kind", "Name")},
	}},
	tHistory: {Name: tHistory, Indexes: map[string]*memdb.IndexSchema{
		idx: {Name: idx, Unique: true, Indexer: &memdb.CompoundIndex{Indexes: []memdb.Indexer{
			&memdb.StringFieldIndex{Field: "Kind"},
			&memdb.StringFieldIndex{Field: "Name"},
			&memdb.UintFieldIndex{Field: "Generation"},
		}}},
	}},
}}
