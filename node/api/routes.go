// Package api serves the OCI Distribution API v1.1 (the spec in
// ../shared/reference/oci-distribution-spec/spec.md) on top of the node's
// proposal path, its consistent reads and the blob store.
//
// Handlers validate input fully and answer client mistakes themselves.
// Only valid requests become events (ARCHITECTURE.md rule 1): the handler
// proposes, waits for the event to be applied, and only then answers.
package api

import (
	"context"
	"log/slog"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/berth-registry/berth/blob"
	"github.com/berth-registry/berth/events"
	"github.com/berth-registry/berth/fsm"
)

// Proposer commits an event through the log. The error is a *fsm.Refusal
// when Apply refused it.
type Proposer interface {
	Propose(ctx context.Context, p events.Payload) (uint64, error)
}

// Reader returns a view that reflects every acknowledged write.
type Reader interface {
	ReadView(ctx context.Context) (*fsm.View, error)
}

// Config holds the API's limits.
type Config struct {
	// MaxManifestSize bounds a manifest body (413 above it).
	MaxManifestSize int64
	// ManifestCacheBytes bounds the node-local cache of hot manifests.
	ManifestCacheBytes int64
	// ReferrersPageSize caps the descriptors of one referrers response;
	// more come with a Link to the next page.
	ReferrersPageSize int
	// BodyReadTimeout is how long a request body may send nothing before
	// the request ends (body.go). Default DefaultBodyReadTimeout.
	BodyReadTimeout time.Duration
	// Pulls, if set, hears of every successful pull (pull.go); nil turns
	// pull events off at the cost of one nil check per read.
	Pulls PullHook
	// ReadOnly, if set, is the read-only mode in this node's local state:
	// writes are refused up front while it is on (readonly.go).
	ReadOnly func() fsm.ReadOnly
	// Mirrored, if set, names the mirror or proxy policy that owns a
	// repository, and its mode: writes to it are refused.
	Mirrored func(repo string) (policy, mode string, ok bool)
	// PullThrough, if set, fills reads of the repositories a proxy
	// policy (or a mirror's fallback: origin) covers (pullthrough.go).
	PullThrough PullThrough
}

// DefaultReferrersPageSize is Config.ReferrersPageSize when unset: large
// enough that real subjects (a few signatures, SBOMs and attestations) fit
// in one response, small enough that a page stays a few hundred KiB.
const DefaultReferrersPageSize = 1000

type handler struct {
	cfg    Config
	props  Proposer
	reads  Reader
	blobs  blob.Store
	logger *slog.Logger
	cache  *manifestCache
}

// New returns the /v2/ handler.
func New(cfg Config, p Proposer, r Reader, blobs blob.Store, logger *slog.Logger) http.Handler {
	if cfg.MaxManifestSize <= 0 {
		cfg.MaxManifestSize = 4 << 20
	}
	if cfg.ManifestCacheBytes <= 0 {
		cfg.ManifestCacheBytes = 64 << 20
	}
	if cfg.ReferrersPageSize <= 0 {
		cfg.ReferrersPageSize = DefaultReferrersPageSize
	}
	if cfg.BodyReadTimeout <= 0 {
		cfg.BodyReadTimeout = DefaultBodyReadTimeout
	}
	h := &handler{cfg: cfg, props: p, reads: r, blobs: blobs, logger: logger, cache: newManifestCache(cfg.ManifestCacheBytes)}
	return AccessLog(logger, h)
}

func validName(name string) error {
	if len(name) > maxNameLen || !nameOK(name) {
		return newErr(http.StatusBadRequest, codeNameInvalid,
			"invalid repository name "+quote(name)+": use lowercase path components of letters, digits and . _ - separators")
	}
	return nil
}

func quote(s string) string {
	if len(s) > 300 {
		s = s[:300] + "..."
	}
	return `"` + s + `"`
}

func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	p := r.URL.Path
	if b := h.watchBody(w, r); b != nil {
		defer b.finish()
	}
	w.Header().Set("Docker-Distribution-API-Version", "registry/2.0")
	noteActor(r)
	r = withOrigin(w, r)
	switch {
	case p == "/v2/" || p == "/v2":
		h.methods(w, r, []string{"GET", "HEAD"}, h.ping)
	case p == "/v2/_catalog":
		h.methods(w, r, []string{"GET"}, h.catalog)
	default:
		h.route(w, r, p)
	}
}

// Endpoints under /v2/<name>/. The name may itself contain the markers
// ("a/blobs/b"), so each is found at its last occurrence, as a greedy
// "^/v2/(.+)/blobs/([^/]+)$" would: only the last occurrence can be
// followed by a single path segment. A name never holds a newline (the
// regexps' "." did not match one), so such a path is no endpoint (404).
type endpoint int

const (
	epNone endpoint = iota
	epUpload
	epBlob
	epManifest
	epTags
	epReferrers
)

// splitRoute finds the endpoint, repository name and argument of p.
func splitRoute(p string) (ep endpoint, name, arg string) {
	rest, ok := strings.CutPrefix(p, "/v2/")
	if !ok {
		return epNone, "", ""
	}
	// After the marker: one segment (no slash) that must not be empty,
	// except for uploads, whose ID is optional and may follow a slash.
	after := func(marker string, optional bool) (string, string, bool) {
		i := strings.LastIndex(rest, marker)
		if i <= 0 || strings.Contains(rest[:i], "\n") {
			return "", "", false
		}
		tail := rest[i+len(marker):]
		if optional {
			tail = strings.TrimPrefix(tail, "/")
		}
		if strings.Contains(tail, "/") || (!optional && tail == "") {
			return "", "", false
		}
		return rest[:i], tail, true
	}
	if n, a, ok := after("/blobs/uploads", true); ok {
		return epUpload, n, a
	}
	if n, a, ok := after("/blobs/", false); ok {
		return epBlob, n, a
	}
	if n, a, ok := after("/manifests/", false); ok {
		return epManifest, n, a
	}
	if n, ok := strings.CutSuffix(rest, "/tags/list"); ok && n != "" && !strings.Contains(n, "\n") {
		return epTags, n, ""
	}
	if n, a, ok := after("/referrers/", false); ok {
		return epReferrers, n, a
	}
	return epNone, "", ""
}

func (h *handler) route(w http.ResponseWriter, r *http.Request, p string) {
	ep, name, arg := splitRoute(p)
	if ep == epNone {
		writeError(w, r, h.logger, newErr(http.StatusNotFound, codeUnsupported, "no such endpoint: "+quote(p)))
		return
	}
	if err := validName(name); err != nil {
		writeError(w, r, h.logger, err)
		return
	}
	noteTarget(r, ep, name, arg)
	if h.refuseReadOnly(w, r, ep) || h.refuseMirrored(w, r, ep, name) {
		return
	}
	if b, ok := r.Body.(*progressBody); ok && ep == epManifest {
		b.code = codeManifestInvalid
	}
	m := r.Method
	switch ep {
	case epUpload:
		switch {
		case arg == "":
			h.methods(w, r, []string{"POST"}, func(w http.ResponseWriter, r *http.Request) { h.startUpload(w, r, name) })
		case m == "GET":
			h.uploadStatus(w, r, name, arg)
		case m == "PATCH":
			h.patchUpload(w, r, name, arg)
		case m == "PUT":
			h.finishUpload(w, r, name, arg)
		case m == "DELETE":
			h.cancelUpload(w, r, name, arg)
		default:
			h.methods(w, r, []string{"DELETE", "GET", "PATCH", "PUT"}, nil)
		}
	case epBlob:
		switch m {
		case "GET", "HEAD":
			h.getBlob(w, r, name, arg)
		case "DELETE":
			h.deleteBlob(w, r, name, arg)
		default:
			h.methods(w, r, []string{"DELETE", "GET", "HEAD"}, nil)
		}
	case epManifest:
		switch m {
		case "GET", "HEAD":
			h.getManifest(w, r, name, arg)
		case "PUT":
			h.putManifest(w, r, name, arg)
		case "DELETE":
			h.deleteManifest(w, r, name, arg)
		default:
			h.methods(w, r, []string{"DELETE", "GET", "HEAD", "PUT"}, nil)
		}
	case epTags:
		h.methods(w, r, []string{"GET"}, func(w http.ResponseWriter, r *http.Request) { h.tags(w, r, name) })
	case epReferrers:
		h.methods(w, r, []string{"GET"}, func(w http.ResponseWriter, r *http.Request) { h.referrers(w, r, name, arg) })
	}
}

// methods calls f if the request's method is one of allowed (sorted), and
// answers 405 with an Allow header otherwise.
func (h *handler) methods(w http.ResponseWriter, r *http.Request, allowed []string, f http.HandlerFunc) {
	if f != nil && slices.Contains(allowed, r.Method) {
		f(w, r)
		return
	}
	w.Header().Set("Allow", strings.Join(allowed, ", "))
	writeError(w, r, h.logger, newErr(http.StatusMethodNotAllowed, codeUnsupported, r.Method+" is not supported here"))
}

func (h *handler) ping(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	w.Write([]byte("{}"))
}

// readView returns a consistent view and tells the client which applied
// index answered (Berth-Applied-Index), so a client or an operator can see
// that a read on any node reflects a given write.
func (h *handler) readView(w http.ResponseWriter, r *http.Request) (*fsm.View, error) {
	view, _ := r.Context().Value(viewKey{}).(*fsm.View)
	var err error
	if view == nil {
		view, err = h.reads.ReadView(r.Context())
	}
	if err != nil {
		return nil, err
	}
	w.Header().Set("Berth-Applied-Index", strconv.FormatUint(view.Index(), 10))
	return view, nil
}
