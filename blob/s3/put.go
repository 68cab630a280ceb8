package s3

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/sha512"
	"errors"
	"fmt"
	"hash"
	"io"

	"github.com/minio/minio-go/v7"
	"github.com/opencontainers/go-digest"

	"github.com/berth-registry/berth/blob"
)

// Put verifies content against d while streaming it in. A blob that is
// already stored is not written again, but the client's bytes are still
// read and checked, so a wrong upload is reported as wrong.
func (s *Store) Put(ctx context.Context, d digest.Digest, size int64, r io.Reader) (blob.Info, error) {
	if err := checkDigest(d); err != nil {
		return blob.Info{}, err
	}
	h, err := newHash(d.Algorithm())
	if err != nil {
		return blob.Info{}, err
	}
	hr := &hashReader{ctx: ctx, r: r, h: h}
	if _, err := s.Stat(ctx, d); err == nil {
		if _, err := io.Copy(io.Discard, hr); err != nil {
			return blob.Info{}, fmt.Errorf("receive blob: %w", err)
		}
		return check(d, size, hr.n, h)
	} else if !errors.Is(err, blob.ErrNotFound) {
		return blob.Info{}, err
	}
	return s.write(ctx, d, size, hr)
}

// write stores what hr yields under d, if it hashes to d (and is size
// bytes long, unless size < 0). hr must hash with d's algorithm and not
// have been read yet.
//
// Up to partSize bytes are read into memory first. If that is all there
// is, it is verified and sent as one PutObject to the final key; bytes
// from memory can also be retried and checksummed by the client library.
// Anything larger streams (partSize parts, multipart) to a tmp/ key while
// being hashed, and is copied server-side to the final key only once the
// digest matched; the tmp/ object is removed either way.
func (s *Store) write(ctx context.Context, d digest.Digest, size int64, hr *hashReader) (blob.Info, error) {
	head, complete, err := readHead(hr, partSize, size)
	if err != nil {
		return blob.Info{}, fmt.Errorf("receive blob: %w", err)
	}
	if size >= 0 && int64(len(head)) > size {
		return blob.Info{}, fmt.Errorf("%w: more than the declared %d bytes", blob.ErrSizeMismatch, size)
	}
	final := s.blobKey(d)
	if complete {
		info, err := check(d, size, hr.n, hr.h)
		if err != nil {
			return blob.Info{}, err
		}
		if _, err := s.c.PutObject(ctx, s.bucket, final, bytes.NewReader(head), int64(len(head)), minio.PutObjectOptions{
			ContentType: "application/octet-stream",
		}); err != nil {
			return blob.Info{}, fmt.Errorf("s3 put %s: %w", d, err)
		}
		return info, nil
	}

	tmp := s.tmpKey()
	defer s.removeKey(ctx, tmp)
	body := io.MultiReader(bytes.NewReader(head), hr)
	if size >= 0 {
		// Exactly size bytes go to S3; anything after is found below.
		body = io.LimitReader(body, size)
	}
	ui, err := s.c.PutObject(ctx, s.bucket, tmp, body, size, minio.PutObjectOptions{
		ContentType: "application/octet-stream", PartSize: partSize,
	})
	switch {
	case hr.err != nil:
		return blob.Info{}, fmt.Errorf("receive blob: %w", hr.err)
	case size >= 0 && hr.eof && hr.n < size:
		return blob.Info{}, fmt.Errorf("%w: got %d bytes, expected %d", blob.ErrSizeMismatch, hr.n, size)
	case err != nil:
		return blob.Info{}, fmt.Errorf("s3 put %s: %w", d, err)
	case ui.Size != hr.n:
		return blob.Info{}, fmt.Errorf("s3 put %s: stored %d of %d bytes", d, ui.Size, hr.n)
	}
	if size >= 0 {
		var one [1]byte
		if n, _ := io.ReadFull(hr, one[:]); n > 0 {
			return blob.Info{}, fmt.Errorf("%w: more than the declared %d bytes", blob.ErrSizeMismatch, size)
		}
		if hr.err != nil {
			return blob.Info{}, fmt.Errorf("receive blob: %w", hr.err)
		}
	}
	info, err := check(d, size, ui.Size, hr.h)
	if err != nil {
		return blob.Info{}, err
	}
	if err := s.promote(ctx, tmp, ui.ETag, final, ui.Size); err != nil {
		return blob.Info{}, fmt.Errorf("s3 put %s: %w", d, err)
	}
	return info, nil
}

// promote copies a verified object to its final key server-side. The copy
// is pinned to the source's ETag, so it copies the very bytes that were
// verified; S3 makes the destination appear whole or not at all.
func (s *Store) promote(ctx context.Context, src, etag, dst string, size int64) error {
	from := minio.CopySrcOptions{Bucket: s.bucket, Object: src, MatchETag: etag}
	to := minio.CopyDestOptions{Bucket: s.bucket, Object: dst}
	var err error
	if size <= maxCopySize {
		_, err = s.c.CopyObject(ctx, to, from)
	} else {
		_, err = s.c.ComposeObject(ctx, to, from)
	}
	if err != nil {
		return fmt.Errorf("copy %s to %s: %w", src, dst, err)
	}
	return nil
}

// check compares what was received with what was promised.
func check(d digest.Digest, size, n int64, h hash.Hash) (blob.Info, error) {
	if size >= 0 && n != size {
		return blob.Info{}, fmt.Errorf("%w: got %d bytes, expected %d", blob.ErrSizeMismatch, n, size)
	}
	if got := digest.NewDigest(d.Algorithm(), h); got != d {
		return blob.Info{}, fmt.Errorf("%w: content is %s", blob.ErrDigestMismatch, got)
	}
	return blob.Info{Digest: d, Size: n}, nil
}

// newHash is a private copy of the blob package's unexported helper.
func newHash(alg digest.Algorithm) (hash.Hash, error) {
	switch alg {
	case digest.SHA256:
		return sha256.New(), nil
	case digest.SHA512:
		return sha512.New(), nil
	}
	return nil, fmt.Errorf("%w: %q (use sha256 or sha512)", blob.ErrUnsupported, alg)
}

// hashReader hashes and counts what is read through it, remembers how the
// source ended, and stops once ctx is done.
type hashReader struct {
	ctx context.Context
	r   io.Reader
	h   hash.Hash
	n   int64
	eof bool
	err error // a failure of the source, not io.EOF
}

func (hr *hashReader) Read(p []byte) (int, error) {
	if err := hr.ctx.Err(); err != nil {
		return 0, err
	}
	n, err := hr.r.Read(p)
	hr.h.Write(p[:n])
	hr.n += int64(n)
	switch {
	case err == io.EOF:
		hr.eof = true
	case err != nil:
		hr.err = err
	}
	return n, err
}

// firstRead is readHead's first buffer: most blobs of a registry (configs,
// manifests, small layers) fit, and it is small enough that a request
// that never sends its bytes costs little.
const firstRead = 64 << 10

// readHead reads up to limit bytes. complete says r ended within them;
// otherwise limit+1 bytes were read and more may follow. want, if >= 0, is
// the length the client declared, used only to size the buffer, never to
// allocate ahead of the bytes: the buffer starts at firstRead and at most
// doubles as it fills, so memory follows what actually arrived (at most
// twice it, plus firstRead), whatever Content-Length a client claims; it
// is then trimmed to want+1 when that is smaller, so an honest client's
// blob is not copied into a buffer twice its size.
func readHead(r io.Reader, limit int, want int64) (head []byte, complete bool, err error) {
	grow := func(filled int) int {
		c := max(2*filled, firstRead)
		if want >= 0 && int64(filled) <= want && want < int64(c) {
			c = int(want) + 1
		}
		return min(c, limit+1)
	}
	buf := make([]byte, 0, grow(0))
	for {
		if len(buf) == cap(buf) {
			if len(buf) > limit {
				return buf, false, nil
			}
			grown := make([]byte, len(buf), grow(len(buf)))
			copy(grown, buf)
			buf = grown
		}
		n, err := r.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if err == io.EOF {
			return buf, true, nil
		}
		if err != nil {
			return nil, false, err
		}
	}
}
