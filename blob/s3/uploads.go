package s3

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/sha512"
	"encoding"
	"encoding/json"
	"fmt"
	"hash"
	"io"
	"path"
	"regexp"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/opencontainers/go-digest"

	"github.com/berth-registry/berth/blob"
)

// minComposePart is S3's smallest part for a server-side compose (all but
// the last source).
const minComposePart = 5 << 20

// session is an upload's durable state, stored in the bucket so that any
// node can take the next request.
type session struct {
	Offset    int64            `json:"offset"`
	Algorithm digest.Algorithm `json:"algorithm"`
	Started   time.Time        `json:"started"`
	Hash      []byte           `json:"hash"`
	Chunks    []chunk          `json:"chunks"`
}

type chunk struct {
	Key  string `json:"key"`
	Size int64  `json:"size"`
}

var idRe = regexp.MustCompile(`^[0-9a-f]{32}$`)

func (s *Store) stateKey(id string) string { return s.prefix + "uploads/" + id + "/state" }

func newHash(alg digest.Algorithm) (hash.Hash, error) {
	switch alg {
	case digest.SHA256:
		return sha256.New(), nil
	case digest.SHA512:
		return sha512.New(), nil
	}
	return nil, fmt.Errorf("%w: %q", blob.ErrUnsupported, alg)
}

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

// load reads a session and the ETag its next save must match.
func (s *Store) load(ctx context.Context, id string) (session, string, error) {
	if !idRe.MatchString(id) {
		return session{}, "", blob.ErrUploadUnknown
	}
	obj, err := s.c.GetObject(ctx, s.bucket, s.stateKey(id), minio.GetObjectOptions{})
	if err != nil {
		return session{}, "", fmt.Errorf("s3 read upload %s: %w", id, err)
	}
	defer obj.Close()
	b, err := io.ReadAll(obj)
	if err != nil {
		if notFound(err) {
			return session{}, "", blob.ErrUploadUnknown
		}
		return session{}, "", fmt.Errorf("s3 read upload %s: %w", id, err)
	}
	oi, err := obj.Stat()
	if err != nil {
		return session{}, "", fmt.Errorf("s3 read upload %s: %w", id, err)
	}
	var st session
	if err := json.Unmarshal(b, &st); err != nil {
		return session{}, "", fmt.Errorf("corrupt upload state %s: %w", id, err)
	}
	return st, oi.ETag, nil
}

// save writes the state. With etag set, the write succeeds only if nobody
// else changed the state since it was read: two nodes racing on one
// session cannot both advance it.
func (s *Store) save(ctx context.Context, id string, st session, h hash.Hash, etag string) error {
	hs, err := h.(encoding.BinaryMarshaler).MarshalBinary()
	if err != nil {
		return err
	}
	st.Hash = hs
	b, _ := json.Marshal(st)
	opts := minio.PutObjectOptions{ContentType: "application/json"}
	if etag != "" {
		opts.SetMatchETag(etag)
	}
	if _, err := s.c.PutObject(ctx, s.bucket, s.stateKey(id), bytes.NewReader(b), int64(len(b)), opts); err != nil {
		if minio.ToErrorResponse(err).StatusCode == 412 {
			return &blob.OffsetError{Current: st.Offset}
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
// advances the state. A chunk object whose state update lost a race, or
// never happened, is simply not listed and is removed with the session.
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
	key := fmt.Sprintf("%suploads/%s/c-%020d-%s", s.prefix, id, offset, newID()[:8])
	counter := &countingReader{r: io.TeeReader(r, h)}
	if _, err := s.c.PutObject(ctx, s.bucket, key, counter, -1, minio.PutObjectOptions{PartSize: partSize}); err != nil {
		return 0, fmt.Errorf("s3 store chunk: %w", err)
	}
	if counter.n == 0 {
		s.c.RemoveObject(ctx, s.bucket, key, minio.RemoveObjectOptions{})
		return st.Offset, nil
	}
	st.Chunks = append(st.Chunks, chunk{Key: key, Size: counter.n})
	st.Offset += counter.n
	if err := s.save(ctx, id, st, h, etag); err != nil {
		s.c.RemoveObject(ctx, s.bucket, key, minio.RemoveObjectOptions{})
		return 0, err
	}
	return st.Offset, nil
}

type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

// chunks streams the session's bytes in order.
func (s *Store) chunks(ctx context.Context, st session) io.ReadCloser {
	pr, pw := io.Pipe()
	go func() {
		for _, c := range st.Chunks {
			obj, err := s.c.GetObject(ctx, s.bucket, c.Key, minio.GetObjectOptions{})
			if err != nil {
				pw.CloseWithError(err)
				return
			}
			_, err = io.Copy(pw, obj)
			obj.Close()
			if err != nil {
				pw.CloseWithError(err)
				return
			}
		}
		pw.Close()
	}()
	return pr
}

func (s *Store) Commit(ctx context.Context, id string, d digest.Digest) (blob.Info, error) {
	if err := d.Validate(); err != nil {
		return blob.Info{}, fmt.Errorf("%w: %v", blob.ErrDigestInvalid, err)
	}
	if !blob.Supported(d.Algorithm()) {
		return blob.Info{}, fmt.Errorf("%w: %s", blob.ErrUnsupported, d.Algorithm())
	}
	st, _, err := s.load(ctx, id)
	if err != nil {
		return blob.Info{}, err
	}
	var got digest.Digest
	if d.Algorithm() == st.Algorithm {
		h, err := st.hash()
		if err != nil {
			return blob.Info{}, err
		}
		got = digest.NewDigest(st.Algorithm, h)
	} else {
		rc := s.chunks(ctx, st)
		got, err = d.Algorithm().FromReader(rc)
		rc.Close()
		if err != nil {
			return blob.Info{}, fmt.Errorf("hash upload: %w", err)
		}
	}
	if got != d {
		s.removeSession(ctx, id)
		return blob.Info{}, fmt.Errorf("%w: uploaded content is %s", blob.ErrDigestMismatch, got)
	}
	if _, err := s.Stat(ctx, d); err != nil {
		if err := s.assemble(ctx, st, s.blobKey(d)); err != nil {
			return blob.Info{}, err
		}
	}
	s.removeSession(ctx, id)
	return blob.Info{Digest: d, Size: st.Offset}, nil
}

// assemble writes the concatenated chunks to key: server-side when S3's
// compose rules allow it, else by streaming through this node.
func (s *Store) assemble(ctx context.Context, st session, key string) error {
	composable := len(st.Chunks) > 0 && len(st.Chunks) <= 10000
	for i, c := range st.Chunks {
		if i < len(st.Chunks)-1 && c.Size < minComposePart {
			composable = false
		}
	}
	if composable {
		srcs := make([]minio.CopySrcOptions, len(st.Chunks))
		for i, c := range st.Chunks {
			srcs[i] = minio.CopySrcOptions{Bucket: s.bucket, Object: c.Key}
		}
		if _, err := s.c.ComposeObject(ctx, minio.CopyDestOptions{Bucket: s.bucket, Object: key}, srcs...); err != nil {
			return fmt.Errorf("s3 compose blob: %w", err)
		}
		return nil
	}
	rc := s.chunks(ctx, st)
	defer rc.Close()
	if _, err := s.c.PutObject(ctx, s.bucket, key, rc, st.Offset, minio.PutObjectOptions{PartSize: partSize}); err != nil {
		return fmt.Errorf("s3 write blob: %w", err)
	}
	return nil
}

func (s *Store) removeSession(ctx context.Context, id string) {
	prefix := s.prefix + "uploads/" + id + "/"
	for obj := range s.c.ListObjects(ctx, s.bucket, minio.ListObjectsOptions{Prefix: prefix, Recursive: true}) {
		if obj.Err != nil {
			s.logger.Warn("list upload objects", "id", id, "err", obj.Err)
			return
		}
		s.c.RemoveObject(ctx, s.bucket, obj.Key, minio.RemoveObjectOptions{})
	}
}

func (s *Store) CancelUpload(ctx context.Context, id string) error {
	if _, _, err := s.load(ctx, id); err != nil {
		return err
	}
	s.removeSession(ctx, id)
	return nil
}

// PurgeUploads removes sessions started before olderThan.
func (s *Store) PurgeUploads(ctx context.Context, olderThan time.Time) (int, error) {
	n := 0
	for obj := range s.c.ListObjects(ctx, s.bucket, minio.ListObjectsOptions{Prefix: s.prefix + "uploads/"}) {
		if obj.Err != nil {
			return n, obj.Err
		}
		id := path.Base(obj.Key)
		st, _, err := s.load(ctx, id)
		if err == nil && st.Started.Before(olderThan) {
			s.removeSession(ctx, id)
			n++
		}
	}
	return n, nil
}
