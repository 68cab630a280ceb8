// Package admin serves the admin API that clusterctl talks to: declarative
// resources (apply, list, get, delete, history) and the repositories'
// storage accounting under /admin/v1/. Writes go
// through the log like every other change (rules 1 and 11): a handler
// validates, proposes an event and answers once it is applied.
//
// Every answer is JSON. Errors are {"error": "..."} with, for an invalid
// apply, a "documents" list naming every problem of every document. Bad
// input gets a 4xx, never a 500 (rule 12).
package admin

import (
	"context"
	"log/slog"
	"net/http"
	"strings"

	"github.com/berth-registry/berth/events"
	"github.com/berth-registry/berth/fsm"
	"github.com/berth-registry/berth/node/httpauth"
)

// Proposer commits an event through the log. It returns once the event is
// applied on this node, with a *fsm.Refusal when Apply refused it.
type Proposer interface {
	Propose(ctx context.Context, p events.Payload) (uint64, error)
}

// Reader returns a view reflecting every acknowledged write.
type Reader interface {
	ReadView(ctx context.Context) (*fsm.View, error)
}

// maxApplyBody bounds one apply request. Resources are small; a file of
// several hundred of them still fits.
const maxApplyBody = 4 << 20

type server struct {
	token  string
	props  Proposer
	reads  Reader
	logger *slog.Logger
	// conditions, when set, adds status.conditions to what GET answers.
	conditions ConditionsFunc
	// gc, when set, serves the garbage collection endpoints (gc.go).
	gc GCRunner
}

// New returns the handler for /admin/v1/..., guarded by a bearer token.
// An empty token locks the API: nobody can use it. A nil logger logs
// nothing.
func New(token string, p Proposer, r Reader, logger *slog.Logger, opts ...Option) http.Handler {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	s := &server{token: token, props: p, reads: r, logger: logger}
	for _, o := range opts {
		o(s)
	}
	mux := http.NewServeMux()
	route := func(path string, handlers map[string]http.HandlerFunc) {
		allow := make([]string, 0, len(handlers))
		for method, h := range handlers {
			mux.HandleFunc(method+" "+path, h)
			allow = append(allow, method)
		}
		// Any other method on a known path: 405 in JSON rather than the
		// mux's plain text.
		mux.HandleFunc(path, func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Allow", strings.Join(allow, ", "))
			writeErr(w, http.StatusMethodNotAllowed, r.Method+" is not supported on "+r.URL.Path+"; use "+strings.Join(allow, " or "))
		})
	}
	route("/admin/v1/apply", map[string]http.HandlerFunc{"POST": s.apply})
	route("/admin/v1/resources/{kind}", map[string]http.HandlerFunc{"GET": s.list})
	route("/admin/v1/resources/{kind}/{name}", map[string]http.HandlerFunc{"GET": s.get, "DELETE": s.delete})
	route("/admin/v1/resources/{kind}/{name}/history", map[string]http.HandlerFunc{"GET": s.history})
	route("/admin/v1/repositories", map[string]http.HandlerFunc{"GET": s.repositories})
	route("/admin/v1/repositories/{name...}", map[string]http.HandlerFunc{"GET": s.repository})
	route("/admin/v1/readonly", map[string]http.HandlerFunc{"GET": s.readOnlyStatus, "POST": s.setReadOnly})
	if s.gc != nil {
		route("/admin/v1/gc/run", map[string]http.HandlerFunc{"POST": s.gcRun})
		route("/admin/v1/gc/status", map[string]http.HandlerFunc{"GET": s.gcStatus})
	}
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeErr(w, http.StatusNotFound, "no admin endpoint "+r.URL.Path)
	})
	return s.authenticate(mux)
}

// Guard is how every admin endpoint of a node checks the admin token
// (this API, the cluster admin API, pprof): the same 401 for all of them.
func Guard(token string) httpauth.Guard {
	return httpauth.Guard{
		Token: token,
		Realm: "berth-admin",
		Hint:  "admin token missing or wrong: pass --token, set BERTH_TOKEN, or use the node's data/admin.token",
	}
}

// authenticate lets a request through only with the node's admin token.
// It runs before routing, so that without the token nothing is revealed,
// not even which paths exist.
func (s *server) authenticate(next http.Handler) http.Handler {
	return Guard(s.token).Wrap(next)
}
