package fsm

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"

	"github.com/hashicorp/go-memdb"
	"github.com/hashicorp/raft"
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

func (s *snapshot) Release() {}

// Restore replaces the whole state with a snapshot's.
func (f *FSM) Restore(rc io.ReadCloser) error {
	defer rc.Close()
	db, index, err := readSnapshot(rc)
	if err != nil {
		return fmt.Errorf("restore fsm snapshot: %w", err)
	}
	f.db.Store(db)
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
		if err := txn.Insert(row.T, obj); err != nil {
			return nil, 0, fmt.Errorf("row %d (%s): %w", n, row.T, err)
		}
	}
	txn.Commit()
	return db, hdr.Index, nil
}
