package blob

import (
	"context"
	"crypto/rand"
	"encoding"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/opencontainers/go-digest"
)

// FS stores blobs on the local filesystem, for a single node.
//
// Layout under root (docs/design.md):
//
//	blobs/<alg>/<hh>/<hex>   content, written once, visible only by rename
//	uploads/<id>.json        offset, algorithm and hash state
//	uploads/<id>.data        bytes received so far (created by the first append)
//	tmp/                     files on their way into blobs/
//
// Every write is fsync'd before it is acknowledged, and every rename's
// directory is fsync'd after, so a kill -9 leaves either the whole blob or
// nothing.
type FS struct {
	root   string
	logger *slog.Logger
	locks  sessionLocks // one per session in use, see sessionlock.go
	bufs   sync.Pool

	// pending holds sessions that have no bytes yet. They cost no file:
	// most pushes POST and then PUT the whole blob, and creating files is
	// what a push pays most for. The filesystem driver serves a single
	// node, so node-local memory is enough; a crash forgets only empty
	// sessions, whose clients get BLOB_UPLOAD_UNKNOWN and start over.
	// The table is bounded and its sessions expire (FSLimits).
	pending *pendingSessions
}

var _ Store = (*FS)(nil)

// NewFS opens (creating if needed) a store under root and discards what a
// crash left in tmp/. Zero limits take the defaults.
func NewFS(root string, logger *slog.Logger, limits FSLimits) (*FS, error) {
	s := &FS{root: root, logger: logger, pending: newPendingSessions(limits)}
	s.bufs.New = func() any { b := make([]byte, 1<<20); return &b }
	for _, d := range []string{"blobs", "uploads", "tmp"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o700); err != nil {
			return nil, fmt.Errorf("create %s: %w", d, err)
		}
	}
	entries, err := os.ReadDir(filepath.Join(root, "tmp"))
	if err != nil {
		return nil, fmt.Errorf("read tmp: %w", err)
	}
	for _, e := range entries {
		os.RemoveAll(filepath.Join(root, "tmp", e.Name()))
	}
	if len(entries) > 0 {
		logger.Info("removed partial files left by an earlier crash", "count", len(entries))
	}
	return s, nil
}

func (s *FS) blobPath(d digest.Digest) string {
	hex := d.Encoded()
	return filepath.Join(s.root, "blobs", d.Algorithm().String(), hex[:2], hex)
}

func (s *FS) Stat(_ context.Context, d digest.Digest) (Info, error) {
	if err := d.Validate(); err != nil {
		return Info{}, fmt.Errorf("%w: %v", ErrDigestInvalid, err)
	}
	fi, err := os.Stat(s.blobPath(d))
	if errors.Is(err, fs.ErrNotExist) {
		return Info{}, ErrNotFound
	}
	if err != nil {
		return Info{}, fmt.Errorf("stat blob %s: %w", d, err)
	}
	return Info{Digest: d, Size: fi.Size()}, nil
}

func (s *FS) Open(_ context.Context, d digest.Digest) (io.ReadSeekCloser, Info, error) {
	if err := d.Validate(); err != nil {
		return nil, Info{}, fmt.Errorf("%w: %v", ErrDigestInvalid, err)
	}
	f, err := os.Open(s.blobPath(d))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, Info{}, ErrNotFound
	}
	if err != nil {
		return nil, Info{}, fmt.Errorf("open blob %s: %w", d, err)
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, Info{}, fmt.Errorf("stat blob %s: %w", d, err)
	}
	return f, Info{Digest: d, Size: fi.Size()}, nil
}

// Put verifies content against d while streaming it to a temp file and
// renames it into place only if it matches. Re-putting an existing blob
// still verifies the bytes (so a wrong upload is reported as wrong) but
// writes nothing.
func (s *FS) Put(ctx context.Context, d digest.Digest, size int64, r io.Reader) (Info, error) {
	if err := d.Validate(); err != nil {
		return Info{}, fmt.Errorf("%w: %v", ErrDigestInvalid, err)
	}
	h, err := newHash(d.Algorithm())
	if err != nil {
		return Info{}, err
	}
	final := s.blobPath(d)
	if _, err := os.Stat(final); err == nil {
		n, err := s.copy(ctx, h, r)
		if err != nil {
			return Info{}, err
		}
		return s.check(d, size, n, h)
	}
	tmp, err := newTempFile(filepath.Join(s.root, "tmp"))
	if err != nil {
		return Info{}, err
	}
	defer tmp.discard()
	n, err := s.copy(ctx, io.MultiWriter(tmp.f, h), r)
	if err != nil {
		return Info{}, err
	}
	info, err := s.check(d, size, n, h)
	if err != nil {
		return Info{}, err
	}
	if err := tmp.f.Sync(); err != nil {
		return Info{}, fmt.Errorf("sync blob: %w", err)
	}
	if err := os.MkdirAll(filepath.Dir(final), 0o700); err != nil {
		return Info{}, fmt.Errorf("create blob dir: %w", err)
	}
	if err := tmp.publish(final); err != nil {
		return Info{}, err
	}
	if err := syncDir(filepath.Dir(final)); err != nil {
		return Info{}, err
	}
	return info, nil
}

func (s *FS) check(d digest.Digest, size, n int64, h hash.Hash) (Info, error) {
	if size >= 0 && n != size {
		return Info{}, fmt.Errorf("%w: got %d bytes, expected %d", ErrSizeMismatch, n, size)
	}
	if got := digest.NewDigest(d.Algorithm(), h); got != d {
		return Info{}, fmt.Errorf("%w: content is %s", ErrDigestMismatch, got)
	}
	return Info{Digest: d, Size: n}, nil
}

// place renames a finished file into its content address and makes the
// rename durable.
func (s *FS) place(from, to string) error {
	dir := filepath.Dir(to)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("create blob dir: %w", err)
	}
	if err := os.Rename(from, to); err != nil {
		return fmt.Errorf("move blob into place: %w", err)
	}
	return syncDir(dir)
}

func syncDir(dir string) error {
	f, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer f.Close()
	if err := f.Sync(); err != nil {
		return fmt.Errorf("sync %s: %w", dir, err)
	}
	return nil
}

// copy streams r to w through a pooled buffer, stopping when ctx ends.
func (s *FS) copy(ctx context.Context, w io.Writer, r io.Reader) (int64, error) {
	bp := s.bufs.Get().(*[]byte)
	defer s.bufs.Put(bp)
	n, err := io.CopyBuffer(w, ctxReader{ctx, r}, *bp)
	if err != nil {
		return n, fmt.Errorf("receive blob: %w", err)
	}
	return n, nil
}

type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}

func (s *FS) Delete(_ context.Context, d digest.Digest) error {
	if err := d.Validate(); err != nil {
		return fmt.Errorf("%w: %v", ErrDigestInvalid, err)
	}
	err := os.Remove(s.blobPath(d))
	if errors.Is(err, fs.ErrNotExist) {
		return ErrNotFound
	}
	return err
}

// --- upload sessions ---

// uploadState is the durable truth about a session. The data file may be
// longer after a crash mid-append; Offset says how much of it counts.
// Repo is the repository the session belongs to. A state without one was
// written before sessions were bound to repositories: it is refused
// (ErrUploadUnknown) rather than usable from any repository, which costs
// a client at most one restarted blob across the upgrade.
type uploadState struct {
	Repo      string           `json:"repo"`
	Offset    int64            `json:"offset"`
	Algorithm digest.Algorithm `json:"algorithm"`
	Started   time.Time        `json:"started"`
	Hash      []byte           `json:"hash"` // encoding.BinaryMarshaler state
}

var uploadIDRe = regexp.MustCompile(`^[0-9a-f]{32}$`)

// uploadPaths returns a session's state and data files. A session is
// two plain files rather than a directory: creating and removing them is
// what a push pays for on every blob, and metadata operations are the
// expensive ones while other requests fsync.
func (s *FS) uploadPaths(id string) (state, data string, err error) {
	if !uploadIDRe.MatchString(id) {
		return "", "", ErrUploadUnknown
	}
	base := filepath.Join(s.root, "uploads", id)
	return base + ".json", base + ".data", nil
}

func (s *FS) StartUpload(_ context.Context, repo string, alg digest.Algorithm) (UploadStatus, error) {
	h, err := newHash(alg)
	if err != nil {
		return UploadStatus{}, err
	}
	hs, err := h.(encoding.BinaryMarshaler).MarshalBinary()
	if err != nil {
		return UploadStatus{}, err
	}
	raw := make([]byte, 16)
	rand.Read(raw)
	id := hex.EncodeToString(raw)
	now := time.Now()
	st := uploadState{Repo: repo, Algorithm: alg, Started: now.UTC(), Hash: hs}
	if err := s.pending.add(id, st, now); err != nil {
		return UploadStatus{}, err
	}
	return UploadStatus{ID: id, Algorithm: alg, Started: st.Started}, nil
}

// session returns the state of a session of repo, from memory if it holds
// no bytes yet. Another repository's session is unknown.
func (s *FS) session(repo, id, state string) (uploadState, error) {
	st, ok := s.pending.get(id, time.Now())
	if !ok {
		var err error
		if st, err = s.readState(state); err != nil {
			return uploadState{}, err
		}
	}
	if st.Repo == "" || st.Repo != repo {
		return uploadState{}, ErrUploadUnknown
	}
	return st, nil
}

func (s *FS) readState(path string) (uploadState, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return uploadState{}, ErrUploadUnknown
	}
	if err != nil {
		return uploadState{}, fmt.Errorf("read upload state: %w", err)
	}
	var st uploadState
	if err := json.Unmarshal(b, &st); err != nil {
		// Only a new, empty session is written in place (not renamed), so
		// a torn state file is one that never held data.
		s.logger.Warn("discarding torn upload state", "path", path, "err", err)
		return uploadState{}, ErrUploadUnknown
	}
	return st, nil
}

// saveState replaces the state file atomically and durably.
func (s *FS) saveState(path string, st uploadState, h hash.Hash) error {
	hs, err := h.(encoding.BinaryMarshaler).MarshalBinary()
	if err != nil {
		return fmt.Errorf("save hash state: %w", err)
	}
	st.Hash = hs
	b, _ := json.Marshal(st)
	tmp := path + ".tmp"
	if err := writeFileSync(tmp, b); err != nil {
		return fmt.Errorf("save upload state: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("save upload state: %w", err)
	}
	return syncDir(filepath.Dir(path))
}

func writeFileSync(path string, b []byte) error {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	if _, err := f.Write(b); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

func (st uploadState) hash() (hash.Hash, error) {
	h, err := newHash(st.Algorithm)
	if err != nil {
		return nil, err
	}
	if err := h.(encoding.BinaryUnmarshaler).UnmarshalBinary(st.Hash); err != nil {
		return nil, fmt.Errorf("restore hash state: %w", err)
	}
	return h, nil
}

func (s *FS) UploadStatus(_ context.Context, repo, id string) (UploadStatus, error) {
	state, _, err := s.uploadPaths(id)
	if err != nil {
		return UploadStatus{}, err
	}
	st, err := s.session(repo, id, state)
	if err != nil {
		return UploadStatus{}, err
	}
	return UploadStatus{ID: id, Offset: st.Offset, Algorithm: st.Algorithm, Started: st.Started}, nil
}

// Append holds the session's own lock while it copies the body, which may
// take as long as the client takes to send it: other sessions never wait
// for it (sessionlock.go), and the API ends a body that stops arriving.
func (s *FS) Append(ctx context.Context, repo, id string, offset int64, r io.Reader) (int64, error) {
	state, data, err := s.uploadPaths(id)
	if err != nil {
		return 0, err
	}
	unlock, err := s.locks.lock(ctx, id)
	if err != nil {
		return 0, fmt.Errorf("wait for upload session: %w", err)
	}
	defer unlock()
	st, err := s.session(repo, id, state)
	if err != nil {
		return 0, err
	}
	if offset != st.Offset {
		return 0, &OffsetError{Current: st.Offset}
	}
	h, err := st.hash()
	if err != nil {
		return 0, err
	}
	f, err := os.OpenFile(data, os.O_CREATE|os.O_WRONLY, 0o600)
	if err != nil {
		return 0, fmt.Errorf("open upload data: %w", err)
	}
	defer f.Close()
	// Bytes past the recorded offset are from an append that crashed before
	// its state was saved: they never counted.
	if err := f.Truncate(st.Offset); err != nil {
		return 0, fmt.Errorf("trim upload data: %w", err)
	}
	if _, err := f.Seek(st.Offset, io.SeekStart); err != nil {
		return 0, err
	}
	n, err := s.copy(ctx, io.MultiWriter(f, h), r)
	if err != nil {
		// Nothing of a failed chunk counts; the next attempt starts at
		// the old offset and truncates.
		return 0, err
	}
	if err := f.Sync(); err != nil {
		return 0, fmt.Errorf("sync upload data: %w", err)
	}
	st.Offset += n
	if err := s.saveState(state, st, h); err != nil {
		return 0, err
	}
	s.pending.remove(id) // the state file is the truth from now on
	return st.Offset, nil
}

func (s *FS) Commit(ctx context.Context, repo, id string, d digest.Digest) (Info, error) {
	if err := d.Validate(); err != nil {
		return Info{}, fmt.Errorf("%w: %v", ErrDigestInvalid, err)
	}
	if !Supported(d.Algorithm()) {
		return Info{}, fmt.Errorf("%w: %s", ErrUnsupported, d.Algorithm())
	}
	state, data, err := s.uploadPaths(id)
	if err != nil {
		return Info{}, err
	}
	unlock, err := s.locks.lock(ctx, id)
	if err != nil {
		return Info{}, fmt.Errorf("wait for upload session: %w", err)
	}
	defer unlock()
	st, err := s.session(repo, id, state)
	if err != nil {
		return Info{}, err
	}
	defer s.pending.remove(id)
	if st.Offset == 0 {
		// An empty blob: make the data file so it can be moved into place.
		if err := writeFileSync(data, nil); err != nil {
			return Info{}, fmt.Errorf("create upload data: %w", err)
		}
	}
	if err := os.Truncate(data, st.Offset); err != nil {
		return Info{}, fmt.Errorf("trim upload data: %w", err)
	}
	var got digest.Digest
	if d.Algorithm() == st.Algorithm {
		h, err := st.hash()
		if err != nil {
			return Info{}, err
		}
		got = digest.NewDigest(st.Algorithm, h)
	} else {
		// The client finished with another algorithm than it announced:
		// hash the data once more with that one.
		f, err := os.Open(data)
		if err != nil {
			return Info{}, fmt.Errorf("open upload data: %w", err)
		}
		got, err = d.Algorithm().FromReader(ctxReader{ctx, f})
		f.Close()
		if err != nil {
			return Info{}, fmt.Errorf("hash upload: %w", err)
		}
	}
	if got != d {
		s.removeSession(state, data)
		return Info{}, fmt.Errorf("%w: uploaded content is %s", ErrDigestMismatch, got)
	}
	if _, err := os.Stat(s.blobPath(d)); err != nil {
		if err := s.place(data, s.blobPath(d)); err != nil {
			return Info{}, err
		}
	}
	s.removeSession(state, data)
	return Info{Digest: d, Size: st.Offset}, nil
}

func (s *FS) PutUpload(ctx context.Context, repo, id string, d digest.Digest, size int64, r io.Reader) (Info, error) {
	state, data, err := s.uploadPaths(id)
	if err != nil {
		return Info{}, err
	}
	st, err := s.session(repo, id, state)
	if err != nil {
		return Info{}, err
	}
	if st.Offset > 0 {
		return Info{}, ErrUploadNotEmpty
	}
	// Not under the session's lock: Put writes no session file, and
	// the session ends here whatever the outcome.
	info, err := s.Put(ctx, d, size, r)
	if !s.pending.remove(id) {
		s.removeSession(state, data)
	}
	return info, err
}

func (s *FS) removeSession(state, data string) {
	for _, p := range []string{data, state, state + ".tmp"} {
		if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
			s.logger.Warn("remove upload file", "path", p, "err", err)
		}
	}
}

func (s *FS) CancelUpload(ctx context.Context, repo, id string) error {
	state, data, err := s.uploadPaths(id)
	if err != nil {
		return err
	}
	unlock, err := s.locks.lock(ctx, id)
	if err != nil {
		return fmt.Errorf("wait for upload session: %w", err)
	}
	defer unlock()
	if _, err := s.session(repo, id, state); err != nil {
		return err
	}
	if s.pending.remove(id) {
		return nil
	}
	s.removeSession(state, data)
	return nil
}

// PurgeUploads removes sessions with no activity since olderThan
// (abandoned uploads): an upload still sending chunks is never purged,
// however long ago it started. It is for the leader's purge job.
func (s *FS) PurgeUploads(_ context.Context, olderThan time.Time) (int, error) {
	n := s.pending.purge(olderThan, time.Now())
	entries, err := os.ReadDir(filepath.Join(s.root, "uploads"))
	if err != nil {
		return n, err
	}
	for _, e := range entries {
		id, ok := strings.CutSuffix(e.Name(), ".json")
		if !ok {
			continue
		}
		state, data, err := s.uploadPaths(id)
		if err != nil {
			continue
		}
		st, err := s.readState(state)
		if err == nil && !lastActivity(st.Started, state, data).Before(olderThan) {
			continue
		}
		s.removeSession(state, data)
		n++
	}
	return n, nil
}

// lastActivity is the latest of a session's start and its files' last
// writes (every chunk rewrites the state and appends to the data).
func lastActivity(started time.Time, paths ...string) time.Time {
	last := started
	for _, p := range paths {
		if fi, err := os.Stat(p); err == nil && fi.ModTime().After(last) {
			last = fi.ModTime()
		}
	}
	return last
}
