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
	"regexp"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/opencontainers/go-digest"

	"github.com/berth-registry/berth/blob"
)

// session is an upload's durable state, kept in the bucket so that any node
// can take the next request (rule 7). Hash is the marshaled hash state
// after exactly the bytes of Chunks, in order.
type session struct {
	Offset    int64            `json:"offset"`
	Algorithm digest.Algorithm `json:"algorithm"`
	Started   time.Time        `json:"started"`
	Hash      []byte           `json:"hash"`
	Chunks    []chunk          `json:"chunks"`
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

var idRe = regexp.MustCompile(`^[0-9a-f]{32}$`)

// errDamaged means a state object does not decode.
var errDamaged = errors.New("damaged upload state")

// errConflict means the state changed (or vanished) between load and save.
var errConflict = errors.New("upload state changed concurrently")

func (s *Store) sessionDir(id string) string { return s.prefix + "uploads/" + id + "/" }
func (s *Store) stateKey(id string) string   { return s.sessionDir(id) + "state" }

func (st *session) hash() (hash.Hash, error) {
	h, err := newHash(st.Algorithm)
	if err != nil {
		return nil, err
	}
	if err := h.(encoding.BinaryUnmarshaler).UnmarshalBinary(st.Hash); err != nil {
		return nil, fmt.Errorf("restore hash state: %w", err)
	}
	return h, nil
}

// load reads a session and the ETag of exactly that version, which the
// next save must match.
func (s *Store) load(ctx context.Context, id string) (session, string, error) {
	if !idRe.MatchString(id) {
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
			return session{}, "", blob.ErrUploadUnknown
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

func (s *Store) StartUpload(ctx context.Context, alg digest.Algorithm) (blob.UploadStatus, error) {
	h, err := newHash(alg)
	if err != nil {
		return blob.UploadStatus{}, err
	}
	id := newID()
	st := session{Algorithm: alg, Started: time.Now().UTC()}
	if err := s.save(ctx, id, st, h, ""); err != nil {
		return blob.UploadStatus{}, err
	}
	return blob.UploadStatus{ID: id, Algorithm: alg, Started: st.Started}, nil
}

func (s *Store) UploadStatus(ctx context.Context, id string) (blob.UploadStatus, error) {
	st, _, err := s.load(ctx, id)
	if err != nil {
		return blob.UploadStatus{}, err
	}
	return blob.UploadStatus{ID: id, Offset: st.Offset, Algorithm: st.Algorithm, Started: st.Started}, nil
}

// Append stores the chunk as its own object while hashing it, then
// advances the state with a conditional write. A chunk that fails, or
// whose state update loses a race, never counts: the loser removes its
// object and gets an *OffsetError with the winner's offset.
func (s *Store) Append(ctx context.Context, id string, offset int64, r io.Reader) (int64, error) {
	st, etag, err := s.load(ctx, id)
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
		cur, _, err := s.load(ctx, id)
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

func (s *Store) CancelUpload(ctx context.Context, id string) error {
	if _, _, err := s.load(ctx, id); err != nil && !errors.Is(err, errDamaged) {
		return err
	}
	return s.removeSession(ctx, id)
}

// removeSession deletes the state first, so the session is gone at once
// for every node, then its chunks. Leftovers from a failure here are
// found by PurgeUploads.
func (s *Store) removeSession(ctx context.Context, id string) error {
	ctx, cancel := cleanupCtx(ctx)
	defer cancel()
	if err := s.c.RemoveObject(ctx, s.bucket, s.stateKey(id), minio.RemoveObjectOptions{}); err != nil {
		return fmt.Errorf("s3 remove upload %s: %w", id, err)
	}
	return s.removeAll(ctx, s.sessionDir(id), time.Time{})
}

// removeAll deletes every object under prefix, or with before set only
// those last modified before it.
func (s *Store) removeAll(ctx context.Context, prefix string, before time.Time) error {
	var listErr error
	objs := func(yield func(minio.ObjectInfo) bool) {
		for o := range s.c.ListObjectsIter(ctx, s.bucket, minio.ListObjectsOptions{Prefix: prefix, Recursive: true}) {
			if o.Err != nil {
				listErr = o.Err
				return
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
