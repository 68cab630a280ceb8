package api

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"time"
)

// DefaultBodyReadTimeout is Config.BodyReadTimeout's default.
const DefaultBodyReadTimeout = 30 * time.Second

// progressBody ends a request whose body stops arriving. Without it, a
// client that announces a large body and stops sending keeps its handler,
// and whatever that holds (an upload session's lock, a blob store
// connection), for as long as the TCP connection stays open. Every read
// may wait at most timeout for bytes: the connection's read deadline is
// pushed out as bytes arrive, so a slow but steady upload of any size
// goes through and a silent one ends after timeout. The read then fails
// with a 408 OCI error; the handler answers it and the server closes the
// connection, whose unread rest cannot be parsed as another request.
//
// Deadlines go through http.ResponseController, which net/http's HTTP/1
// and HTTP/2 servers support; with a ResponseWriter that does not, the
// body is read without one.
type progressBody struct {
	io.ReadCloser
	w       http.ResponseWriter
	rc      *http.ResponseController
	timeout time.Duration
	code    string    // the OCI error code of a stall
	pushed  time.Time // when the deadline was last pushed out
	off     bool      // no deadline: unsupported, or the body has ended
}

// watchBody wraps r's body, if it has one, in a progressBody, whose stall
// error says BLOB_UPLOAD_INVALID until the route says otherwise.
func (h *handler) watchBody(w http.ResponseWriter, r *http.Request) *progressBody {
	if r.Body == nil || r.Body == http.NoBody || r.ContentLength == 0 {
		return nil
	}
	b := &progressBody{ReadCloser: r.Body, w: w, rc: http.NewResponseController(w),
		timeout: h.cfg.BodyReadTimeout, code: codeBlobUploadInvalid}
	r.Body = b
	return b
}

// finish runs when the handler is done. If it left the body unread (an
// error answer), the server reads on to find the next request, and that
// read gets a deadline too, or a client that stalls there would keep the
// connection forever.
func (b *progressBody) finish() {
	if !b.off {
		b.rc.SetReadDeadline(time.Now().Add(b.timeout))
	}
}

func (b *progressBody) Read(p []byte) (int, error) {
	if b.off {
		return b.ReadCloser.Read(p)
	}
	// Pushing the deadline on every read would be a timer update per
	// 32 KiB; every timeout/16 keeps a stall's allowance within 94-100%.
	if now := time.Now(); now.Sub(b.pushed) >= b.timeout/16 {
		if err := b.rc.SetReadDeadline(now.Add(b.timeout)); err != nil {
			b.off = true
			return b.ReadCloser.Read(p)
		}
		b.pushed = now
	}
	n, err := b.ReadCloser.Read(p)
	switch {
	case err == io.EOF:
		// The body is complete. The server now reads ahead on the
		// connection to notice a client that goes away, and that read
		// must not time out while the handler still works: it would
		// cancel the request's context.
		b.off = true
		b.rc.SetReadDeadline(time.Time{})
	case errors.Is(err, os.ErrDeadlineExceeded):
		b.w.Header().Set("Connection", "close")
		msg := fmt.Sprintf("no request body bytes arrived for %s, so the request was ended", b.timeout)
		if b.code == codeBlobUploadInvalid {
			msg += "; an upload keeps only its complete chunks: GET its URL for the offset to resume from"
		}
		return n, newErr(http.StatusRequestTimeout, b.code, msg)
	}
	return n, err
}
