package fsm

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"

	"github.com/hashicorp/go-memdb"
	"github.com/hashicorp/raft"
	"github.com/opencontainers/go-digest"
)

// Snapshot format: newline-delimited JSON. The first line is a header, then
// one line per row, then (since version 2) a trailer:
//
//	{"format":"berth-fsm","version":2,"index":42}
//	{"t":"repo","v":{...}}
//	{"t":"tag","v":{...}}
//	{"t":"end","v":{"rows":2,"sha256":"..."}}
//
// The trailer counts the rows and hashes every byte before it (header and
// rows), so a file cut at a row boundary or with a flipped bit is refused
// instead of restoring part of a state. Version 1 has no trailer; it is
// still read (Raft snapshots on disk from older binaries, rule 3), with the
// same row checks.
//
// Rows are streamed in table then index order, so the bytes of a snapshot
// are a pure function of the state (two nodes that applied the same log
// write identical snapshots) and no snapshot is ever held whole in memory.
const (
	snapshotFormat  = "berth-fsm"
	snapshotVersion = 2 // what this binary writes
	trailerTable    = "end"
	// maxSnapshotLine bounds one line, so a file without newlines cannot
	// make a restore buffer all of it. The largest row is a resource or a
	// manifest with annotations, far below this.
	maxSnapshotLine = 64 << 20
	// MaxIndex bounds a Raft index or term read from a snapshot or backup.
	// Raft adds one to the index of a restored snapshot, so 2^64-1 would
	// wrap to 0 and hang the restore; a million writes a second for two
	// thousand years stays below this.
	MaxIndex = 1 << 56
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

// snapshotTrailer closes a version 2 snapshot.
type snapshotTrailer struct {
	Rows   int64  `json:"rows"`
	SHA256 string `json:"sha256"` // lower-case hex of every byte before the trailer line
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
	// The outbox's tables come last and are empty until events were
	// configured, so older snapshots' bytes are unchanged.
	{tCluster, func() any { return new(clusterRow) }},
	{tOutbox, func() any { return new(OutboxRow) }},
	// GC's tables, empty until the first run (gc.go): older snapshots'
	// bytes are unchanged.
	{tGCRun, func() any { return new(GCRun) }},
	{tGCBlob, func() any { return new(gcBlobRow) }},
	{tGCManifest, func() any { return new(gcManifestRow) }},
	{tGCTouched, func() any { return new(gcTouchedRow) }},
	{tGCTombstone, func() any { return new(gcTombRow) }},
	{tGCHistory, func() any { return new(GCRecord) }},
	{tGCOrphan, func() any { return new(gcOrphanRow) }},
	// Token signing keys, empty until authentication was on.
	{tSigningKey, func() any { return new(SigningKey) }},
	// Pull times, empty until a node reported one. After the
	// manifests, so a restore checks each has its manifest.
	{tPullTime, func() any { return new(pullTimeRow) }},
	// The authorization epoch, absent until an auth kind changed.
	{tAuthEpoch, func() any { return new(authEpochRow) }},
	// Read-only mode's row, absent until the mode was first turned on
	// (readonly.go): older snapshots' bytes are unchanged.
	{tReadOnly, func() any { return new(readOnlyRow) }},
	// Mirror cursors, empty until a mirror policy ran (mirror.go).
	{tMirror, func() any { return new(MirrorCursor) }},
	// Push jobs, empty until a push job ran (push.go); the job before
	// its copied artifacts, which the loader checks against it.
	{tPushJob, func() any { return new(PushJob) }},
	{tPushCopied, func() any { return new(pushCopiedRow) }},
}

// Snapshot captures the state at the current index. A memdb read
// transaction is an immutable tree, so this is O(1) and Apply carries on.
func (f *FSM) Snapshot() (raft.FSMSnapshot, error) {
	if h := f.halted.Load(); h != nil {
		// Raft would label the snapshot with an index past the entry
		// this FSM skipped, and compact that entry out of the log.
		return nil, h
	}
	s, _ := f.SnapshotAt()
	return s, nil
}

// SnapshotAt captures the state and the index it reflects, taken together
// (Apply cannot run in between), so a backup's header names exactly the
// index of its rows.
func (f *FSM) SnapshotAt() (raft.FSMSnapshot, uint64) {
	f.stateMu.Lock()
	defer f.stateMu.Unlock()
	index := f.applied.Load()
	return &snapshot{txn: f.db.Load().Txn(false), index: index}, index
}

// Empty reports whether the view holds no repository and no resource: a
// restore into it loses nothing.
func (v *View) Empty() bool {
	for _, table := range []string{tRepo, tResource} {
		it, err := v.txn.Get(table, idx)
		if err != nil || it.Next() != nil {
			return false
		}
	}
	return true
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

// rowWriter encodes lines into the snapshot while hashing and counting
// them for the trailer.
type rowWriter struct {
	enc  *json.Encoder
	rows int64
}

func (rw *rowWriter) row(table string, o any) error {
	v, err := json.Marshal(o)
	if err != nil {
		return err
	}
	rw.rows++
	return rw.enc.Encode(snapshotRow{T: table, V: v})
}

func (s *snapshot) write(w io.Writer) error {
	bw := bufio.NewWriterSize(w, 1<<20)
	h := sha256.New()
	rw := &rowWriter{enc: json.NewEncoder(io.MultiWriter(bw, h))}
	if err := rw.enc.Encode(snapshotHeader{Format: snapshotFormat, Version: snapshotVersion, Index: s.index}); err != nil {
		return err
	}
	for _, t := range snapshotTables {
		if t.name == tTag {
			if err := s.writeTags(rw); err != nil {
				return err
			}
			continue
		}
		it, err := s.txn.Get(t.name, idx)
		if err != nil {
			return err
		}
		for o := it.Next(); o != nil; o = it.Next() {
			if err := rw.row(t.name, o); err != nil {
				return err
			}
		}
	}
	end, err := json.Marshal(snapshotTrailer{Rows: rw.rows, SHA256: hex.EncodeToString(h.Sum(nil))})
	if err != nil {
		return err
	}
	if err := json.NewEncoder(bw).Encode(snapshotRow{T: trailerTable, V: end}); err != nil {
		return err
	}
	return bw.Flush()
}

// writeTags writes every repository's tags, repositories in catalog order
// and tags in lexical order: the order the old (Repo, Tag) index had, so
// the bytes are unchanged.
func (s *snapshot) writeTags(rw *rowWriter) error {
	it, err := s.txn.Get(tRepo, idx)
	if err != nil {
		return err
	}
	var werr error
	for o := it.Next(); o != nil && werr == nil; o = it.Next() {
		r := o.(*repoRow)
		r.tags.each(func(e tagEntry) bool {
			werr = rw.row(tTag, &tagRow{Repo: r.Name, Tag: e.Tag, Digest: e.Digest})
			return werr == nil
		})
	}
	return werr
}

func (s *snapshot) Release() {}

// Restore replaces the whole state with a snapshot's. It builds the new
// state privately and publishes it only once every row and the trailer
// checked out, so a bad snapshot leaves the state as it was.
func (f *FSM) Restore(rc io.ReadCloser) error {
	defer rc.Close()
	db, info, err := readSnapshot(rc)
	if err != nil {
		return fmt.Errorf("restore fsm snapshot: %w", err)
	}
	f.stateMu.Lock()
	f.db.Store(db)
	// A snapshot holds the effect of every entry up to its index, the
	// one this FSM could not decode included.
	f.halted.Store(nil)
	f.advance(info.Index)
	f.stateMu.Unlock()
	f.logger.Info("restored state from snapshot", "index", info.Index, "version", info.Version, "rows", info.Rows)
	return nil
}

// SnapshotInfo describes a snapshot that passed every check.
type SnapshotInfo struct {
	Version int    // format version
	Index   uint64 // the applied index the state reflects
	Rows    int64
	// Empty is true for a snapshot of a state without repositories or
	// resources.
	Empty bool
}

// CheckSnapshot reads a whole snapshot and runs every check Restore runs,
// without touching any FSM. The node calls it on a backup before handing
// the file to Raft, whose restore panics if the FSM then refuses it.
func CheckSnapshot(r io.Reader) (SnapshotInfo, error) {
	_, info, err := readSnapshot(r)
	return info, err
}

func readSnapshot(r io.Reader) (*memdb.MemDB, SnapshotInfo, error) {
	lr := &lineReader{br: bufio.NewReaderSize(r, 1<<20), max: maxSnapshotLine}
	line, err := lr.next()
	if err != nil {
		if errors.Is(err, io.EOF) {
			err = errors.New("empty file")
		}
		return nil, SnapshotInfo{}, fmt.Errorf("header: %w", err)
	}
	var hdr snapshotHeader
	if err := json.Unmarshal(line, &hdr); err != nil || hdr.Format != snapshotFormat {
		return nil, SnapshotInfo{}, errors.New("not a Berth FSM snapshot (no berth-fsm header line)")
	}
	switch {
	case hdr.Version > snapshotVersion:
		return nil, SnapshotInfo{}, fmt.Errorf("snapshot version %d is newer than this binary (%d): upgrade it", hdr.Version, snapshotVersion)
	case hdr.Version < 1:
		return nil, SnapshotInfo{}, fmt.Errorf("snapshot version %d does not exist", hdr.Version)
	case hdr.Index > MaxIndex:
		return nil, SnapshotInfo{}, fmt.Errorf("header index %d is beyond any real log (max %d): the file is damaged", hdr.Index, uint64(MaxIndex))
	}
	info := SnapshotInfo{Version: hdr.Version, Index: hdr.Index}
	h := sha256.New()
	h.Write(line)
	h.Write([]byte{'\n'})

	types := map[string]func() any{}
	for _, t := range snapshotTables {
		types[t.name] = t.new
	}
	db := newDB()
	txn := db.Txn(true)
	defer txn.Abort()
	ld := newLoader(txn, hdr.Index)
	var trailer *snapshotTrailer
	for {
		line, err := lr.next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, info, fmt.Errorf("row %d: %w", info.Rows+1, err)
		}
		if trailer != nil {
			return nil, info, fmt.Errorf("line %d: data after the trailer", lr.line)
		}
		var row snapshotRow
		if err := json.Unmarshal(line, &row); err != nil {
			return nil, info, fmt.Errorf("row %d: %w", info.Rows+1, err)
		}
		if row.T == trailerTable && hdr.Version >= 2 {
			trailer = new(snapshotTrailer)
			if err := json.Unmarshal(row.V, trailer); err != nil {
				return nil, info, fmt.Errorf("trailer: %w", err)
			}
			if trailer.Rows != info.Rows {
				return nil, info, fmt.Errorf("trailer counts %d rows, the file holds %d: the file is damaged", trailer.Rows, info.Rows)
			}
			if sum := hex.EncodeToString(h.Sum(nil)); sum != trailer.SHA256 {
				return nil, info, fmt.Errorf("checksum mismatch (sha256 %s, trailer says %q): the file is damaged", sum, trailer.SHA256)
			}
			continue
		}
		h.Write(line)
		h.Write([]byte{'\n'})
		info.Rows++
		mk, ok := types[row.T]
		if !ok {
			return nil, info, fmt.Errorf("row %d: unknown table %q", info.Rows, row.T)
		}
		obj := mk()
		dec := json.NewDecoder(bytes.NewReader(row.V))
		dec.DisallowUnknownFields()
		if err := dec.Decode(obj); err != nil {
			return nil, info, fmt.Errorf("row %d (%s): %w", info.Rows, row.T, err)
		}
		if err := ld.add(row.T, obj); err != nil {
			return nil, info, fmt.Errorf("row %d (%s): %w", info.Rows, row.T, err)
		}
	}
	if hdr.Version >= 2 && trailer == nil {
		return nil, info, fmt.Errorf("no trailer after row %d: the file is truncated", info.Rows)
	}
	empty, err := ld.finish()
	if err != nil {
		return nil, info, err
	}
	info.Empty = empty
	txn.Commit()
	return db, info, nil
}

// lineReader splits a snapshot into lines. Every line, the last included,
// ends in a newline: one that does not was cut short.
type lineReader struct {
	br   *bufio.Reader
	max  int // bytes in one line
	line int
}

func (l *lineReader) next() ([]byte, error) {
	var buf []byte
	for {
		frag, err := l.br.ReadSlice('\n')
		if len(buf)+len(frag) > l.max {
			return nil, fmt.Errorf("line %d is longer than %d bytes", l.line+1, l.max)
		}
		switch {
		case err == nil:
			l.line++
			if buf == nil {
				return frag[:len(frag)-1], nil
			}
			buf = append(buf, frag...)
			return buf[:len(buf)-1], nil
		case errors.Is(err, bufio.ErrBufferFull):
			buf = append(buf, frag...)
		case errors.Is(err, io.EOF):
			if len(buf)+len(frag) == 0 {
				return nil, io.EOF
			}
			return nil, fmt.Errorf("line %d ends without a newline: the file is truncated", l.line+1)
		default:
			return nil, err
		}
	}
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
	// last is the greatest tag loaded into tags; ordered says every tag of
	// the index came in this run, in order, so one above last is new.
	last    string
	ordered bool
}

func (l *tagLoader) add(t *tagRow) error {
	if !tagRe.MatchString(t.Tag) {
		return fmt.Errorf("repository %q: %q is not a valid tag", t.Repo, t.Tag)
	}
	if err := checkDigest("tag "+t.Tag, t.Digest); err != nil {
		return err
	}
	// The tag shares the manifest row's digest string instead of keeping
	// one decoded copy per tag.
	m, err := l.txn.First(tManifest, idx, t.Repo, t.Digest.String())
	if err != nil || m == nil {
		return fmt.Errorf("tag %s:%s points at manifest %s, which the snapshot does not hold", t.Repo, t.Tag, t.Digest)
	}
	d := m.(*Manifest).Digest
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
		l.tags, l.ordered, l.last = r.tags, r.tags == nil, ""
		if l.tags == nil {
			l.tags = newTagIndex()
		}
	}
	if !l.ordered || t.Tag <= l.last {
		if _, dup := l.tags.get(t.Tag); dup {
			return fmt.Errorf("tag %s:%s is given twice", t.Repo, t.Tag)
		}
		l.ordered = false
	}
	l.tags.load(t.Tag, d)
	l.last = t.Tag
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
