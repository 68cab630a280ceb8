package fsm

import (
	"github.com/hashicorp/go-memdb"
	"github.com/opencontainers/go-digest"
)

// Table names of the materialized state.
const (
	tRepo     = "repo"
	tManifest = "manifest"
	tTag      = "tag"
	tBlob     = "blob"
	tReferrer = "referrer"
	tResource = "resource"
	tHistory  = "history"
	idx       = "id"
	idxDigest = "digest"
)

// repoRow exists while a repository holds anything; its counters let Apply
// drop it from the catalog the moment it becomes empty without a scan.
type repoRow struct {
	Name      string
	Manifests int
	Tags      int
	Blobs     int
}

func (r *repoRow) empty() bool { return r.Manifests == 0 && r.Tags == 0 && r.Blobs == 0 }

// tagRow is deliberately small: a registry may hold millions of tags.
type tagRow struct {
	Repo   string
	Tag    string
	Digest digest.Digest
}

// referrerRow indexes a manifest under the subject it refers to.
type referrerRow struct {
	Repo    string
	Subject digest.Digest
	Digest  digest.Digest
}

// historyRow keeps earlier generations of a resource.
type historyRow struct {
	Kind       string
	Name       string
	Generation uint64
	Resource   Resource
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
// tags, catalog and referrers their sorted, seekable pagination.
var schema = &memdb.DBSchema{Tables: map[string]*memdb.TableSchema{
	tRepo: {Name: tRepo, Indexes: map[string]*memdb.IndexSchema{
		idx: {Name: idx, Unique: true, Indexer: str("Name")},
	}},
	tManifest: {Name: tManifest, Indexes: map[string]*memdb.IndexSchema{
		idx: {Name: idx, Unique: true, Indexer: compound("Repo", "Digest")},
	}},
	// Tags have one index only: a registry may hold millions, and a
	// secondary index costs another full key per tag. Finding the tags of
	// a manifest scans the repository's tags instead.
	tTag: {Name: tTag, Indexes: map[string]*memdb.IndexSchema{
		idx: {Name: idx, Unique: true, Indexer: compound("Repo", "Tag")},
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
