package admin

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/berth-registry/berth/events"
	"github.com/berth-registry/berth/fsm"
	"github.com/berth-registry/berth/fsm/resource"
)

// kind resolves the {kind} of a URL: any case, singular, plural or alias
// ("registries", "Registry", "reg"). An unknown kind is a 404.
func (s *server) kind(w http.ResponseWriter, r *http.Request) (string, bool) {
	k, ok := resource.CanonicalKind(r.PathValue("kind"))
	if !ok {
		writeErr(w, http.StatusNotFound, fmt.Sprintf("unknown kind %q: known kinds are %s", r.PathValue("kind"), strings.Join(resource.Kinds(), ", ")))
	}
	return k, ok
}

// view resolves the kind and reads the state, answering on failure.
func (s *server) view(w http.ResponseWriter, r *http.Request) (string, *fsm.View, bool) {
	kind, ok := s.kind(w, r)
	if !ok {
		return "", nil, false
	}
	v, err := s.reads.ReadView(r.Context())
	if err != nil {
		s.fail(w, "read state", err)
		return "", nil, false
	}
	return kind, v, true
}

func notFound(w http.ResponseWriter, kind, name string) {
	writeErr(w, http.StatusNotFound, fmt.Sprintf("%s %q not found", kind, name))
}

// list answers {"apiVersion", "kind": "RegistryList", "items": [...]},
// items sorted by name.
func (s *server) list(w http.ResponseWriter, r *http.Request) {
	kind, v, ok := s.view(w, r)
	if !ok {
		return
	}
	items := []json.RawMessage{}
	for _, res := range v.Resources(kind) {
		items = append(items, s.withStatus(r.Context(), v, kind, res.Name, res.Document))
	}
	writeJSON(w, http.StatusOK, map[string]any{"apiVersion": resource.APIVersion, "kind": kind + "List", "items": items})
}

// get answers the stored document: the normalized resource with
// metadata.generation and the timestamps.
func (s *server) get(w http.ResponseWriter, r *http.Request) {
	kind, v, ok := s.view(w, r)
	if !ok {
		return
	}
	res, found := v.Resource(kind, r.PathValue("name"))
	if !found {
		notFound(w, kind, r.PathValue("name"))
		return
	}
	writeJSON(w, http.StatusOK, s.withStatus(r.Context(), v, kind, res.Name, res.Document))
}

// HistoryEntry is what the history answer says of one generation besides
// its document: when it was applied and by whom (empty when the cluster
// did not record it yet).
type HistoryEntry struct {
	Generation int64     `json:"generation"`
	Applied    time.Time `json:"applied"`
	Actor      string    `json:"actor,omitempty"`
}

// HistoryDeletion is when and by whom a resource was deleted.
type HistoryDeletion struct {
	Time  time.Time `json:"time"`
	Actor string    `json:"actor,omitempty"`
}

// history answers every generation the node keeps, oldest first, ending
// with the current one: "items" holds the documents (what `clusterctl
// apply` takes back), "generations" when and by whom each was applied.
// A deleted resource's history is kept, ending with the generation that
// was deleted, and "deleted" says when and by whom.
func (s *server) history(w http.ResponseWriter, r *http.Request) {
	kind, v, ok := s.view(w, r)
	if !ok {
		return
	}
	name := r.PathValue("name")
	gens := v.ResourceHistory(kind, name)
	cur, found := v.Resource(kind, name)
	del, deleted := v.ResourceDeletion(kind, name)
	switch {
	case found:
		gens = append(gens, cur)
	case !deleted:
		notFound(w, kind, name)
		return
	}
	items := []json.RawMessage{}
	entries := []HistoryEntry{}
	for _, res := range gens {
		items = append(items, res.Document)
		entries = append(entries, HistoryEntry{Generation: res.Generation, Applied: res.Updated.UTC(), Actor: res.Actor})
	}
	answer := map[string]any{"apiVersion": resource.APIVersion, "kind": kind + "List", "items": items, "generations": entries}
	if deleted {
		answer["deleted"] = HistoryDeletion{Time: del.Time.UTC(), Actor: del.Actor}
	}
	writeJSON(w, http.StatusOK, answer)
}

// delete removes a resource through the log. A resource that does not
// exist is answered from the state without proposing, so a typo does not
// cost a log entry; if it vanishes between the check and the commit, the
// FSM's refusal still gives the same 404.
func (s *server) delete(w http.ResponseWriter, r *http.Request) {
	kind, v, ok := s.view(w, r)
	if !ok {
		return
	}
	name := r.PathValue("name")
	if _, found := v.Resource(kind, name); !found {
		writeErr(w, http.StatusNotFound, fmt.Sprintf("%s %q does not exist", kind, name))
		return
	}
	index, err := s.props.Propose(withActor(r, ResourceActor), events.ResourceDeleted{Kind: kind, Name: name})
	if err != nil {
		s.fail(w, "delete "+kind+" "+name, err)
		return
	}
	s.logger.Info("resource deleted", "kind", kind, "name", name, "index", index)
	writeJSON(w, http.StatusOK, map[string]string{"kind": kind, "name": name, "action": "deleted"})
}
