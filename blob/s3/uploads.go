package s3

import (
	"bytes"
	"context"
	"encoding"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"net/http"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/opencontainers/go-digest"

	"github.com/berth-registry/berth/blob"
)

// session is an upload's durable state, kept in the bucket so that any node
// can take the next request (rule 7). Hash is the marshaled hash state
// after exactly the bytes of Chunks, in order.
type session struct {
	// Repo is the repository the session belongs to (sessionid.go).
	Repo      string           `json:"repo,omitempty"`
	Offset    int64            `json:"offset"`
	Algorithm digest.Algorithm `json:"algorithm"`
	Started   time.Time        `json:"started"`
	Hash      []byte           `json:"hash"`
	Chunks    []chunk          `json:"chunks"`
	// Cancelled marks a tombstone: the session of a signed ID that ended,
	// so that the ID, still valid as a signature, is unknown from then on.
	Cancelled bool `json:"cancelled,omitempty"`
}

// chunk is one appended object. Names carry the offset (so a listing reads
// in order) and a random suffix: two nodes racing to append at the same
// offset write different objects, so the loser can never overwrite the
// bytes the winner's state points at.
type chunk struct {
	Name string `json:"name"`
	Size int64  `json:"size"`
	ETag string `json:"etag"`
}

// maxStateSize bounds what load reads; a state holds ~100 bytes per chunk.
const maxStateSize = 8 << 20

// errDamaged means a state object does not decode.
var errDamaged = errors.New("damaged upload state")

// errConflict means the state changed (or vanished) between load and save.
var errConflict = errors.New("upload state changed concurrently")

func (s *Store) sessionDir(id string) string { return s.prefix + "uploads/" + id + "/" }
func (s *Store) stateKey(id string) string   { return s.sessionDir(id) + "state" }

// hash resumes the session's hash; a session with no state yet (a signed
// empty session) starts a fresh one.
func (st *session) hash() (hash.Hash, error) {
	h, err := newHash(st.Algorithm)
	if err != nil || len(st.Hash) == 0 {
		return h, err
	}
	if err := h.(encoding.BinaryUnmarshaler).UnmarshalBinary(st.Hash); err != nil {
		return nil, fmt.Errorf("restore hash state: %w", err)
	}
	return h, nil
}

// load reads a session of repo and the ETag of exactly that version, which
// the next save must match. A signed ID with no state object is an empty
// session, returned with an empty ETag: the first save creates the state.
// A session of another repository is unknown.
func (s *Store) load(ctx context.Context, repo, id string) (session, string, error) {
	st, etag, err := s.loadState(ctx, id)
	switch {
	case errors.Is(err, errNoState):
		if st, ok := s.emptySession(repo, id, s.now()); ok {
			return st, "", nil
		}
		return session{}, "", blob.ErrUploadUnknown
	case errors.Is(err, errDamaged):
		if _, ok := s.signedFor(repo, id); !ok {
			return session{}, "", blob.ErrUploadUnknown
		}
		return session{}, "", err
	case err != nil:
		return session{}, "", err
	case st.Cancelled || st.Repo == "" || st.Repo != repo:
		return session{}, "", blob.ErrUploadUnknown
	}
	return st, etag, nil
}

// errNoState means a session has no state object.
var errNoState = errors.New("no upload state")

// loadState reads a session's state object, whatever its repository.
func (s *Store) loadState(ctx context.Context, id string) (session, string, error) {
	if !validID(id) {
		return session{}, "", blob.ErrUploadUnknown
	}
	obj, err := s.c.GetObject(ctx, s.bucket, s.stateKey(id), minio.GetObjectOptions{})
	if err != nil {
		return session{}, "", fmt.Errorf("s3 read upload %s: %w", id, err)
	}
	defer obj.Close()
	b, err := io.ReadAll(io.LimitReader(obj, maxStateSize))
	if err != nil {
		if notFound(err) {
			return session{}, "", errNoState
		}
		return session{}, "", fmt.Errorf("s3 read upload %s: %w", id, err)
	}
	oi, err := obj.Stat() // from the same GET response: the ETag of b
	if err != nil {
		return session{}, "", fmt.Errorf("s3 read upload %s: %w", id, err)
	}
	var st session
	if err := json.Unmarshal(b, &st); err != nil {
		return session{}, "", fmt.Errorf("upload %s: %w: %v (cancel it and upload again)", id, errDamaged, err)
	}
	return st, oi.ETag, nil
}

// save writes the state with h's current hash state. With etag set the
// write succeeds only if the state is still the version that was loaded
// (If-Match), so two nodes racing on one session cannot both advance it;
// with etag empty it succeeds only if there is no state yet
// (If-None-Match: *). MinIO has honoured both on PutObject since 2024; the
// tests check it against the pinned server.
func (s *Store) save(ctx context.Context, id string, st session, h hash.Hash, etag string) error {
	hs, err := h.(encoding.BinaryMarshaler).MarshalBinary()
	if err != nil {
		return fmt.Errorf("save hash state: %w", err)
	}
	st.Hash = hs
	b, err := json.Marshal(st)
	if err != nil {
		return fmt.Errorf("encode upload state: %w", err)
	}
	opts := minio.PutObjectOptions{ContentType: "application/json"}
	if etag != "" {
		opts.SetMatchETag(etag)
	} else {
		opts.SetMatchETagExcept("*")
	}
	if _, err := s.c.PutObject(ctx, s.bucket, s.stateKey(id), bytes.NewReader(b), int64(len(b)), opts); err != nil {
		if r := minio.ToErrorResponse(err); r.StatusCode == http.StatusPreconditionFailed || notFound(err) {
			return errConflict
		}
		return fmt.Errorf("s3 save upload %s: %w", id, err)
	}
	return nil
}

// StartUpload costs no request: see sessionid.go.
func (s *Store) StartUpload(_ context.Context, repo string, alg digest.Algorithm) (blob.UploadStatus, error) {
	if _, err := newHash(alg); err != nil {
		return blob.UploadStatus{}, err
	}
	started := s.now().UTC().Truncate(time.Millisecond)
	return blob.UploadStatus{ID: s.newSignedID(repo, alg, started), Algorithm: alg, Started: started}, nil
}

func (s *Store) UploadStatus(ctx context.Context, repo, id string) (blob.UploadStatus, error) {
	st, _, err := s.load(ctx, repo, id)
	if err != nil {
		return blob.UploadStatus{}, err
	}
	return blob.UploadStatus{ID: id, Offset: st.Offset, Algorithm: st.Algorithm, Started: st.Started}, nil
}

// Append stores the chunk as its own object while hashing it, then
// advances the state with a conditional write. A chunk that fails, or
// whose state update loses a race, never counts: the loser removes its
// object and gets an *OffsetError with the winner's offset.
func (s *Store) Append(ctx context.Context, repo, id string, offset int64, r io.Reader) (int64, error) {
	st, etag, err := s.load(ctx, repo, id)
	if err != nil {
		return 0, err
	}
	if offset != st.Offset {
		return 0, &blob.OffsetError{Current: st.Offset}
	}
	h, err := st.hash()
	if err != nil {
		return 0, err
	}
	name := fmt.Sprintf("chunk-%020d-%s", offset, newID()[:8])
	key := s.sessionDir(id) + name
	hr := &hashReader{ctx: ctx, r: r, h: h}
	size, etagChunk, err := s.putChunk(ctx, key, hr)
	if err != nil {
		s.removeKey(ctx, key)
		return 0, err
	}
	if size == 0 {
		return st.Offset, nil
	}
	st.Chunks = append(st.Chunks, chunk{Name: name, Size: size, ETag: etagChunk})
	st.Offset += size
	err = s.save(ctx, id, st, h, etag)
	if errors.Is(err, errConflict) {
		s.removeKey(ctx, key)
		cur, _, err := s.load(ctx, repo, id)
		if err != nil {
			return 0, err
		}
		return 0, &blob.OffsetError{Current: cur.Offset}
	}
	if err != nil {
		// The write may have landed even so: keep the chunk, which the
		// session's removal cleans up if it is not listed.
		return 0, err
	}
	return st.Offset, nil
}

// putChunk stores hr's bytes at key: from memory in one request if they
// fit in partSize, else as a multipart upload of unknown length. It
// stores nothing for an empty chunk.
func (s *Store) putChunk(ctx context.Context, key string, hr *hashReader) (int64, string, error) {
	head, complete, err := readHead(hr, partSize, -1)
	if err != nil {
		return 0, "", fmt.Errorf("receive chunk: %w", err)
	}
	if complete && len(head) == 0 {
		return 0, "", nil
	}
	var ui minio.UploadInfo
	if complete {
		ui, err = s.c.PutObject(ctx, s.bucket, key, bytes.NewReader(head), int64(len(head)), minio.PutObjectOptions{})
	} else {
		ui, err = s.c.PutObject(ctx, s.bucket, key, io.MultiReader(bytes.NewReader(head), hr), -1, minio.PutObjectOptions{PartSize: partSize})
	}
	switch {
	case hr.err != nil:
		return 0, "", fmt.Errorf("receive chunk: %w", hr.err)
	case err != nil:
		return 0, "", fmt.Errorf("s3 store chunk: %w", err)
	case ui.Size != hr.n:
		return 0, "", fmt.Errorf("s3 store chunk: stored %d of %d bytes", ui.Size, hr.n)
	}
	return ui.Size, ui.ETag, nil
}

// PutUpload of a signed empty session costs one GET that finds no state,
// then Put; it leaves no tombstone (see sessionid.go).
func (s *Store) PutUpload(ctx context.Context, repo, id string, d digest.Digest, size int64, r io.Reader) (blob.Info, error) {
	st, etag, err := s.load(ctx, repo, id)
	if err != nil {
		return blob.Info{}, err
	}
	if st.Offset > 0 {
		return blob.Info{}, blob.ErrUploadNotEmpty
	}
	info, err := s.Put(ctx, d, size, r)
	if etag != "" {
		// A legacy session's state, written at its start.
		if rerr := s.removeSession(ctx, id, true); rerr != nil {
			s.logger.Warn("s3: remove finished upload; PurgeUploads retries", "id", id, "err", rerr)
		}
	}
	return info, err
}

func (s *Store) CancelUpload(ctx context.Context, repo, id string) error {
	_, etag, err := s.load(ctx, repo, id)
	if err != nil && !errors.Is(err, errDamaged) {
		return err
	}
	return s.removeSession(ctx, id, err != nil || etag != "")
}

// removeSession ends a session for every node at once, then deletes its
// chunks (stored says there may be some). A signed ID gets a tombstone
// state, since its signature stays valid; a legacy ID's state is deleted.
// Leftovers from a failure here are found by PurgeUploads, which also
// removes tombstones once they are old.
func (s *Store) removeSession(ctx context.Context, id string, stored bool) error {
	ctx, cancel := cleanupCtx(ctx)
	defer cancel()
	if signedIDRe.MatchString(id) {
		b, _ := json.Marshal(session{Cancelled: true})
		if _, err := s.c.PutObject(ctx, s.bucket, s.stateKey(id), bytes.NewReader(b), int64(len(b)),
			minio.PutObjectOptions{ContentType: "application/json"}); err != nil {
			return fmt.Errorf("s3 end upload %s: %w", id, err)
		}
	} else if err := s.c.RemoveObject(ctx, s.bucket, s.stateKey(id), minio.RemoveObjectOptions{}); err != nil {
		return fmt.Errorf("s3 remove upload %s: %w", id, err)
	}
	if !stored {
		return nil
	}
	return s.removeAll(ctx, s.sessionDir(id), time.Time{}, s.stateKey(id))
}

// removeAll deletes every object under prefix but keep, or with before set
// only those last modified before it.
func (s *Store) removeAll(ctx context.Context, prefix string, before time.Time, keep string) error {
	var listErr error
	objs := func(yield func(minio.ObjectInfo) bool) {
		for o := range s.c.ListObjectsIter(ctx, s.bucket, minio.ListObjectsOptions{Prefix: prefix, Recursive: true}) {
			if o.Err != nil {
				listErr = o.Err
				return
			}
			if o.Key == keep {
				continue
			}
			if (before.IsZero() || o.LastModified.Before(before)) && !yield(o) {
				return
			}
		}
	}
	results, err := s.c.RemoveObjectsWithIter(ctx, s.bucket, objs, minio.RemoveObjectsOptions{})
	if err != nil {
		return fmt.Errorf("s3 remove %s: %w", prefix, err)
	}
	var rmErr error
	for r := range results {
		if r.Err != nil {
			rmErr = fmt.Errorf("remove %s: %w", r.ObjectName, r.Err)
		}
	}
	if err := errors.Join(listErr, rmErr); err != nil {
		return fmt.Errorf("s3 remove %s: %w", prefix, err)
	}
	return nil
}
