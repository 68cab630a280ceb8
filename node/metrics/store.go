package metrics

import (
	"context"
	"errors"
	"io"
	"time"

	"github.com/opencontainers/go-digest"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/berth-registry/berth/blob"
)

// Storage actions, the values of the action label.
const (
	actStat = iota
	actOpen
	actPut
	actDelete
	actUploadStart
	actUploadStatus
	actUploadAppend
	actUploadCommit
	actUploadPut
	actUploadCancel
	numActions
)

var actionNames = [numActions]string{"stat", "open", "put", "delete", "upload_start", "upload_status",
	"upload_append", "upload_commit", "upload_put", "upload_cancel"}

// store times every blob.Store call and counts the driver's failures.
// Open is timed until the reader is ready, not while the caller reads:
// the reader is handed back untouched, so an S3 Streamer or an *os.File
// (sendfile) keeps its fast path.
type store struct {
	inner   blob.Store
	seconds [numActions]prometheus.Observer
	errors  [numActions]prometheus.Counter
}

// Store wraps s, a driver named driver ("filesystem", "s3"), so that its
// calls feed registry_storage_action_seconds{driver,action} (Distribution's
// name) and berth_storage_action_errors_total{driver,action}. Stores of
// the same driver share their series.
func (m *Metrics) Store(s blob.Store, driver string) blob.Store {
	st := &store{inner: s}
	for i, a := range actionNames {
		st.seconds[i] = m.storeSeconds.WithLabelValues(driver, a)
		st.errors[i] = m.storeErrors.WithLabelValues(driver, a)
	}
	return st
}

func (m *Metrics) registerStorage() {
	m.storeSeconds = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "registry_storage_action_seconds",
		Help:    "Blob store call latency by driver and action; open is the time until the reader is ready, put and upload_append include reading the client's body.",
		Buckets: latencyBuckets,
	}, []string{"driver", "action"})
	m.storeErrors = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "berth_storage_action_errors_total",
		Help: "Blob store calls that failed in the driver, by driver and action. Answers about the request (not found, unknown upload, digest or size mismatch, a chunk out of order, too many uploads) and failures of the client's body or of its cancelled request are not counted.",
	}, []string{"driver", "action"})
	m.reg.MustRegister(m.storeSeconds, m.storeErrors)
}

// done records one call that started at start.
func (s *store) done(ctx context.Context, act int, start time.Time, err error, body *bodyReader) {
	s.seconds[act].Observe(time.Since(start).Seconds())
	if err != nil && !expected(ctx, err, body) {
		s.errors[act].Inc()
	}
}

// expected reports an error that says something about the request rather
// than the store's health.
func expected(ctx context.Context, err error, body *bodyReader) bool {
	var off *blob.OffsetError
	var tooMany *blob.TooManyUploadsError
	switch {
	case body != nil && body.err != nil, ctx.Err() != nil, errors.Is(err, context.Canceled):
		return true
	case errors.Is(err, blob.ErrNotFound), errors.Is(err, blob.ErrUploadUnknown),
		errors.Is(err, blob.ErrDigestMismatch), errors.Is(err, blob.ErrSizeMismatch),
		errors.Is(err, blob.ErrUnsupported), errors.Is(err, blob.ErrUploadNotEmpty),
		errors.As(err, &off), errors.As(err, &tooMany):
		return true
	}
	return false
}

// bodyReader remembers whether the client's body failed (a stall, a cut
// connection), so that failure is not blamed on the driver.
type bodyReader struct {
	r   io.Reader
	err error
}

func (b *bodyReader) Read(p []byte) (int, error) {
	n, err := b.r.Read(p)
	if err != nil && err != io.EOF {
		b.err = err
	}
	return n, err
}

func (s *store) Stat(ctx context.Context, d digest.Digest) (blob.Info, error) {
	start := time.Now()
	info, err := s.inner.Stat(ctx, d)
	s.done(ctx, actStat, start, err, nil)
	return info, err
}

func (s *store) Open(ctx context.Context, d digest.Digest) (io.ReadSeekCloser, blob.Info, error) {
	start := time.Now()
	rc, info, err := s.inner.Open(ctx, d)
	s.done(ctx, actOpen, start, err, nil)
	return rc, info, err
}

func (s *store) Put(ctx context.Context, d digest.Digest, size int64, r io.Reader) (blob.Info, error) {
	start, body := time.Now(), &bodyReader{r: r}
	info, err := s.inner.Put(ctx, d, size, body)
	s.done(ctx, actPut, start, err, body)
	return info, err
}

func (s *store) Delete(ctx context.Context, d digest.Digest) error {
	start := time.Now()
	err := s.inner.Delete(ctx, d)
	s.done(ctx, actDelete, start, err, nil)
	return err
}

func (s *store) StartUpload(ctx context.Context, repo string, alg digest.Algorithm) (blob.UploadStatus, error) {
	start := time.Now()
	st, err := s.inner.StartUpload(ctx, repo, alg)
	s.done(ctx, actUploadStart, start, err, nil)
	return st, err
}

func (s *store) UploadStatus(ctx context.Context, repo, id string) (blob.UploadStatus, error) {
	start := time.Now()
	st, err := s.inner.UploadStatus(ctx, repo, id)
	s.done(ctx, actUploadStatus, start, err, nil)
	return st, err
}

func (s *store) Append(ctx context.Context, repo, id string, offset int64, r io.Reader) (int64, error) {
	start, body := time.Now(), &bodyReader{r: r}
	n, err := s.inner.Append(ctx, repo, id, offset, body)
	s.done(ctx, actUploadAppend, start, err, body)
	return n, err
}

func (s *store) Commit(ctx context.Context, repo, id string, d digest.Digest) (blob.Info, error) {
	start := time.Now()
	info, err := s.inner.Commit(ctx, repo, id, d)
	s.done(ctx, actUploadCommit, start, err, nil)
	return info, err
}

func (s *store) PutUpload(ctx context.Context, repo, id string, d digest.Digest, size int64, r io.Reader) (blob.Info, error) {
	start, body := time.Now(), &bodyReader{r: r}
	info, err := s.inner.PutUpload(ctx, repo, id, d, size, body)
	s.done(ctx, actUploadPut, start, err, body)
	return info, err
}

func (s *store) CancelUpload(ctx context.Context, repo, id string) error {
	start := time.Now()
	err := s.inner.CancelUpload(ctx, repo, id)
	s.done(ctx, actUploadCancel, start, err, nil)
	return err
}

// Unwrap returns the driver, for what the Store interface does not carry
// (the GC job's upload purge).
func (s *store) Unwrap() blob.Store { return s.inner }
