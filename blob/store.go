// Package blob stores content-addressed bytes: blobs and manifests, keyed by
// digest, and the upload sessions that produce them.
package blob

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/opencontainers/go-digest"
)

// Errors a Store returns. Callers map them to OCI error codes.
var (
	ErrNotFound       = errors.New("blob not found")
	ErrUploadUnknown  = errors.New("upload session not found")
	ErrDigestMismatch = errors.New("content does not match digest")
	ErrSizeMismatch   = errors.New("content length does not match size")
	ErrUnsupported    = errors.New("unsupported digest algorithm")
	// ErrUploadNotEmpty is PutUpload's answer for a session that already
	// holds bytes: the caller appends and commits instead.
	ErrUploadNotEmpty = errors.New("upload session already holds bytes")
)

// OffsetError is returned when a chunk does not start where the upload ends.
// Current is where the next chunk must start.
type OffsetError struct{ Current int64 }

func (e *OffsetError) Error() string { return "chunk out of order" }

// TooManyUploadsError is StartUpload's answer when a driver already keeps
// as many open sessions as it is configured to: the client should retry
// after RetryAfter, when the oldest of them expires at the latest.
type TooManyUploadsError struct {
	Limit      int
	RetryAfter time.Duration
}

func (e *TooManyUploadsError) Error() string {
	return fmt.Sprintf("%d upload sessions without data are open, the most this node keeps; retry in %s", e.Limit, e.RetryAfter)
}

// Info describes a stored blob.
type Info struct {
	Digest digest.Digest
	Size   int64
}

// UploadStatus describes an upload session.
type UploadStatus struct {
	ID        string
	Offset    int64
	Algorithm digest.Algorithm
	Started   time.Time
}

// Streamer is a blob reader that copies itself to w faster than a generic
// copy loop can (the S3 driver's, which reads the HTTP body in large
// blocks). Open's reader may implement it; it copies from the current
// offset to the end.
type Streamer interface {
	Stream(w io.Writer) (int64, error)
}

// Store is where blob bytes live. Implementations: the filesystem (one node)
// and S3 (a cluster). All methods are safe for concurrent use.
type Store interface {
	// Stat reports whether a blob's bytes exist.
	Stat(ctx context.Context, d digest.Digest) (Info, error)
	// Open returns the blob for reading with seeking (for Range requests).
	Open(ctx context.Context, d digest.Digest) (io.ReadSeekCloser, Info, error)
	// Put writes a whole blob, verifying d (and size, unless size < 0) while
	// streaming; the bytes become visible atomically, or not at all.
	Put(ctx context.Context, d digest.Digest, size int64, r io.Reader) (Info, error)
	// Delete removes a blob's bytes. Only GC calls it.
	Delete(ctx context.Context, d digest.Digest) error

	// The upload methods name the repository a session was started in:
	// a session belongs to that repository alone, and under any other
	// name it is unknown (ErrUploadUnknown). An upload ID seen in a log
	// or a proxy therefore cannot feed bytes into, or finish, a session
	// as another repository (issue 8).

	// StartUpload opens a session in repo that hashes with alg as bytes
	// arrive. A driver that bounds its open sessions returns a
	// *TooManyUploadsError when the bound is reached.
	StartUpload(ctx context.Context, repo string, alg digest.Algorithm) (UploadStatus, error)
	// UploadStatus reports a session's offset.
	UploadStatus(ctx context.Context, repo, id string) (UploadStatus, error)
	// Append writes r at offset; offset must equal the session's current
	// offset or an *OffsetError is returned. It returns the new offset.
	// A failed Append (r's error included) leaves the session at its
	// old offset, none of the chunk counted.
	Append(ctx context.Context, repo, id string, offset int64, r io.Reader) (int64, error)
	// Commit verifies d against everything uploaded and moves the bytes into
	// place under d atomically, then removes the session.
	Commit(ctx context.Context, repo, id string, d digest.Digest) (Info, error)
	// PutUpload finishes a session that holds no bytes yet with the whole
	// blob in r, verified as Put verifies it. It is what docker and crane
	// do for small blobs (POST, then one PUT with everything), so it must
	// cost no more than Put: no session bookkeeping beyond ending it. It
	// returns ErrUploadNotEmpty, having read nothing, if the session holds
	// bytes. Otherwise the client is done with the session, whether the
	// Put succeeded or not; a driver may keep its ID usable rather than pay
	// a write to end it (the S3 driver's signed IDs, blob/s3/sessionid.go).
	PutUpload(ctx context.Context, repo, id string, d digest.Digest, size int64, r io.Reader) (Info, error)
	// CancelUpload removes a session and its bytes.
	CancelUpload(ctx context.Context, repo, id string) error
}
