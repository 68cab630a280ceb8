package admin

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"

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

// history answers every generation the node keeps, oldest first, ending
// with the current one.
func (s *server) history(w http.ResponseWriter, r *http.Request) {
	kind, v, ok := s.view(w, r)
	if !ok {
		return
	}
	name := r.PathValue("name")
	cur, found := v.Resource(kind, name)
	if !found {
		notFound(w, kind, name)
		return
	}
	items := []json.RawMessage{}
	for _, res := range v.ResourceHistory(kind, name) {
		items = append(items, res.Document)
	}
	items = append(items, cur.Document)
	writeJSON(w, http.StatusOK, map[string]any{"apiVersion": resource.APIVersion, "kind": kind + "List", "items": items})
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
	index, err := s.props.Propose(r.Context(), events.ResourceDeleted{Kind: kind, Name: name})
	if err != nil {
		s.fail(w, "delete "+kind+" "+name, err)
		return
	}
	s.logger.Info("resource deleted", "kind", kind, "name", name, "index", index)
	writeJSON(w, http.StatusOK, map[string]string{"kind": kind, "name": name, "action": "deleted"})
}
