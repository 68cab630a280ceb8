package admin

import (
	"fmt"
	"net/http"
	"strconv"

	"github.com/berth-registry/berth/fsm"
)

// maxRepositoriesPage caps one page of GET /admin/v1/repositories: each
// row is a few lookups, and clusterctl follows next for the rest.
const maxRepositoriesPage = 1000

// repositoryJSON is one repository's accounting (fsm/accounting.go):
// bytes deduplicated within the repository, logicalBytes with every
// manifest counting each blob it lists.
type repositoryJSON struct {
	Name         string `json:"name"`
	Tags         int    `json:"tags"`
	Manifests    int    `json:"manifests"`
	Blobs        int    `json:"blobs"`
	Bytes        int64  `json:"bytes"`
	LogicalBytes int64  `json:"logicalBytes"`
}

// totalsJSON is the registry's accounting: bytes is each distinct digest
// any manifest reaches once, what the blob store holds for them.
type totalsJSON struct {
	Bytes        int64 `json:"bytes"`
	LogicalBytes int64 `json:"logicalBytes"`
	Digests      int   `json:"digests"`
}

func repositoryOf(s fsm.RepositoryStorage) repositoryJSON {
	return repositoryJSON{Name: s.Repository, Tags: s.Tags, Manifests: s.Manifests, Blobs: s.Blobs, Bytes: s.Bytes, LogicalBytes: s.Logical}
}

func totalsOf(t fsm.StorageTotals) totalsJSON {
	return totalsJSON{Bytes: t.Bytes, LogicalBytes: t.Logical, Digests: t.Digests}
}

// repositories answers one page of repositories after ?last= (at most ?n=,
// default and cap maxRepositoriesPage) in name order, with the registry's
// totals and, when more remain, "next": the last= of the following page.
func (s *server) repositories(w http.ResponseWriter, r *http.Request) {
	n := maxRepositoriesPage
	if q := r.URL.Query().Get("n"); q != "" {
		v, err := strconv.Atoi(q)
		if err != nil || v < 1 {
			writeErr(w, http.StatusBadRequest, fmt.Sprintf("n must be a positive integer, got %q", q))
			return
		}
		n = min(v, maxRepositoriesPage)
	}
	v, err := s.reads.ReadView(r.Context())
	if err != nil {
		s.fail(w, "read state", err)
		return
	}
	page, more := v.RepositoryStorages(r.URL.Query().Get("last"), n)
	out := struct {
		Repositories []repositoryJSON `json:"repositories"`
		Next         string           `json:"next,omitempty"`
		Totals       totalsJSON       `json:"totals"`
	}{Repositories: make([]repositoryJSON, 0, len(page)), Totals: totalsOf(v.StorageTotals())}
	for _, p := range page {
		out.Repositories = append(out.Repositories, repositoryOf(p))
	}
	if more {
		out.Next = page[len(page)-1].Repository
	}
	writeJSON(w, http.StatusOK, out)
}

// repository answers one repository's accounting; 404 when it holds
// nothing.
func (s *server) repository(w http.ResponseWriter, r *http.Request) {
	v, err := s.reads.ReadView(r.Context())
	if err != nil {
		s.fail(w, "read state", err)
		return
	}
	name := r.PathValue("name")
	st, ok := v.RepositoryStorage(name)
	if !ok {
		writeErr(w, http.StatusNotFound, fmt.Sprintf("repository %q does not exist (clusterctl get repositories lists them)", name))
		return
	}
	writeJSON(w, http.StatusOK, repositoryOf(st))
}
