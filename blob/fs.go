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
	"hash/fnv"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"sync"
	"time"

	"github.com/opencontainers/go-digest"
)

// FS stores blobs on the local filesystem, for a single node.
//
// Layout under root (docs/design.md):
//
//	blobs/<alg>/<hh>/<hex>   content, written once, visible only by rename
//	uploads/<id>/data        bytes received so far
//	uploads/<id>/state       offset, algorithm and hash state (JSON)
//	tmp/                     files on their way into blobs/
//
// Every write is fsync'd before it is acknowledged, and every rename's
// directory is fsync'd after, so a kill -9 leaves either the whole blob or
// nothing.
type FS struct {
	root   string
	logger *slog.Logger
	locks  [64]sync.Mutex // striped per-upload locks
	bufs   sync.Pool
}

var _ Store = (*FS)(nil)

// NewFS opens (creating if needed) a store under root and discards what a
// crash left in tmp/.
func NewFS(root string, logger *slog.Logger) (*FS, error) {
	s := &FS{root: root, logger: logger}
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
	tmp, err := os.CreateTemp(filepath.Join(s.root, "tmp"), "put-*")
	if err != nil {
		return Info{}, fmt.Errorf("create temp file: %w", err)
	}
	defer os.Remove(tmp.Name()) // no-op after a successful rename
	defer tmp.Close()
	n, err := s.copy(ctx, io.MultiWriter(tmp, h), r)
	if err != nil {
		return Info{}, err
	}
	info, err := s.check(d, size, n, h)
	if err != nil {
		return Info{}, err
	}
	if err := tmp.Sync(); err != nil {
		return Info{}, fmt.Errorf("sync blob: %w", err)
	}
	if err := s.place(tmp.Name(), final); err != nil {
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
type uploadState struct {
	Offset    int64            `json:"offset"`
	Algorithm digest.Algorithm `json:"algorithm"`
	Started   time.Time        `json:"started"`
	Hash      []byte           `json:"hash"` // encoding.BinaryMarshaler state
}

var uploadIDRe = regexp.MustCompile(`^[0-9a-f]{32}$`)

func (s *FS) uploadDir(id string) (string, error) {
	if !uploadIDRe.MatchString(id) {
		return "", ErrUploadUnknown
	}
	return filepath.Join(s.root, "uploads", id), nil
}

func (s *FS) lock(id string) func() {
	h := fnv.New32a()
	h.Write([]byte(id))
	m := &s.locks[h.Sum32()%uint32(len(s.locks))]
	m.Lock()
	return m.Unlock
}

func (s *FS) StartUpload(_ context.Context, alg digest.Algorithm) (UploadStatus, error) {
	h, err := newHash(alg)
	if err != nil {
		return UploadStatus{}, err
	}
	raw := make([]byte, 16)
	rand.Read(raw)
	id := hex.EncodeToString(raw)
	dir := filepath.Join(s.root, "uploads", id)
	if err := os.Mkdir(dir, 0o700); err != nil {
		return UploadStatus{}, fmt.Errorf("create upload: %w", err)
	}
	f, err := os.OpenFile(filepath.Join(dir, "data"), os.O_CREATE|os.O_WRONLY|os.O_EXCL, 0o600)
	if err != nil {
		return UploadStatus{}, fmt.Errorf("create upload data: %w", err)
	}
	f.Close()
	st := uploadState{Algorithm: alg, Started: time.Now().UTC()}
	// An empty session is not fsync'd: if a crash loses it, the client's
	// next request gets BLOB_UPLOAD_UNKNOWN and starts over; no
	// acknowledged byte is lost. Sessions holding data are synced.
	if err := s.writeState(dir, st, h, false); err != nil {
		return UploadStatus{}, err
	}
	return UploadStatus{ID: id, Algorithm: alg, Started: st.Started}, nil
}

func (s *FS) readState(dir string) (uploadState, error) {
	b, err := os.ReadFile(filepath.Join(dir, "state"))
	if errors.Is(err, fs.ErrNotExist) {
		return uploadState{}, ErrUploadUnknown
	}
	if err != nil {
		return uploadState{}, fmt.Errorf("read upload state: %w", err)
	}
	var st uploadState
	if err := json.Unmarshal(b, &st); err != nil {
		return uploadState{}, fmt.Errorf("corrupt upload state: %w", err)
	}
	return st, nil
}

func (s *FS) saveState(dir string, st uploadState, h hash.Hash) error {
	return s.writeState(dir, st, h, true)
}

// writeState replaces the state file atomically, durably when sync is set.
func (s *FS) writeState(dir string, st uploadState, h hash.Hash, sync bool) error {
	hs, err := h.(encoding.BinaryMarshaler).MarshalBinary()
	if err != nil {
		return fmt.Errorf("save hash state: %w", err)
	}
	st.Hash = hs
	b, _ := json.Marshal(st)
	tmp := filepath.Join(dir, "state.tmp")
	if sync {
		err = writeFileSync(tmp, b)
	} else {
		err = os.WriteFile(tmp, b, 0o600)
	}
	if err != nil {
		return fmt.Errorf("save upload state: %w", err)
	}
	if err := os.Rename(tmp, filepath.Join(dir, "state")); err != nil {
		return fmt.Errorf("save upload state: %w", err)
	}
	if !sync {
		return nil
	}
	return syncDir(dir)
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

func (s *FS) UploadStatus(_ context.Context, id string) (UploadStatus, error) {
	dir, err := s.uploadDir(id)
	if err != nil {
		return UploadStatus{}, err
	}
	st, err := s.readState(dir)
	if err != nil {
		return UploadStatus{}, err
	}
	return UploadStatus{ID: id, Offset: st.Offset, Algorithm: st.Algorithm, Started: st.Started}, nil
}

func (s *FS) Append(ctx context.Context, id string, offset int64, r io.Reader) (int64, error) {
	dir, err := s.uploadDir(id)
	if err != nil {
		return 0, err
	}
	defer s.lock(id)()
	st, err := s.readState(dir)
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
	f, err := os.OpenFile(filepath.Join(dir, "data"), os.O_WRONLY, 0)
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
	if err := s.saveState(dir, st, h); err != nil {
		return 0, err
	}
	return st.Offset, nil
}

func (s *FS) Commit(ctx context.Context, id string, d digest.Digest) (Info, error) {
	if err := d.Validate(); err != nil {
		return Info{}, fmt.Errorf("%w: %v", ErrDigestInvalid, err)
	}
	if !Supported(d.Algorithm()) {
		return Info{}, fmt.Errorf("%w: %s", ErrUnsupported, d.Algorithm())
	}
	dir, err := s.uploadDir(id)
	if err != nil {
		return Info{}, err
	}
	defer s.lock(id)()
	st, err := s.readState(dir)
	if err != nil {
		return Info{}, err
	}
	data := filepath.Join(dir, "data")
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
		os.RemoveAll(dir)
		return Info{}, fmt.Errorf("%w: uploaded content is %s", ErrDigestMismatch, got)
	}
	if _, err := os.Stat(s.blobPath(d)); err != nil {
		if err := s.place(data, s.blobPath(d)); err != nil {
			return Info{}, err
		}
	}
	if err := os.RemoveAll(dir); err != nil {
		s.logger.Warn("remove finished upload", "id", id, "err", err)
	}
	return Info{Digest: d, Size: st.Offset}, nil
}

func (s *FS) CancelUpload(_ context.Context, id string) error {
	dir, err := s.uploadDir(id)
	if err != nil {
		return err
	}
	defer s.lock(id)()
	if _, err := os.Stat(filepath.Join(dir, "state")); err != nil {
		return ErrUploadUnknown
	}
	return os.RemoveAll(dir)
}

// PurgeUploads removes sessions started before olderThan (abandoned
// uploads). It is for the leader's purge job.
func (s *FS) PurgeUploads(_ context.Context, olderThan time.Time) (int, error) {
	entries, err := os.ReadDir(filepath.Join(s.root, "uploads"))
	if err != nil {
		return 0, err
	}
	n := 0
	for _, e := range entries {
		dir := filepath.Join(s.root, "uploads", e.Name())
		st, err := s.readState(dir)
		if err == nil && !st.Started.Before(olderThan) {
			continue
		}
		if os.RemoveAll(dir) == nil {
			n++
		}
	}
	return n, nil
}
