// Package s3 stores blobs in MinIO or any S3-compatible service, so that
// every node of a cluster sees the same bytes and can continue any upload
// (ARCHITECTURE.md rules 4 and 7).
//
// Keys, all under Config.Prefix:
//
//	blobs/<alg>/<hh>/<hex>                 content, under its digest
//	tmp/<random>                           a large Put or Commit on its way in
//	uploads/<id>/state                     session state (JSON), replaced with If-Match;
//	                                       written by the first chunk, a tombstone once ended
//	uploads/<id>/chunk-<offset>-<random>   one object per appended chunk
//	meta/upload-id-key                     signs the IDs of sessions with no bytes yet
//	                                       (sessionid.go): they have no object at all
//
// The one invariant (rule 4): a blobs/ key never holds bytes that do not
// hash to its name. It holds because a blobs/ key is only ever written
//
//   - by one PutObject of a body already held in memory and verified
//     (blobs up to 16 MiB: most manifests, configs and small layers), or
//   - by a server-side copy or compose, which S3 completes atomically, from
//     objects whose bytes this process hashed and verified first: a tmp/
//     object (large Puts, streamed Commits) or the chunks of a session
//     (Commit; the session's hash state covers exactly the listed chunks).
//
// Streaming straight to the final key and failing the request on a
// mismatch was rejected: whether the failure reaches S3 before the last
// byte does depends on the client library's buffering (io.ReadFull drops
// an error that arrives with the bytes that fill its buffer, and a
// known-length multipart upload never asks for more).
package s3

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
	"github.com/opencontainers/go-digest"

	"github.com/berth-registry/berth/blob"
)

// Config points the store at a bucket.
type Config struct {
	// Endpoint is host:port. A scheme ("https://minio:9000") is accepted
	// and then decides Secure.
	Endpoint  string
	Bucket    string
	Region    string
	AccessKey string
	SecretKey string
	Secure    bool
	// PathStyle forces bucket-in-path URLs, which MinIO and most
	// self-hosted S3 services need.
	PathStyle bool
	// Prefix puts every key under a folder, to share a bucket; a trailing
	// slash is added if missing.
	Prefix string
	// Timeout is how long any request may make no progress before it
	// fails with blob.ErrUnavailable (deadline.go); 0 means
	// DefaultTimeout.
	Timeout time.Duration
}

// partSize is the multipart part size for large bodies, and the size up to
// which a body is buffered and verified in memory before it is sent.
// Memory per in-flight large upload is about twice this. With S3's 10,000
// parts it caps a blob of unknown length at 160 GiB.
const partSize = 16 << 20

// maxRetries is how many times minio-go tries a request. A second try
// covers a pooled connection that a restarted S3 closed; more would
// multiply the deadline a client waits through while S3 is stopped
// (minio-go's default is 10 tries).
const maxRetries = 2

// maxCopySize is the largest object one CopyObject request may copy;
// larger ones go through a multipart copy (ComposeObject).
const maxCopySize = 5 << 30

// Store implements blob.Store on S3. See the package comment for keys and
// the write-once invariant.
type Store struct {
	c      *minio.Client
	bucket string
	prefix string
	logger *slog.Logger
	idKey  []byte // signs the IDs of empty upload sessions (sessionid.go)
	clock  func() time.Time
}

func (s *Store) now() time.Time {
	if s.clock != nil {
		return s.clock()
	}
	return time.Now()
}

var _ blob.Store = (*Store)(nil)

// New connects and creates the bucket if it does not exist.
func New(ctx context.Context, cfg Config, logger *slog.Logger) (*Store, error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	endpoint, secure, err := parseEndpoint(cfg.Endpoint, cfg.Secure)
	if err != nil {
		return nil, err
	}
	if cfg.Bucket == "" {
		return nil, errors.New("s3 blob store: no bucket: set storage.s3.bucket")
	}
	tr, err := minio.DefaultTransport(secure)
	if err != nil {
		return nil, fmt.Errorf("s3 transport: %w", err)
	}
	tr.MaxIdleConnsPerHost = 64
	// deadlineTransport bounds every request, a server-side copy of a
	// multi-GiB blob included, so the transport's own limit stays out of
	// its way.
	tr.ResponseHeaderTimeout = 0
	timeout := cfg.Timeout
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	lookup := minio.BucketLookupAuto
	if cfg.PathStyle {
		lookup = minio.BucketLookupPath
	}
	c, err := minio.New(endpoint, &minio.Options{
		Creds:        credentials.NewStaticV4(cfg.AccessKey, cfg.SecretKey, ""),
		Secure:       secure,
		Region:       cfg.Region,
		BucketLookup: lookup,
		Transport:    &deadlineTransport{base: tr, timeout: timeout},
		MaxRetries:   maxRetries,
	})
	if err != nil {
		return nil, fmt.Errorf("s3 client for %s: %w (check storage.s3.endpoint)", endpoint, err)
	}
	prefix := strings.Trim(cfg.Prefix, "/")
	if prefix != "" {
		prefix += "/"
	}
	s := &Store{c: c, bucket: cfg.Bucket, prefix: prefix, logger: logger}

	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	ok, err := c.BucketExists(ctx, cfg.Bucket)
	if err != nil {
		return nil, fmt.Errorf("s3 %s: checking bucket %q: %w (check storage.s3.endpoint, storage.s3.bucket and the credentials)", endpoint, cfg.Bucket, err)
	}
	if !ok {
		if err := c.MakeBucket(ctx, cfg.Bucket, minio.MakeBucketOptions{Region: cfg.Region}); err != nil {
			// Another node may have created it in the meantime.
			if exists, err2 := c.BucketExists(ctx, cfg.Bucket); err2 != nil || !exists {
				return nil, fmt.Errorf("s3 %s: bucket %q does not exist and creating it failed: %w (create bucket %q, allow s3:CreateBucket, or set storage.s3.bucket)", endpoint, cfg.Bucket, err, cfg.Bucket)
			}
		} else {
			logger.Info("created bucket", "bucket", cfg.Bucket, "endpoint", endpoint)
		}
	}
	if s.idKey, err = s.loadIDKey(ctx); err != nil {
		return nil, fmt.Errorf("s3 %s: upload-ID key in bucket %q: %w (allow s3:GetObject and s3:PutObject on it)", endpoint, cfg.Bucket, err)
	}
	return s, nil
}

// parseEndpoint accepts "host:port" or a URL with a scheme.
func parseEndpoint(ep string, secure bool) (string, bool, error) {
	if ep == "" {
		return "", false, errors.New("s3 blob store: no endpoint: set storage.s3.endpoint (host:port)")
	}
	if !strings.Contains(ep, "://") {
		return ep, secure, nil
	}
	u, err := url.Parse(ep)
	if err != nil || u.Host == "" || (u.Path != "" && u.Path != "/") {
		return "", false, fmt.Errorf("s3 blob store: endpoint %q: want host:port or http(s)://host:port (set storage.s3.endpoint)", ep)
	}
	switch u.Scheme {
	case "https":
		return u.Host, true, nil
	case "http":
		return u.Host, false, nil
	}
	return "", false, fmt.Errorf("s3 blob store: endpoint %q: scheme must be http or https", ep)
}

func (s *Store) blobKey(d digest.Digest) string {
	h := d.Encoded()
	return s.prefix + "blobs/" + d.Algorithm().String() + "/" + h[:2] + "/" + h
}

func (s *Store) tmpKey() string { return s.prefix + "tmp/" + newID() }

// notFound reports whether S3 said the key (or bucket) does not exist.
func notFound(err error) bool {
	r := minio.ToErrorResponse(err)
	return r.Code == "NoSuchKey" || r.StatusCode == http.StatusNotFound
}

func checkDigest(d digest.Digest) error {
	if err := d.Validate(); err != nil {
		return fmt.Errorf("%w: %v", blob.ErrDigestInvalid, err)
	}
	if !blob.Supported(d.Algorithm()) {
		return fmt.Errorf("%w: %s (use sha256 or sha512)", blob.ErrUnsupported, d.Algorithm())
	}
	return nil
}

func (s *Store) Stat(ctx context.Context, d digest.Digest) (blob.Info, error) {
	if err := checkDigest(d); err != nil {
		return blob.Info{}, err
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

// Open costs one HEAD; no content moves until the first Read (object.go).
// The caller reads what it needs and Close drops the connection, so a
// Range request moves what it asked for plus what was in flight in TCP
// buffers, not the whole blob.
func (s *Store) Open(ctx context.Context, d digest.Digest) (io.ReadSeekCloser, blob.Info, error) {
	if err := checkDigest(d); err != nil {
		return nil, blob.Info{}, err
	}
	key := s.blobKey(d)
	oi, err := s.c.StatObject(ctx, s.bucket, key, minio.StatObjectOptions{})
	if err != nil {
		if notFound(err) {
			return nil, blob.Info{}, blob.ErrNotFound
		}
		return nil, blob.Info{}, fmt.Errorf("s3 get %s: %w", d, err)
	}
	return &object{ctx: ctx, s: s, key: key, etag: oi.ETag, size: oi.Size}, blob.Info{Digest: d, Size: oi.Size}, nil
}

// Delete removes a blob. S3 deletes are idempotent, so the Stat is what
// reports a missing blob as blob.ErrNotFound, as the filesystem does.
func (s *Store) Delete(ctx context.Context, d digest.Digest) error {
	if _, err := s.Stat(ctx, d); err != nil {
		return err
	}
	if err := s.c.RemoveObject(ctx, s.bucket, s.blobKey(d), minio.RemoveObjectOptions{}); err != nil {
		return fmt.Errorf("s3 delete %s: %w", d, err)
	}
	return nil
}

// cleanupCtx outlives the request that triggers a cleanup: a client that
// hangs up must not leave temp objects or half-removed sessions behind.
func cleanupCtx(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
}

// removeKey deletes one object, logging (not returning) a failure: it is
// for garbage that PurgeUploads would find later anyway.
func (s *Store) removeKey(ctx context.Context, key string) {
	ctx, cancel := cleanupCtx(ctx)
	defer cancel()
	if err := s.c.RemoveObject(ctx, s.bucket, key, minio.RemoveObjectOptions{}); err != nil {
		s.logger.Warn("s3: remove temporary object; PurgeUploads retries", "key", key, "err", err)
	}
}

func newID() string {
	b := make([]byte, 16)
	rand.Read(b)
	return hex.EncodeToString(b)
}
