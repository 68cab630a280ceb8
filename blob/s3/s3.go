// Package s3 stores blobs in MinIO or any S3-compatible service, so that
// every node of a cluster sees the same bytes and can continue any upload
// (ARCHITECTURE.md rules 4 and 7).
package s3

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"log/slog"
	"net/http"
	"path"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
	"github.com/opencontainers/go-digest"

	"github.com/berth-registry/berth/blob"
)

// Config points the store at a bucket.
type Config struct {
	Endpoint  string
	Bucket    string
	Region    string
	AccessKey string
	SecretKey string
	Secure    bool
	PathStyle bool
	// Prefix is prepended to every key, to share a bucket.
	Prefix string
}

// partSize is the multipart part size for bodies of unknown length; it is
// also the memory one such upload holds.
const partSize = 16 << 20

// Store implements blob.Store on S3.
//
// Keys:
//
//	<prefix>blobs/<alg>/<hh>/<hex>          content, under its digest
//	<prefix>uploads/<id>/state              session state (JSON), updated with If-Match
//	<prefix>uploads/<id>/c-<offset>         one object per chunk
//
// A blob's key never holds wrong bytes: content streams to its final key
// through a reader that fails the request, instead of ending it, when the
// digest does not match, so S3 never completes the object.
type Store struct {
	c      *minio.Client
	bucket string
	prefix string
	logger *slog.Logger
}

var _ blob.Store = (*Store)(nil)

// New connects and creates the bucket if it does not exist.
func New(ctx context.Context, cfg Config, logger *slog.Logger) (*Store, error) {
	lookup := minio.BucketLookupAuto
	if cfg.PathStyle {
		lookup = minio.BucketLookupPath
	}
	c, err := minio.New(cfg.Endpoint, &minio.Options{
		Creds:        credentials.NewStaticV4(cfg.AccessKey, cfg.SecretKey, ""),
		Secure:       cfg.Secure,
		Region:       cfg.Region,
		BucketLookup: lookup,
		Transport: &http.Transport{
			Proxy:               http.ProxyFromEnvironment,
			MaxIdleConnsPerHost: 256,
			IdleConnTimeout:     90 * time.Second,
		},
	})
	if err != nil {
		return nil, fmt.Errorf("s3 client for %s: %w", cfg.Endpoint, err)
	}
	s := &Store{c: c, bucket: cfg.Bucket, prefix: cfg.Prefix, logger: logger}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	ok, err := c.BucketExists(ctx, cfg.Bucket)
	if err != nil {
		return nil, fmt.Errorf("s3 %s: checking bucket %q: %w (check storage.s3.endpoint and credentials)", cfg.Endpoint, cfg.Bucket, err)
	}
	if !ok {
		if err := c.MakeBucket(ctx, cfg.Bucket, minio.MakeBucketOptions{Region: cfg.Region}); err != nil {
			if exists, err2 := c.BucketExists(ctx, cfg.Bucket); err2 != nil || !exists {
				return nil, fmt.Errorf("create bucket %q: %w (create it by hand or grant s3:CreateBucket)", cfg.Bucket, err)
			}
		}
	}
	return s, nil
}

func (s *Store) blobKey(d digest.Digest) string {
	h := d.Encoded()
	return path.Join(s.prefix+"blobs", d.Algorithm().String(), h[:2], h)
}

func notFound(err error) bool {
	return minio.ToErrorResponse(err).Code == "NoSuchKey" || minio.ToErrorResponse(err).StatusCode == http.StatusNotFound
}

func (s *Store) Stat(ctx context.Context, d digest.Digest) (blob.Info, error) {
	if err := d.Validate(); err != nil {
		return blob.Info{}, fmt.Errorf("%w: %v", blob.ErrDigestInvalid, err)
	}
	oi, err := s.c.StatObject(ctx, s.bucket, s.blobKey(d), minio.StatObjectOptions{})
	if err != nil {
		if notFound(err) {
			return blob.Info{}, blob.ErrNotFound
		}
		return blob.Info{}, fmt.Errorf("s3 stat %s: %w", d, err)
	}
	return blob.Info{Digest: d, Size: oi.Size}, nil
}

// Open returns a seekable reader; minio's Object turns each Seek into a
// ranged GET, so a Range request downloads only what it asks for.
func (s *Store) Open(ctx context.Context, d digest.Digest) (io.ReadSeekCloser, blob.Info, error) {
	if err := d.Validate(); err != nil {
		return nil, blob.Info{}, fmt.Errorf("%w: %v", blob.ErrDigestInvalid, err)
	}
	obj, err := s.c.GetObject(ctx, s.bucket, s.blobKey(d), minio.GetObjectOptions{})
	if err != nil {
		return nil, blob.Info{}, fmt.Errorf("s3 get %s: %w", d, err)
	}
	oi, err := obj.Stat()
	if err != nil {
		obj.Close()
		if notFound(err) {
			return nil, blob.Info{}, blob.ErrNotFound
		}
		return nil, blob.Info{}, fmt.Errorf("s3 get %s: %w", d, err)
	}
	return obj, blob.Info{Digest: d, Size: oi.Size}, nil
}

func (s *Store) Put(ctx context.Context, d digest.Digest, size int64, r io.Reader) (blob.Info, error) {
	if err := d.Validate(); err != nil {
		return blob.Info{}, fmt.Errorf("%w: %v", blob.ErrDigestInvalid, err)
	}
	if !blob.Supported(d.Algorithm()) {
		return blob.Info{}, fmt.Errorf("%w: %s", blob.ErrUnsupported, d.Algorithm())
	}
	vr := &verifyingReader{r: r, h: d.Algorithm().Hash(), want: d, size: size}
	if _, err := s.Stat(ctx, d); err == nil {
		// Already stored: still check the client's bytes, write nothing.
		if _, err := io.Copy(io.Discard, vr); err != nil {
			return blob.Info{}, err
		}
		return blob.Info{Digest: d, Size: vr.n}, nil
	}
	_, err := s.c.PutObject(ctx, s.bucket, s.blobKey(d), vr, size, minio.PutObjectOptions{
		ContentType: "application/octet-stream", PartSize: partSize,
	})
	if vr.err != nil {
		return blob.Info{}, vr.err
	}
	if err != nil {
		return blob.Info{}, fmt.Errorf("s3 put %s: %w", d, err)
	}
	return blob.Info{Digest: d, Size: vr.n}, nil
}

// verifyingReader hashes what passes through and, at the end, fails the
// read instead of returning io.EOF if the content is not what was promised.
type verifyingReader struct {
	r    io.Reader
	h    hash.Hash
	want digest.Digest
	size int64
	n    int64
	err  error
}

func (v *verifyingReader) Read(p []byte) (int, error) {
	if v.err != nil {
		return 0, v.err
	}
	n, err := v.r.Read(p)
	v.h.Write(p[:n])
	v.n += int64(n)
	if v.size >= 0 && v.n > v.size {
		v.err = fmt.Errorf("%w: more than the declared %d bytes", blob.ErrSizeMismatch, v.size)
		return n, v.err
	}
	end := errors.Is(err, io.EOF) || (v.size >= 0 && v.n == v.size)
	if end {
		if v.size >= 0 && v.n != v.size {
			v.err = fmt.Errorf("%w: got %d bytes, expected %d", blob.ErrSizeMismatch, v.n, v.size)
		} else if got := digest.NewDigest(v.want.Algorithm(), v.h); got != v.want {
			v.err = fmt.Errorf("%w: content is %s", blob.ErrDigestMismatch, got)
		}
		if v.err != nil {
			return n, v.err
		}
	}
	return n, err
}

func (s *Store) Delete(ctx context.Context, d digest.Digest) error {
	if err := d.Validate(); err != nil {
		return fmt.Errorf("%w: %v", blob.ErrDigestInvalid, err)
	}
	if _, err := s.Stat(ctx, d); err != nil {
		return err
	}
	return s.c.RemoveObject(ctx, s.bucket, s.blobKey(d), minio.RemoveObjectOptions{})
}

func newID() string {
	b := make([]byte, 16)
	rand.Read(b)
	return hex.EncodeToString(b)
}
