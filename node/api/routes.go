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
	"regexp"
	"sort"
	"strconv"
	"strings"

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
}

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
	h := &handler{cfg: cfg, props: p, reads: r, blobs: blobs, logger: logger, cache: newManifestCache(cfg.ManifestCacheBytes)}
	return logRequests(logger, h)
}

var (
	// Repository names and tags as the spec defines them.
	nameRe = regexp.MustCompile(`^[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*(/[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*)*$`)
	tagRe  = regexp.MustCompile(`^[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}$`)

	reUpload    = regexp.MustCompile(`^/v2/(.+)/blobs/uploads/?([^/]*)$`)
	reBlob      = regexp.MustCompile(`^/v2/(.+)/blobs/([^/]+)$`)
	reManifest  = regexp.MustCompile(`^/v2/(.+)/manifests/([^/]+)$`)
	reTags      = regexp.MustCompile(`^/v2/(.+)/tags/list$`)
	reReferrers = regexp.MustCompile(`^/v2/(.+)/referrers/([^/]+)$`)
)

const maxNameLen = 255

func validName(name string) error {
	if len(name) > maxNameLen || !nameRe.MatchString(name) {
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
	w.Header().Set("Docker-Distribution-API-Version", "registry/2.0")
	switch {
	case p == "/v2/" || p == "/v2":
		h.methods(w, r, map[string]http.HandlerFunc{"GET": h.ping, "HEAD": h.ping})
	case p == "/v2/_catalog":
		h.methods(w, r, map[string]http.HandlerFunc{"GET": h.catalog})
	default:
		h.route(w, r, p)
	}
}

func (h *handler) route(w http.ResponseWriter, r *http.Request, p string) {
	type route struct {
		re      *regexp.Regexp
		methods func(name, arg string) map[string]http.HandlerFunc
	}
	routes := []route{
		{reUpload, func(name, id string) map[string]http.HandlerFunc {
			if id == "" {
				return map[string]http.HandlerFunc{"POST": func(w http.ResponseWriter, r *http.Request) { h.startUpload(w, r, name) }}
			}
			return map[string]http.HandlerFunc{
				"GET":    func(w http.ResponseWriter, r *http.Request) { h.uploadStatus(w, r, name, id) },
				"PATCH":  func(w http.ResponseWriter, r *http.Request) { h.patchUpload(w, r, name, id) },
				"PUT":    func(w http.ResponseWriter, r *http.Request) { h.finishUpload(w, r, name, id) },
				"DELETE": func(w http.ResponseWriter, r *http.Request) { h.cancelUpload(w, r, name, id) },
			}
		}},
		{reBlob, func(name, d string) map[string]http.HandlerFunc {
			get := func(w http.ResponseWriter, r *http.Request) { h.getBlob(w, r, name, d) }
			return map[string]http.HandlerFunc{"GET": get, "HEAD": get,
				"DELETE": func(w http.ResponseWriter, r *http.Request) { h.deleteBlob(w, r, name, d) }}
		}},
		{reManifest, func(name, ref string) map[string]http.HandlerFunc {
			get := func(w http.ResponseWriter, r *http.Request) { h.getManifest(w, r, name, ref) }
			return map[string]http.HandlerFunc{"GET": get, "HEAD": get,
				"PUT":    func(w http.ResponseWriter, r *http.Request) { h.putManifest(w, r, name, ref) },
				"DELETE": func(w http.ResponseWriter, r *http.Request) { h.deleteManifest(w, r, name, ref) }}
		}},
		{reTags, func(name, _ string) map[string]http.HandlerFunc {
			return map[string]http.HandlerFunc{"GET": func(w http.ResponseWriter, r *http.Request) { h.tags(w, r, name) }}
		}},
		{reReferrers, func(name, d string) map[string]http.HandlerFunc {
			return map[string]http.HandlerFunc{"GET": func(w http.ResponseWriter, r *http.Request) { h.referrers(w, r, name, d) }}
		}},
	}
	for _, rt := range routes {
		m := rt.re.FindStringSubmatch(p)
		if m == nil {
			continue
		}
		name, arg := m[1], ""
		if len(m) > 2 {
			arg = m[2]
		}
		if err := validName(name); err != nil {
			writeError(w, r, h.logger, err)
			return
		}
		h.methods(w, r, rt.methods(name, arg))
		return
	}
	writeError(w, r, h.logger, newErr(http.StatusNotFound, codeUnsupported, "no such endpoint: "+quote(p)))
}

func (h *handler) methods(w http.ResponseWriter, r *http.Request, m map[string]http.HandlerFunc) {
	if f, ok := m[r.Method]; ok {
		f(w, r)
		return
	}
	allowed := make([]string, 0, len(m))
	for k := range m {
		allowed = append(allowed, k)
	}
	sort.Strings(allowed)
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
	view, err := h.reads.ReadView(r.Context())
	if err != nil {
		return nil, err
	}
	w.Header().Set("Berth-Applied-Index", strconv.FormatUint(view.Index(), 10))
	return view, nil
}
