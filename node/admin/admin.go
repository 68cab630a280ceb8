// Package admin serves the admin API that clusterctl talks to: declarative
// resources (apply, get, delete, history). Writes go through the log like
// every other change (rule 11).
package admin

import (
	"bytes"
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"

	"github.com/berth-registry/berth/events"
	"github.com/berth-registry/berth/fsm"
	"github.com/berth-registry/berth/fsm/resource"
)

// Proposer commits an event through the log.
type Proposer interface {
	Propose(ctx context.Context, p events.Payload) (uint64, error)
}

// Reader returns a view reflecting every acknowledged write.
type Reader interface {
	ReadView(ctx context.Context) (*fsm.View, error)
}

// maxApplyBody bounds one apply request.
const maxApplyBody = 4 << 20

type server struct {
	token  string
	props  Proposer
	reads  Reader
	logger *slog.Logger
}

// New returns the handler for /admin/v1/..., guarded by a bearer token.
func New(token string, p Proposer, r Reader, logger *slog.Logger) http.Handler {
	s := &server{token: token, props: p, reads: r, logger: logger}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /admin/v1/apply", s.apply)
	mux.HandleFunc("GET /admin/v1/resources/{kind}", s.list)
	mux.HandleFunc("GET /admin/v1/resources/{kind}/{name}", s.get)
	mux.HandleFunc("DELETE /admin/v1/resources/{kind}/{name}", s.delete)
	mux.HandleFunc("GET /admin/v1/resources/{kind}/{name}/history", s.history)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		if !ok || subtle.ConstantTimeCompare([]byte(got), []byte(s.token)) != 1 {
			writeErr(w, http.StatusUnauthorized, "admin token required or wrong: pass --token, set BERTH_TOKEN, or use the node's data/admin.token")
			return
		}
		mux.ServeHTTP(w, r)
	})
}

// ApplyResult is the outcome of applying one document, kubectl style.
type ApplyResult struct {
	Kind       string `json:"kind"`
	Name       string `json:"name"`
	Generation int64  `json:"generation"`
	Action     string `json:"action"` // created, configured, unchanged
}

// DocumentError lists the problems of one document of an apply.
type DocumentError struct {
	Document int      `json:"document"`
	Kind     string   `json:"kind,omitempty"`
	Name     string   `json:"name,omitempty"`
	Problems []string `json:"problems"`
}

// apply validates every document before proposing any, so a file with one
// bad document changes nothing.
func (s *server) apply(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxApplyBody))
	if err != nil {
		writeErr(w, http.StatusRequestEntityTooLarge, "apply body over 4 MiB: split the file")
		return
	}
	docs, err := resource.ParseYAML(bytes.NewReader(body))
	if err != nil {
		writeErr(w, http.StatusBadRequest, err.Error())
		return
	}
	if len(docs) == 0 {
		writeErr(w, http.StatusBadRequest, "no resources in the request")
		return
	}
	normalized := make([][]byte, len(docs))
	var bad []DocumentError
	seen := map[string]int{}
	for i, d := range docs {
		n, err := resource.Normalize(d)
		var ve *resource.ValidationError
		switch {
		case errors.As(err, &ve):
			bad = append(bad, DocumentError{Document: i + 1, Kind: d.Kind, Name: d.Metadata.Name, Problems: ve.Messages()})
		case err != nil:
			bad = append(bad, DocumentError{Document: i + 1, Problems: []string{err.Error()}})
		}
		key := d.Kind + "/" + d.Metadata.Name
		if j, dup := seen[key]; dup {
			bad = append(bad, DocumentError{Document: i + 1, Kind: d.Kind, Name: d.Metadata.Name,
				Problems: []string{"duplicate of document " + strconv.Itoa(j)}})
		}
		seen[key] = i + 1
		normalized[i] = n
	}
	if len(bad) > 0 {
		writeJSON(w, http.StatusBadRequest, map[string]any{"error": "invalid resources: nothing was applied", "documents": bad})
		return
	}
	results := make([]ApplyResult, 0, len(docs))
	for i, d := range docs {
		before, err := s.generation(r.Context(), d.Kind, d.Metadata.Name)
		if err != nil {
			writeErr(w, statusOf(err), err.Error())
			return
		}
		if _, err := s.props.Propose(r.Context(), events.ResourceApplied{Kind: d.Kind, Name: d.Metadata.Name, Document: normalized[i]}); err != nil {
			writeErr(w, statusOf(err), err.Error())
			return
		}
		after, err := s.generation(r.Context(), d.Kind, d.Metadata.Name)
		if err != nil {
			writeErr(w, statusOf(err), err.Error())
			return
		}
		res := ApplyResult{Kind: d.Kind, Name: d.Metadata.Name, Generation: after, Action: "configured"}
		switch {
		case before == 0:
			res.Action = "created"
		case before == after:
			res.Action = "unchanged"
		}
		results = append(results, res)
	}
	writeJSON(w, http.StatusOK, map[string]any{"results": results})
}

func (s *server) generation(ctx context.Context, kind, name string) (int64, error) {
	v, err := s.reads.ReadView(ctx)
	if err != nil {
		return 0, err
	}
	if r, ok := v.Resource(kind, name); ok {
		return r.Generation, nil
	}
	return 0, nil
}

func (s *server) kind(w http.ResponseWriter, r *http.Request) (string, bool) {
	k, ok := resource.CanonicalKind(r.PathValue("kind"))
	if !ok {
		writeErr(w, http.StatusNotFound, "unknown kind "+r.PathValue("kind")+": known kinds are "+strings.Join(resource.Kinds(), ", "))
	}
	return k, ok
}

func (s *server) list(w http.ResponseWriter, r *http.Request) {
	kind, ok := s.kind(w, r)
	if !ok {
		return
	}
	v, err := s.reads.ReadView(r.Context())
	if err != nil {
		writeErr(w, statusOf(err), err.Error())
		return
	}
	items := []json.RawMessage{}
	for _, res := range v.Resources(kind) {
		items = append(items, res.Document)
	}
	writeJSON(w, http.StatusOK, map[string]any{"kind": kind + "List", "items": items})
}

func (s *server) get(w http.ResponseWriter, r *http.Request) {
	kind, ok := s.kind(w, r)
	if !ok {
		return
	}
	v, err := s.reads.ReadView(r.Context())
	if err != nil {
		writeErr(w, statusOf(err), err.Error())
		return
	}
	res, found := v.Resource(kind, r.PathValue("name"))
	if !found {
		writeErr(w, http.StatusNotFound, kind+" "+r.PathValue("name")+" not found")
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Write(res.Document)
}

func (s *server) history(w http.ResponseWriter, r *http.Request) {
	kind, ok := s.kind(w, r)
	if !ok {
		return
	}
	v, err := s.reads.ReadView(r.Context())
	if err != nil {
		writeErr(w, statusOf(err), err.Error())
		return
	}
	name := r.PathValue("name")
	cur, found := v.Resource(kind, name)
	if !found {
		writeErr(w, http.StatusNotFound, kind+" "+name+" not found")
		return
	}
	items := []json.RawMessage{}
	for _, res := range v.ResourceHistory(kind, name) {
		items = append(items, res.Document)
	}
	items = append(items, cur.Document)
	writeJSON(w, http.StatusOK, map[string]any{"items": items})
}

func (s *server) delete(w http.ResponseWriter, r *http.Request) {
	kind, ok := s.kind(w, r)
	if !ok {
		return
	}
	name := r.PathValue("name")
	if _, err := s.props.Propose(r.Context(), events.ResourceDeleted{Kind: kind, Name: name}); err != nil {
		writeErr(w, statusOf(err), err.Error())
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"kind": kind, "name": name, "action": "deleted"})
}

func statusOf(err error) int {
	var ref *fsm.Refusal
	if errors.As(err, &ref) {
		if ref.Code == fsm.CodeResourceUnknown {
			return http.StatusNotFound
		}
		return http.StatusBadRequest
	}
	var u interface{ Unavailable() bool }
	if errors.As(err, &u) {
		return http.StatusServiceUnavailable
	}
	return http.StatusInternalServerError
}

func writeErr(w http.ResponseWriter, code int, msg string) {
	writeJSON(w, code, map[string]string{"error": msg})
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	json.NewEncoder(w).Encode(v)
}
