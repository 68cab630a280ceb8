package admin

import (
	"context"
	"errors"
	"net/http"
	"strconv"
)

// GCRunner is the node's garbage collection (node/gc.go). An error that
// has an HTTPStatus method (not the leader, a run in progress) is answered
// with that status and its message.
type GCRunner interface {
	RunGC(ctx context.Context, dryRun, deleteUntagged, wait bool) (any, error)
	GCStatus(ctx context.Context) (any, error)
}

// WithGC serves POST /admin/v1/gc/run and GET /admin/v1/gc/status.
func WithGC(g GCRunner) Option { return func(s *server) { s.gc = g } }

// gcRun starts a run on the leader: ?dryRun= lists what a run at the
// current index would delete and changes nothing; ?deleteUntagged=
// collects untagged manifests; ?wait= answers when the run is done.
func (s *server) gcRun(w http.ResponseWriter, r *http.Request) {
	var flags [3]bool
	for i, name := range []string{"dryRun", "deleteUntagged", "wait"} {
		v := r.URL.Query().Get(name)
		if v == "" {
			continue
		}
		b, err := strconv.ParseBool(v)
		if err != nil {
			writeErr(w, http.StatusBadRequest, name+": "+strconv.Quote(v)+" is not true or false")
			return
		}
		flags[i] = b
	}
	res, err := s.gc.RunGC(r.Context(), flags[0], flags[1], flags[2])
	if err != nil {
		s.gcFail(w, err)
		return
	}
	code := http.StatusOK
	if !flags[0] && !flags[2] {
		code = http.StatusAccepted
	}
	writeJSON(w, code, res)
}

func (s *server) gcStatus(w http.ResponseWriter, r *http.Request) {
	res, err := s.gc.GCStatus(r.Context())
	if err != nil {
		s.gcFail(w, err)
		return
	}
	writeJSON(w, http.StatusOK, res)
}

func (s *server) gcFail(w http.ResponseWriter, err error) {
	var st interface{ HTTPStatus() int }
	if errors.As(err, &st) {
		writeErr(w, st.HTTPStatus(), err.Error())
		return
	}
	s.fail(w, "garbage collection", err)
}
