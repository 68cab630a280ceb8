package s3

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/minio/minio-go/v7"
	"github.com/opencontainers/go-digest"

	"github.com/berth-registry/berth/blob"
)

// S3's rules for a server-side compose: every source but the last at
// least 5 MiB, at most 10,000 parts (one per 5 GiB of a source).
const (
	minComposePart = 5 << 20
	maxParts       = 10000
)

// Commit verifies d against the session and puts the bytes in place:
//
//   - d in the session's algorithm is checked against the stored hash
//     state, with no I/O; another algorithm is checked by streaming the
//     chunks through that hash.
//   - If S3 can compose the chunks (all but the last >= 5 MiB), the blob is
//     composed server-side from them; the bytes never pass through a node.
//   - Otherwise the chunks stream through this node into the verified write
//     path of Put (memory or tmp/, then a server-side copy).
//
// A digest mismatch removes the session, as the filesystem store does.
// Retrying a Commit that failed after the blob landed finds the blob and
// only removes the session.
func (s *Store) Commit(ctx context.Context, repo, id string, d digest.Digest) (blob.Info, error) {
	if err := checkDigest(d); err != nil {
		return blob.Info{}, err
	}
	st, etag, err := s.load(ctx, repo, id)
	if err != nil {
		return blob.Info{}, err
	}
	stored := etag != ""
	mismatch := func(got digest.Digest) (blob.Info, error) {
		if err := s.removeSession(ctx, id, stored); err != nil {
			s.logger.Warn("s3: remove failed upload", "id", id, "err", err)
		}
		return blob.Info{}, fmt.Errorf("%w: uploaded content is %s", blob.ErrDigestMismatch, got)
	}
	sameAlg := d.Algorithm() == st.Algorithm
	if sameAlg {
		h, err := st.hash()
		if err != nil {
			return blob.Info{}, err
		}
		if got := digest.NewDigest(st.Algorithm, h); got != d {
			return mismatch(got)
		}
	}
	_, err = s.Stat(ctx, d)
	exists := err == nil
	if err != nil && !errors.Is(err, blob.ErrNotFound) {
		return blob.Info{}, err
	}

	if exists || composable(st.Chunks) {
		if !sameAlg {
			h, err := newHash(d.Algorithm())
			if err != nil {
				return blob.Info{}, err
			}
			rc := s.chunkReader(ctx, id, st.Chunks)
			_, err = io.Copy(h, rc)
			rc.Close()
			if err != nil {
				return blob.Info{}, fmt.Errorf("hash upload %s: %w", id, err)
			}
			if got := digest.NewDigest(d.Algorithm(), h); got != d {
				return mismatch(got)
			}
		}
		if !exists {
			if err := s.compose(ctx, id, st.Chunks, s.blobKey(d)); err != nil {
				return blob.Info{}, fmt.Errorf("s3 commit upload %s: %w", id, err)
			}
		}
	} else {
		h, err := newHash(d.Algorithm())
		if err != nil {
			return blob.Info{}, err
		}
		rc := s.chunkReader(ctx, id, st.Chunks)
		_, err = s.write(ctx, d, st.Offset, &hashReader{ctx: ctx, r: rc, h: h})
		rc.Close()
		if errors.Is(err, blob.ErrDigestMismatch) {
			return mismatch(digest.NewDigest(d.Algorithm(), h))
		}
		if errors.Is(err, blob.ErrSizeMismatch) {
			return blob.Info{}, fmt.Errorf("upload %s is damaged (%w); cancel it and upload again", id, err)
		}
		if err != nil {
			return blob.Info{}, fmt.Errorf("s3 commit upload %s: %w", id, err)
		}
	}
	if err := s.removeSession(ctx, id, stored); err != nil {
		s.logger.Warn("s3: remove committed upload; PurgeUploads retries", "id", id, "err", err)
	}
	return blob.Info{Digest: d, Size: st.Offset}, nil
}

// composable reports whether S3 accepts these chunks as compose sources.
func composable(chunks []chunk) bool {
	if len(chunks) == 0 {
		return false
	}
	parts := 0
	for i, c := range chunks {
		if i < len(chunks)-1 && c.Size < minComposePart {
			return false
		}
		parts += int((c.Size + maxCopySize - 1) / maxCopySize)
	}
	return parts <= maxParts
}

// compose concatenates the chunks into key server-side, each source pinned
// to the ETag its Append recorded: the result is exactly the hashed bytes.
func (s *Store) compose(ctx context.Context, id string, chunks []chunk, key string) error {
	if len(chunks) == 1 {
		c := chunks[0]
		return s.promote(ctx, s.sessionDir(id)+c.Name, c.ETag, key, c.Size)
	}
	srcs := make([]minio.CopySrcOptions, len(chunks))
	for i, c := range chunks {
		srcs[i] = minio.CopySrcOptions{Bucket: s.bucket, Object: s.sessionDir(id) + c.Name, MatchETag: c.ETag}
	}
	if _, err := s.c.ComposeObject(ctx, minio.CopyDestOptions{Bucket: s.bucket, Object: key}, srcs...); err != nil {
		return fmt.Errorf("compose %d chunks: %w", len(chunks), err)
	}
	return nil
}

// chunkReader reads a session's chunks in order, one GET each, checking
// every chunk is as long as its Append recorded.
func (s *Store) chunkReader(ctx context.Context, id string, chunks []chunk) io.ReadCloser {
	return &chunksReader{ctx: ctx, s: s, dir: s.sessionDir(id), chunks: chunks}
}

type chunksReader struct {
	ctx    context.Context
	s      *Store
	dir    string
	chunks []chunk
	cur    *minio.Object
	n      int64 // read from cur
}

func (r *chunksReader) Read(p []byte) (int, error) {
	for {
		if len(r.chunks) == 0 {
			return 0, io.EOF
		}
		c := r.chunks[0]
		if r.cur == nil {
			opts := minio.GetObjectOptions{}
			if c.ETag != "" {
				opts.SetMatchETag(c.ETag)
			}
			obj, err := r.s.c.GetObject(r.ctx, r.s.bucket, r.dir+c.Name, opts)
			if err != nil {
				return 0, fmt.Errorf("read upload chunk %s: %w", c.Name, err)
			}
			r.cur, r.n = obj, 0
		}
		n, err := r.cur.Read(p)
		r.n += int64(n)
		if err == io.EOF {
			r.cur.Close()
			r.cur = nil
			if r.n != c.Size {
				return n, fmt.Errorf("upload chunk %s holds %d bytes, expected %d", c.Name, r.n, c.Size)
			}
			r.chunks = r.chunks[1:]
			if n == 0 {
				continue
			}
			return n, nil
		}
		if err != nil {
			if notFound(err) {
				err = fmt.Errorf("upload chunk %s is missing: %w", c.Name, err)
			}
			return n, fmt.Errorf("read upload chunk %s: %w", c.Name, err)
		}
		return n, nil
	}
}

func (r *chunksReader) Close() error {
	if r.cur != nil {
		r.cur.Close()
		r.cur = nil
	}
	return nil
}
