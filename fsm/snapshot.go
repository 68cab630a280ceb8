package fsm

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"

	"github.com/hashicorp/go-memdb"
	"github.com/hashicorp/raft"
	"github.com/opencontainers/go-digest"
)

// Snapshot format, version 1: newline-delimited JSON. The first line is a
// header, then one line per row:
//
//	{"format":"berth-fsm","version":1,"index":42}
//	{"t":"repo","v":{...}}
//	{"t":"tag","v":{...}}
//
// Rows are streamed in table then index order, so the bytes of a snapshot
// are a pure function of the state (two nodes that applied the same log
// write identical snapshots) and no snapshot is ever held whole in memory.
const (
	snapshotFormat  = "berth-fsm"
	snapshotVersion = 1
)

type snapshotHeader struct {
	Format  string `json:"format"`
	Version int    `json:"version"`
	Index   uint64 `json:"index"`
}

type snapshotRow struct {
	T string          `json:"t"`
	V json.RawMessage `json:"v"`
}

// tagRow is how a tag is written in a snapshot: one row per tag, in
// repository then tag order, exactly as when tags were memdb rows. The
// state keeps them in a tagIndex per repository instead.
type tagRow struct {
	Repo   string
	Tag    string
	Digest digest.Digest
}

// snapshotTables is the order rows are written and the type each decodes to.
var snapshotTables = []struct {
	name string
	new  func() any
}{
	{tRepo, func() any { return new(repoRow) }},
	{tManifest, func() any { return new(Manifest) }},
	{tTag, func() any { return new(tagRow) }},
	{tBlob, func() any { return new(BlobLink) }},
	{tReferrer, func() any { return new(referrerRow) }},
	{tResource, func() any { return new(Resource) }},
	{tHistory, func() any { return new(historyRow) }},
}

// Snapshot captures the state at the current index. A memdb read
// transaction is an immutable tree, so this is O(1) and Apply carries on.
func (f *FSM) Snapshot() (raft.FSMSnapshot, error) {
	if h := f.halted.Load(); h != nil {
		// Raft would label the snapshot with an index past the entry
		// this FSM skipped, and compact that entry out of the log.
		return nil, h
	}
	index := f.applied.Load()
	return &snapshot{txn: f.db.Load().Txn(false), index: index}, nil
}

type snapshot struct {
	txn   *memdb.Txn
	index uint64
}

func (s *snapshot) Persist(sink raft.SnapshotSink) error {
	if err := s.write(sink); err != nil {
		sink.Cancel()
		return fmt.Errorf("persist fsm snapshot: %w", err)
	}
	return sink.Close()
}

func (s *snapshot) write(w io.Writer) error {
	bw := bufio.NewWriterSize(w, 1<<20)
	enc := json.NewEncoder(bw)
	if err := enc.Encode(snapshotHeader{Format: snapshotFormat, Version: snapshotVersion, Index: s.index}); err != nil {
		return err
	}
	for _, t := range snapshotTables {
		if t.name == tTag {
			if err := s.writeTags(enc); err != nil {
				return err
			}
			continue
		}
		it, err := s.txn.Get(t.name, idx)
		if err != nil {
			return err
		}
		for o := it.Next(); o != nil; o = it.Next() {
			v, err := json.Marshal(o)
			if err != nil {
				return err
			}
			if err := enc.Encode(snapshotRow{T: t.name, V: v}); err != nil {
				return err
			}
		}
	}
	return bw.Flush()
}

// writeTags writes every repository's tags, repositories in catalog order
// and tags in lexical order: the order the old (Repo, Tag) index had, so
// the bytes are unchanged.
func (s *snapshot) writeTags(enc *json.Encoder) error {
	it, err := s.txn.Get(tRepo, idx)
	if err != nil {
		return err
	}
	var werr error
	for o := it.Next(); o != nil && werr == nil; o = it.Next() {
		r := o.(*repoRow)
		r.tags.each(func(e tagEntry) bool {
			var v []byte
			if v, werr = json.Marshal(&tagRow{Repo: r.Name, Tag: e.Tag, Digest: e.Digest}); werr != nil {
				return false
			}
			werr = enc.Encode(snapshotRow{T: tTag, V: v})
			return werr == nil
		})
	}
	return werr
}

func (s *snapshot) Release() {}

// Restore replaces the whole state with a snapshot's.
func (f *FSM) Restore(rc io.ReadCloser) error {
	defer rc.Close()
	db, index, err := readSnapshot(rc)
	if err != nil {
		return fmt.Errorf("restore fsm snapshot: %w", err)
	}
	f.db.Store(db)
	// A snapshot holds the effect of every entry up to its index, the
	// one this FSM could not decode included.
	f.halted.Store(nil)
	f.advance(index)
	f.logger.Info("restored state from snapshot", "index", index)
	return nil
}

func readSnapshot(r io.Reader) (*memdb.MemDB, uint64, error) {
	dec := json.NewDecoder(bufio.NewReaderSize(r, 1<<20))
	var hdr snapshotHeader
	if err := dec.Decode(&hdr); err != nil {
		return nil, 0, fmt.Errorf("header: %w", err)
	}
	if hdr.Format != snapshotFormat {
		return nil, 0, fmt.Errorf("not a Berth FSM snapshot (format %q)", hdr.Format)
	}
	if hdr.Version != snapshotVersion {
		return nil, 0, fmt.Errorf("snapshot version %d is newer than this binary: upgrade it", hdr.Version)
	}
	types := map[string]func() any{}
	for _, t := range snapshotTables {
		types[t.name] = t.new
	}
	db := newDB()
	txn := db.Txn(true)
	defer txn.Abort()
	tags := tagLoader{txn: txn}
	for n := 0; ; n++ {
		var row snapshotRow
		if err := dec.Decode(&row); err != nil {
			if errors.Is(err, io.EOF) {
				break
			}
			return nil, 0, fmt.Errorf("row %d: %w", n, err)
		}
		mk, ok := types[row.T]
		if !ok {
			return nil, 0, fmt.Errorf("row %d: unknown table %q", n, row.T)
		}
		obj := mk()
		if err := json.Unmarshal(row.V, obj); err != nil {
			return nil, 0, fmt.Errorf("row %d (%s): %w", n, row.T, err)
		}
		switch o := obj.(type) {
		case *tagRow:
			if err := tags.add(o); err != nil {
				return nil, 0, fmt.Errorf("row %d (%s): %w", n, row.T, err)
			}
			continue
		case *repoRow:
			// The tag rows are the data and the counter only a cache of
			// their number: tagLoader.flush sets it from the index it builds.
			o.Tags = 0
		}
		if err := tags.flush(); err != nil {
			return nil, 0, fmt.Errorf("row %d: %w", n, err)
		}
		if err := txn.Insert(row.T, obj); err != nil {
			return nil, 0, fmt.Errorf("row %d (%s): %w", n, row.T, err)
		}
	}
	if err := tags.flush(); err != nil {
		return nil, 0, err
	}
	txn.Commit()
	return db, hdr.Index, nil
}

// tagLoader bulk-builds each repository's tagIndex from a snapshot's tag
// rows, which arrive grouped by repository and sorted by tag: one index per
// repository, appended in order, then one repo row insert. Copying the
// index per tag would cost a path copy per tag. The new database is private
// until Restore publishes it, so the index is built in place.
type tagLoader struct {
	txn  *memdb.Txn
	repo string
	tags *tagIndex // being built for repo; nil between repositories
}

func (l *tagLoader) add(t *tagRow) error {
	if l.tags != nil && t.Repo != l.repo {
		if err := l.flush(); err != nil {
			return err
		}
	}
	if l.tags == nil {
		l.repo = t.Repo
		r, err := l.row()
		if err != nil {
			return err
		}
		// Rows of one repository that are not contiguous extend its index.
		if l.tags = r.tags; l.tags == nil {
			l.tags = newTagIndex()
		}
	}
	d := t.Digest
	// Share the manifest row's digest string instead of keeping one
	// decoded copy per tag.
	if m, err := l.txn.First(tManifest, idx, t.Repo, t.Digest.String()); err == nil && m != nil {
		d = m.(*Manifest).Digest
	}
	l.tags.load(t.Tag, d)
	return nil
}

// flush attaches the index being built to its repository's row.
func (l *tagLoader) flush() error {
	if l.tags == nil {
		return nil
	}
	r, err := l.row()
	if err != nil {
		return err
	}
	next := *r
	next.tags, next.Tags = l.tags, l.tags.len()
	l.tags = nil
	return l.txn.Insert(tRepo, &next)
}

// row returns the repo row of the repository being loaded; a snapshot
// writes every repository's row before any tag row.
func (l *tagLoader) row() (*repoRow, error) {
	o, err := l.txn.First(tRepo, idx, l.repo)
	if err != nil {
		return nil, err
	}
	r, ok := o.(*repoRow)
	if !ok {
		return nil, fmt.Errorf("tags of repository %q, which has no repo row", l.repo)
	}
	return r, nil
}
