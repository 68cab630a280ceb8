package admin

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"reflect"

	"github.com/berth-registry/berth/events"
	"github.com/berth-registry/berth/fsm"
	"github.com/berth-registry/berth/fsm/resource"
)

// Actions reported by apply, as kubectl words them.
const (
	ActionCreated    = "created"
	ActionConfigured = "configured"
	ActionUnchanged  = "unchanged"
)

// ApplyResult is the outcome of applying one document.
type ApplyResult struct {
	Kind       string `json:"kind"`
	Name       string `json:"name"`
	Generation int64  `json:"generation"`
	Action     string `json:"action"`
}

// DocumentError lists the problems of one document of an apply: its
// position in the request (from 1), the line it starts on, and every
// problem with its field path.
type DocumentError struct {
	Document int      `json:"document"`
	Line     int      `json:"line,omitempty"`
	Kind     string   `json:"kind,omitempty"`
	Name     string   `json:"name,omitempty"`
	Problems []string `json:"problems"`
}

// applyError is the answer to a refused apply.
type applyError struct {
	Error     string          `json:"error"`
	Documents []DocumentError `json:"documents,omitempty"`
	// Results lists the documents applied before a later one failed.
	Results []ApplyResult `json:"results,omitempty"`
}

// apply validates every document before proposing any, so a file with one
// bad document changes nothing. Each valid document becomes one
// ResourceApplied event, in file order.
func (s *server) apply(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxApplyBody))
	var tooBig *http.MaxBytesError
	switch {
	case errors.As(err, &tooBig):
		writeErr(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("apply body is over %d MiB: split the file", maxApplyBody>>20))
		return
	case err != nil:
		writeErr(w, http.StatusBadRequest, "read request body: "+err.Error())
		return
	}
	docs, err := resource.ParseYAML(bytes.NewReader(body))
	if err != nil {
		writeJSON(w, http.StatusBadRequest, applyError{Error: "cannot parse the resources, nothing was applied: " + err.Error()})
		return
	}
	if len(docs) == 0 {
		writeErr(w, http.StatusBadRequest, "no resources in the request body: send YAML or JSON documents with apiVersion, kind, metadata and spec")
		return
	}

	normalized, bad := validateAll(docs)
	if len(bad) > 0 {
		writeJSON(w, http.StatusBadRequest, applyError{Error: "invalid resources, nothing was applied", Documents: bad})
		return
	}

	before, err := s.reads.ReadView(r.Context())
	if err != nil {
		s.fail(w, "read state", err)
		return
	}
	results := make([]ApplyResult, 0, len(docs))
	for i, d := range docs {
		res, err := s.applyOne(r.Context(), d, normalized[i], before.Resource)
		if err != nil {
			msg := fmt.Sprintf("%s %q (document %d) was not applied: %v", d.Kind, d.Metadata.Name, i+1, err)
			if i > 0 {
				msg += fmt.Sprintf("; the %d document(s) before it were", i)
			}
			writeJSON(w, statusOf(err), applyError{Error: msg, Results: results})
			s.logger.Warn("apply failed", "kind", d.Kind, "name", d.Metadata.Name, "err", err)
			return
		}
		results = append(results, res)
	}
	writeJSON(w, http.StatusOK, map[string]any{"results": results})
}

// validateAll normalizes every document and lists the problems of those
// that are invalid, including a resource given twice.
func validateAll(docs []resource.Document) ([][]byte, []DocumentError) {
	normalized := make([][]byte, len(docs))
	var bad []DocumentError
	seen := map[string]int{}
	for i, d := range docs {
		de := DocumentError{Document: i + 1, Line: d.Line(), Kind: d.Kind, Name: d.Metadata.Name}
		n, err := resource.Normalize(d)
		var ve *resource.ValidationError
		switch {
		case errors.As(err, &ve):
			de.Problems = ve.Messages()
		case err != nil:
			de.Problems = []string{err.Error()}
		}
		key := d.Kind + "/" + d.Metadata.Name
		if j, dup := seen[key]; dup && err == nil {
			de.Problems = append(de.Problems, fmt.Sprintf("metadata.name: %s %q is also document %d; give each resource once", d.Kind, d.Metadata.Name, j))
		} else if !dup {
			seen[key] = i + 1
		}
		if len(de.Problems) > 0 {
			bad = append(bad, de)
		}
		normalized[i] = n
	}
	return normalized, bad
}

// applyOne proposes one document and reports what happened to it. The
// action compares the generation before and after: the FSM bumps it only
// for a change of the desired state. If another client applies the same
// resource at the same moment, the action describes what this node saw.
func (s *server) applyOne(ctx context.Context, d resource.Document, normalized []byte, lookup func(kind, name string) (fsm.Resource, bool)) (ApplyResult, error) {
	res := ApplyResult{Kind: d.Kind, Name: d.Metadata.Name}
	prev, existed := lookup(d.Kind, d.Metadata.Name)
	if existed && sameDesiredState(prev.Document, normalized) {
		// Nothing to change: answer from the (linearizable) read instead
		// of appending a no-op to the log, which would also go out to every
		// event consumer. Tools that re-apply a directory every minute
		// stay cheap.
		res.Generation, res.Action = prev.Generation, ActionUnchanged
		return res, nil
	}
	index, err := s.props.Propose(ctx, events.ResourceApplied{Kind: d.Kind, Name: d.Metadata.Name, Document: normalized})
	if err != nil {
		return res, err
	}
	v, err := s.reads.ReadView(ctx)
	if err != nil {
		return res, err
	}
	cur, ok := v.Resource(d.Kind, d.Metadata.Name)
	if !ok {
		return res, fmt.Errorf("applied at index %d but deleted since", index)
	}
	res.Generation = cur.Generation
	switch {
	case !existed:
		res.Action = ActionCreated
	case prev.Generation == cur.Generation:
		res.Action = ActionUnchanged
	default:
		res.Action = ActionConfigured
	}
	s.logger.Info("resource applied", "kind", res.Kind, "name", res.Name, "generation", res.Generation, "action", res.Action, "index", index)
	return res, nil
}

// sameDesiredState says whether a stored document (normalized, plus the
// generation and timestamps the FSM adds) holds exactly the normalized
// document. When in doubt it says no, and the FSM, which has the last
// word, decides.
func sameDesiredState(stored, normalized []byte) bool {
	var doc map[string]any
	if json.Unmarshal(stored, &doc) != nil {
		return false
	}
	if meta, ok := doc["metadata"].(map[string]any); ok {
		delete(meta, "generation")
		delete(meta, "creationTimestamp")
		delete(meta, "updateTimestamp")
	}
	var want any
	if json.Unmarshal(normalized, &want) != nil {
		return false
	}
	return reflect.DeepEqual(any(doc), want)
}
