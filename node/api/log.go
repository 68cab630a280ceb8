package api

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"io"
	"log/slog"
	"net/http"
	"time"

	"github.com/berth-registry/berth/events"
)

// statusWriter records what a handler answered, for the access log.
type statusWriter struct {
	http.ResponseWriter
	status int
	bytes  int64
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	n, err := w.ResponseWriter.Write(b)
	w.bytes += int64(n)
	return n, err
}

// ReadFrom keeps http.ServeContent's sendfile path for blob downloads.
func (w *statusWriter) ReadFrom(r io.Reader) (int64, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	var n int64
	var err error
	if rf, ok := w.ResponseWriter.(io.ReaderFrom); ok {
		n, err = rf.ReadFrom(r)
	} else {
		n, err = io.Copy(struct{ io.Writer }{w.ResponseWriter}, r)
	}
	w.bytes += n
	return n, err
}

func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// accessKey carries a request's *access from AccessLog down to the API
// handler, which fills in what only it knows.
type accessKey struct{}

// access is what the API handler learns about a request for its
// access-log line: who (the auth gate runs between AccessLog and the
// handler, so only the handler sees the actor) and what it addressed.
type access struct {
	actor, repository, reference string
	manifest                     bool
}

// AccessLog writes one line per request at info (warn for a 5xx): method,
// path, status, bytes, duration, client address, user agent, request ID
// and, once the API handler has seen them, the actor and the repository
// (with, for manifests, the reference and digest). It goes outermost, in
// front of the auth gate and the limits, so refused requests get their
// line too. Every response carries X-Request-Id: the client's own if it
// sent a well-formed one, so logs on both sides line up.
//
// Nested inside another AccessLog (New wraps the API handler in one, for
// callers that do not), it only passes the request on.
func AccessLog(logger *slog.Logger, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, nested := r.Context().Value(accessKey{}).(*access); nested {
			next.ServeHTTP(w, r)
			return
		}
		start := time.Now()
		id := r.Header.Get("X-Request-Id")
		if !validRequestID(id) {
			id = newRequestID()
			r.Header.Set("X-Request-Id", id) // so withOrigin stamps events with it
		}
		w.Header().Set("X-Request-Id", id)
		a := &access{}
		sw := &statusWriter{ResponseWriter: w}
		next.ServeHTTP(sw, r.WithContext(context.WithValue(r.Context(), accessKey{}, a)))
		if sw.status == 0 {
			sw.status = http.StatusOK // the handler wrote nothing
		}
		level := slog.LevelInfo
		if sw.status >= 500 {
			level = slog.LevelWarn
		}
		if !logger.Enabled(r.Context(), level) {
			return // and build no attributes
		}
		attrs := make([]slog.Attr, 0, 14)
		attrs = append(attrs, slog.String("method", r.Method), slog.String("path", r.URL.Path),
			slog.Int("status", sw.status), slog.Int64("bytes", sw.bytes), slog.Duration("duration", time.Since(start)),
			slog.String("client", r.RemoteAddr), slog.String("user_agent", r.UserAgent()), slog.String("request_id", id))
		if f := r.Header.Get("X-Forwarded-For"); f != "" {
			attrs = append(attrs, slog.String("forwarded_for", f))
		}
		if a.actor != "" {
			attrs = append(attrs, slog.String("actor", a.actor))
		}
		if a.repository != "" {
			attrs = append(attrs, slog.String("repository", a.repository))
		}
		if a.manifest {
			attrs = append(attrs, slog.String("reference", a.reference))
			if d := sw.Header().Get("Docker-Content-Digest"); d != "" {
				attrs = append(attrs, slog.String("digest", d))
			}
		}
		logger.LogAttrs(r.Context(), level, "request", attrs...)
	})
}

// noteActor records who the auth gate said sent r, for the access log.
func noteActor(r *http.Request) {
	if a, ok := r.Context().Value(accessKey{}).(*access); ok {
		a.actor = events.OriginFrom(r.Context()).Actor
	}
}

// noteTarget records the repository r addresses and, for a manifest, its
// reference, for the access log.
func noteTarget(r *http.Request, ep endpoint, name, arg string) {
	if a, ok := r.Context().Value(accessKey{}).(*access); ok {
		a.repository = name
		if ep == epManifest {
			a.manifest, a.reference = true, arg
		}
	}
}

func newRequestID() string {
	var b [12]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
