// Package console serves the read-only web console at /ui/: repositories,
// tags, manifests, the cluster, recent events and resources, as
// server-rendered HTML (html/template escapes everything) with one small
// stylesheet and script embedded in the binary. There is no JavaScript
// build and nothing is fetched from elsewhere: the Content-Security-Policy
// allows only this origin, so the console works air-gapped.
//
// The console reads the state the way the OCI API does (a view at the
// read index) and sits behind the same authentication: when auth is on, a
// visitor signs in with Basic credentials (the browser's prompt) and sees
// only the namespaces they may pull; the cluster, events and resources
// pages are for cluster admins. Every page is bounded: lists take n and
// last like the OCI API's pagination.
package console

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"html/template"
	"io"
	"io/fs"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/berth-registry/berth/auth"
	"github.com/berth-registry/berth/blob"
	"github.com/berth-registry/berth/fsm"
)

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static
var staticFS embed.FS

// Prefix is where the console is mounted.
const Prefix = "/ui/"

// Views reads the state at the read index.
type Views interface {
	ReadView(ctx context.Context) (*fsm.View, error)
}

// StaleViews also reads the state as this node has applied it, without
// waiting for the leader: what the cluster page falls back to when there
// is no leader to confirm a read, which is when it is needed most.
type StaleViews interface {
	Views
	View() *fsm.View
}

// Blobs reads manifest bytes (for layers and platforms).
type Blobs interface {
	Open(ctx context.Context, d digest.Digest) (io.ReadSeekCloser, blob.Info, error)
}

// Config is what the console reads from its node.
type Config struct {
	Views Views
	Blobs Blobs
	// Cluster reports the cluster as `clusterctl status` shows it.
	Cluster func(ctx context.Context) ClusterInfo
	// Events reads one page of recent events, newest first; nil when
	// events are off on this node.
	Events func(ctx context.Context, before uint64, n int) (EventPage, error)
	// Authenticate identifies a request's credentials against the state
	// (node/access Identify); nil when authentication is off, and then
	// everyone sees everything, as on the OCI API.
	Authenticate func(r *http.Request, v *fsm.View) (auth.Identity, error)
	// Version and Node are shown in the footer.
	Version string
	Node    string
	Logger  *slog.Logger
	// Now defaults to time.Now (ages are relative to it).
	Now func() time.Time
}

// Console is the web console's handler.
type Console struct {
	cfg       Config
	pages     map[string]*template.Template
	platforms platformCache
	mux       *http.ServeMux
}

// New parses the embedded templates and returns the console.
func New(cfg Config) (*Console, error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	c := &Console{cfg: cfg, pages: map[string]*template.Template{}}
	c.platforms.init(4096)
	funcs := template.FuncMap{
		"age":     c.age,
		"bytes":   humanBytes,
		"short":   shortDigest,
		"when":    func(t time.Time) string { return t.UTC().Format("2006-01-02 15:04:05 UTC") },
		"query":   query,
		"label":   referrerLabel,
		"sub":     func(a, b int) int { return a - b },
		"nonzero": func(t time.Time) bool { return !t.IsZero() },
	}
	names, err := fs.Glob(templateFS, "templates/*.html")
	if err != nil {
		return nil, err
	}
	for _, n := range names {
		if n == "templates/layout.html" {
			continue
		}
		t, err := template.New("layout.html").Funcs(funcs).ParseFS(templateFS, "templates/layout.html", n)
		if err != nil {
			return nil, fmt.Errorf("console template %s: %w", n, err)
		}
		c.pages[n[len("templates/"):]] = t
	}
	static, err := fs.Sub(staticFS, "static")
	if err != nil {
		return nil, err
	}
	mux := http.NewServeMux()
	mux.Handle("GET "+Prefix+"static/", http.StripPrefix(Prefix+"static/", http.FileServerFS(static)))
	for path, f := range map[string]pageFunc{
		"{$}": c.repositories, "repositories": c.repositories, "repository": c.repository, "manifest": c.manifest,
		"cluster": c.cluster, "events": c.events, "resources": c.resources, "resource": c.resource,
	} {
		mux.HandleFunc("GET "+Prefix+path, c.serve(f, path == "cluster"))
	}
	mux.HandleFunc(Prefix, func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			c.fail(w, r, nil, errorf(http.StatusMethodNotAllowed, "the console is read-only: use clusterctl or the admin API to change things"))
			return
		}
		c.fail(w, r, nil, errorf(http.StatusNotFound, "no console page %s: start at %s", r.URL.Path, Prefix))
	})
	c.mux = mux
	return c, nil
}

// ServeHTTP sets the headers every answer carries and routes.
func (c *Console) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("Content-Security-Policy", "default-src 'self'; frame-ancestors 'none'")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "same-origin")
	h.Set("Cache-Control", "no-store")
	c.mux.ServeHTTP(w, r)
}

// session is one request's view of the state and who is asking.
type session struct {
	r      *http.Request
	v      *fsm.View
	id     auth.Identity
	authOn bool
	// pull caches, per namespace, whether id may pull there.
	pull map[string]bool
	// stale is why the view is this node's own rather than one at the
	// read index; "" when it is current.
	stale string
}

// admin reports whether the visitor may see the whole cluster.
func (s *session) admin() bool {
	return !s.authOn || (s.id.ClusterAdmin && s.id.Kind != auth.Anonymous)
}

// canPull reports whether the visitor may see repo.
func (s *session) canPull(repo string) bool {
	if !s.authOn {
		return true
	}
	ns := auth.NamespaceOf(repo)
	if ok, seen := s.pull[ns]; seen {
		return ok
	}
	ok, err := auth.Can(s.id, ns, auth.ActionPull, auth.ViewDirectory{View: s.v})
	ok = ok && err == nil // a namespace that no longer decodes shows nothing
	s.pull[ns] = ok
	return ok
}

func (s *session) requireAdmin() error {
	if !s.admin() {
		return errorf(http.StatusForbidden, "only cluster admins see this page: sign in as one (or with the admin token as password)")
	}
	return nil
}

// page is what every template gets.
type page struct {
	Title   string
	Nav     string
	User    string
	Admin   bool
	Version string
	Node    string
	// Stale says why the page shows this node's own state.
	Stale string
	Data  any
}

// pageFunc answers one page: the template's name and its data.
type pageFunc func(s *session) (tmpl, title, nav string, data any, err error)

// serve reads the state, authenticates, runs f and renders its page. A
// page that may be stale falls back to this node's own state when the
// read index cannot be had.
func (c *Console) serve(f pageFunc, staleOK bool) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		stale := ""
		v, err := c.cfg.Views.ReadView(r.Context())
		if sv, ok := c.cfg.Views.(StaleViews); err != nil && staleOK && ok && r.Context().Err() == nil {
			stale, v, err = err.Error(), sv.View(), nil
		}
		if err != nil {
			c.fail(w, r, nil, errorf(http.StatusServiceUnavailable, "cannot read the cluster state: %v", err))
			return
		}
		s := &session{r: r, v: v, authOn: c.cfg.Authenticate != nil, pull: map[string]bool{}, stale: stale}
		if s.authOn {
			if s.id, err = c.cfg.Authenticate(r, v); err != nil {
				w.Header().Set("WWW-Authenticate", `Basic realm="berth console", charset="UTF-8"`)
				c.fail(w, r, nil, &httpError{code: http.StatusUnauthorized, msg: err.Error()})
				return
			}
		}
		tmpl, title, nav, data, err := f(s)
		if err != nil {
			c.fail(w, r, s, err)
			return
		}
		c.render(w, r, http.StatusOK, tmpl, c.page(s, title, nav, data))
	}
}

func (c *Console) page(s *session, title, nav string, data any) page {
	p := page{Title: title, Nav: nav, Version: c.cfg.Version, Node: c.cfg.Node, Data: data, Admin: true}
	if s != nil {
		p.Admin, p.Stale = s.admin(), s.stale
		if s.authOn {
			p.User = s.id.Subject()
		}
	}
	return p
}

func (c *Console) render(w http.ResponseWriter, r *http.Request, code int, tmpl string, p page) {
	t, ok := c.pages[tmpl]
	if !ok {
		panic("console: no template " + tmpl) // a bug: every name is a constant
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(code)
	if err := t.Execute(w, p); err != nil && r.Context().Err() == nil {
		c.cfg.Logger.Warn("console: render failed", "page", tmpl, "err", err)
	}
}

// httpError is an answer other than 200 with a message for the visitor.
type httpError struct {
	code int
	msg  string
}

func (e *httpError) Error() string { return e.msg }

func errorf(code int, format string, args ...any) error {
	return &httpError{code: code, msg: fmt.Sprintf(format, args...)}
}

func (c *Console) fail(w http.ResponseWriter, r *http.Request, s *session, err error) {
	code := http.StatusInternalServerError
	var he *httpError
	if errors.As(err, &he) {
		code = he.code
	} else {
		c.cfg.Logger.Warn("console: page failed", "path", r.URL.Path, "err", err)
	}
	c.render(w, r, code, "error.html", c.page(s, http.StatusText(code), "", map[string]any{"Code": code, "Message": err.Error()}))
}

// limitParam reads ?n=: def when absent, 400 outside 1..maxN.
func limitParam(r *http.Request, def, maxN int) (int, error) {
	s := r.URL.Query().Get("n")
	if s == "" {
		return def, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 || n > maxN {
		return 0, errorf(http.StatusBadRequest, "n %q must be a number from 1 to %d", s, maxN)
	}
	return n, nil
}

// query builds a console link: path and key/value pairs, escaped.
func query(path string, kv ...any) template.URL {
	q := url.Values{}
	for i := 0; i+1 < len(kv); i += 2 {
		v := fmt.Sprint(kv[i+1])
		if v != "" {
			q.Set(fmt.Sprint(kv[i]), v)
		}
	}
	if len(q) == 0 {
		return template.URL(Prefix + path)
	}
	return template.URL(Prefix + path + "?" + q.Encode())
}
