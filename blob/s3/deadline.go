package s3

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/berth-registry/berth/blob"
)

// DefaultTimeout is how long a request to S3 may make no progress before
// the node gives up on it (storage.s3.timeout).
const DefaultTimeout = 30 * time.Second

// copyWaitFactor stretches the wait for the answer to a server-side copy
// (CopyObject, a part of ComposeObject): S3 says nothing until it has
// copied up to 5 GiB, which can take minutes.
const copyWaitFactor = 20

// deadlineTransport is the one place where every call to S3 gets a deadline
// of the node's own, so a stopped or wedged object store (SIGSTOP, a dead
// network path) turns into a quick 503 instead of a request that hangs for
// as long as the client waits. It is an idle deadline, not a whole-transfer
// one, so multi-GiB blobs still stream: a request fails only when no byte
// moved for the timeout
//
//   - while the request body is being sent, or the answer awaited (a
//     server-side copy gets copyWaitFactor times as long), or
//   - while a Read of the response body waits for S3. Time spent by the
//     caller between Reads (a slow registry client pulling the blob) does
//     not count.
//
// Failures to reach S3 at all (connection refused, reset) and these
// timeouts come back as errors that match blob.ErrUnavailable, which the API
// answers with 503 and Retry-After.
type deadlineTransport struct {
	base    http.RoundTripper
	timeout time.Duration
}

func (t *deadlineTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	parent := req.Context()
	ctx, cancel := context.WithCancel(parent)
	w := &watchdog{cancel: cancel}
	wait := t.timeout
	if req.Header.Get("X-Amz-Copy-Source") != "" {
		wait *= copyWaitFactor
	}
	w.arm(wait)
	req = req.WithContext(ctx) // a shallow copy: the caller's request is left alone
	if req.Body != nil && req.Body != http.NoBody {
		req.Body = &sendBody{ReadCloser: req.Body, w: w, wait: wait}
	}
	resp, err := t.base.RoundTrip(req)
	w.disarm()
	if err != nil {
		cancel()
		if parent.Err() != nil {
			return nil, err // the caller gave up (the client hung up): not S3's fault
		}
		return nil, t.unavailable(req, w, wait, err)
	}
	resp.Body = &recvBody{rc: resp.Body, t: t, req: req, parent: parent, w: w}
	return resp, nil
}

// unavailable wraps err so that it matches blob.ErrUnavailable.
func (t *deadlineTransport) unavailable(req *http.Request, w *watchdog, wait time.Duration, err error) error {
	if w.stalled() {
		err = fmt.Errorf("no answer within %s (storage.s3.timeout): %w", wait, err)
	}
	return &unavailableError{op: req.Method + " " + req.URL.Host, err: err}
}

// sendBody re-arms the watchdog each time the transport takes more of the
// request body, so only a stalled upload trips it.
type sendBody struct {
	io.ReadCloser
	w    *watchdog
	wait time.Duration
}

func (b *sendBody) Read(p []byte) (int, error) {
	b.w.arm(b.wait)
	return b.ReadCloser.Read(p)
}

// recvBody arms the watchdog only while a Read waits for S3.
type recvBody struct {
	rc     io.ReadCloser
	t      *deadlineTransport
	req    *http.Request
	parent context.Context // the caller's
	w      *watchdog
}

func (b *recvBody) Read(p []byte) (int, error) {
	b.w.arm(b.t.timeout)
	n, err := b.rc.Read(p)
	b.w.disarm()
	if err == nil || err == io.EOF || (b.parent.Err() != nil && !b.w.stalled()) {
		return n, err // done, or cancelled by the caller
	}
	return n, b.t.unavailable(b.req, b.w, b.t.timeout, err)
}

func (b *recvBody) Close() error {
	b.w.disarm()
	err := b.rc.Close()
	b.w.cancel()
	return err
}

// watchdog cancels one request when its timer runs out.
type watchdog struct {
	mu     sync.Mutex
	timer  *time.Timer
	fired  bool
	cancel context.CancelFunc
}

func (w *watchdog) arm(d time.Duration) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.timer == nil {
		w.timer = time.AfterFunc(d, w.fire)
		return
	}
	w.timer.Reset(d)
}

func (w *watchdog) disarm() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.timer != nil {
		w.timer.Stop()
	}
}

func (w *watchdog) fire() {
	w.mu.Lock()
	w.fired = true
	w.mu.Unlock()
	w.cancel()
}

func (w *watchdog) stalled() bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.fired
}

// unavailableError is a failure to reach S3 or a request that made no
// progress in time.
type unavailableError struct {
	op  string
	err error
}

// Error never contains "EOF": minio-go replaces transport errors whose text
// does with a plain string (Client.do), which would lose this type.
func (e *unavailableError) Error() string {
	return "object storage unavailable (" + e.op + "): " + strings.ReplaceAll(e.err.Error(), "EOF", "connection closed")
}

func (e *unavailableError) Unwrap() []error { return []error{blob.ErrUnavailable, e.err} }

// Unavailable marks the error as temporary for callers that check the
// interface rather than the sentinel.
func (e *unavailableError) Unavailable() bool { return true }
