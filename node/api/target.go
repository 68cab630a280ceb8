package api

import (
	"context"
	"net/http"

	"github.com/berth-registry/berth/fsm"
)

// Need is one permission a request needs: an action on a repository, or
// on the registry's catalog (Repository empty, Catalog true).
type Need struct {
	Repository string
	Action     string // "pull", "push", "delete" or "*" for the catalog
	Catalog    bool
}

// Needs says what a /v2/ request needs, routed exactly as the handler
// routes it, so authorization and the handler never disagree about which
// repository a path names. ping is true for the base endpoint (/v2/),
// which needs only valid credentials. ok is false for a request the
// handler refuses whatever the caller's rights (no such endpoint, an
// invalid name): it may go through, to get its 400 or 404.
//
// Upload sessions need push throughout, like the POST that opened them; a
// mount with from= also needs pull on the source repository. A from= that
// is not a repository name still needs push: the handler ignores it and
// opens an upload session, which must not be open to anyone.
func Needs(r *http.Request) (needs []Need, ping, ok bool) {
	p := r.URL.Path
	switch p {
	case "/v2/", "/v2":
		return nil, true, true
	case "/v2/_catalog":
		return []Need{{Action: "*", Catalog: true}}, false, true
	}
	ep, name, _ := splitRoute(p)
	if ep == epNone || validName(name) != nil {
		return nil, false, false
	}
	action := "pull"
	switch {
	case ep == epUpload:
		action = "push"
	case r.Method == http.MethodDelete:
		action = "delete"
	case ep == epManifest && r.Method == http.MethodPut:
		action = "push"
	}
	needs = []Need{{Repository: name, Action: action}}
	if ep == epUpload && r.Method == http.MethodPost {
		if from := r.URL.Query().Get("from"); from != "" && r.URL.Query().Get("mount") != "" && from != name && validName(from) == nil {
			needs = append(needs, Need{Repository: from, Action: "pull"})
		}
	}
	return needs, false, true
}

type viewKey struct{}

// WithView hands the handler the consistent view authorization was
// decided on, so one request costs one read index, not two. Only reads
// that start a handler use it; nothing that must see the request's own
// write does.
func WithView(ctx context.Context, v *fsm.View) context.Context {
	return context.WithValue(ctx, viewKey{}, v)
}

// WriteError answers with the OCI error JSON (status, code, message), as
// every /v2/ error is answered.
func WriteError(w http.ResponseWriter, r *http.Request, status int, code, msg string) {
	writeError(w, r, nil, newErr(status, code, msg))
}
