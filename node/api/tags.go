package api

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
)

// maxPage caps one page of tags or repositories; a client asking for more
// gets this many and a Link to the rest.
const maxPage = 10000

// page reads the n and last parameters. n absent means "everything", which
// is still served in maxPage pages.
func page(r *http.Request) (n int, last string, err error) {
	q := r.URL.Query()
	last = q.Get("last")
	n = maxPage
	if s := q.Get("n"); s != "" {
		v, convErr := strconv.Atoi(s)
		if convErr != nil || v < 0 {
			return 0, "", newErr(http.StatusBadRequest, codeUnsupported, "n must be a non-negative integer, got "+quote(s))
		}
		n = min(v, maxPage)
	}
	return n, last, nil
}

func nextLink(path string, n int, last string) string {
	return fmt.Sprintf(`<%s?n=%d&last=%s>; rel="next"`, path, n, url.QueryEscape(last))
}

func (h *handler) tags(w http.ResponseWriter, r *http.Request, name string) {
	n, last, err := page(r)
	if err != nil {
		writeError(w, r, h.logger, err)
		return
	}
	view, err := h.readView(w, r)
	if err != nil {
		writeError(w, r, h.logger, err)
		return
	}
	if !view.RepositoryExists(name) {
		writeError(w, r, h.logger, newErr(http.StatusNotFound, codeNameUnknown, "repository "+quote(name)+" not known to registry"))
		return
	}
	tags, more := view.Tags(name, last, n)
	if tags == nil {
		tags = []string{}
	}
	if more && len(tags) > 0 {
		w.Header().Set("Link", nextLink("/v2/"+name+"/tags/list", n, tags[len(tags)-1]))
	}
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(map[string]any{"name": name, "tags": tags})
}

func (h *handler) catalog(w http.ResponseWriter, r *http.Request) {
	n, last, err := page(r)
	if err != nil {
		writeError(w, r, h.logger, err)
		return
	}
	view, err := h.readView(w, r)
	if err != nil {
		writeError(w, r, h.logger, err)
		return
	}
	repos, more := view.Repositories(last, n)
	if repos == nil {
		repos = []string{}
	}
	if more && len(repos) > 0 {
		w.Header().Set("Link", nextLink("/v2/_catalog", n, repos[len(repos)-1]))
	}
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(map[string]any{"repositories": repos})
}
