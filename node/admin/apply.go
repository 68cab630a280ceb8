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
}

// apply validates every document, then commits all that change something
// in one log entry: a file is applied whole or not at all.
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

	results, status, msg := s.commit(withActor(r, ResourceActor), docs, normalized)
	if msg != "" {
		if status >= 500 {
			s.logger.Error("apply failed", "err", msg)
		}
		writeErr(w, status, msg)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"results": results})
}

// commit proposes every document that changes something as one log entry,
// so Apply takes all of them or none (rule 12): a single document as the
// ResourceApplied every Berth version decodes, several as one
// ResourcesApplied. Documents whose desired state is already stored are
// answered from the (linearizable) read instead of appending a no-op to
// the log, which would also go out to every event consumer; tools that
// re-apply a directory every minute stay cheap. On failure it returns the
// status and message to answer with.
func (s *server) commit(ctx context.Context, docs []resource.Document, normalized [][]byte) ([]ApplyResult, int, string) {
	before, err := s.reads.ReadView(ctx)
	if err != nil {
		return nil, statusOf(err), "read state: " + err.Error()
	}
	results := make([]ApplyResult, len(docs))
	prev := make([]int64, len(docs)) // generation before, 0 if absent
	var batch []events.ResourceApplied
	var changed []int // positions of the documents in batch
	for i, d := range docs {
		results[i] = ApplyResult{Kind: d.Kind, Name: d.Metadata.Name}
		old, existed := before.Resource(d.Kind, d.Metadata.Name)
		if existed && sameDesiredState(old.Document, normalized[i]) {
			results[i].Generation, results[i].Action = old.Generation, ActionUnchanged
			continue
		}
		if existed {
			prev[i] = old.Generation
		}
		batch = append(batch, events.ResourceApplied{Kind: d.Kind, Name: d.Metadata.Name, Document: normalized[i]})
		changed = append(changed, i)
	}
	if len(batch) == 0 {
		return results, http.StatusOK, ""
	}
	var p events.Payload = batch[0]
	if len(batch) > 1 {
		p = events.ResourcesApplied{Resources: batch}
	}
	index, err := s.props.Propose(ctx, p)
	if err != nil {
		s.logger.Warn("apply failed", "resources", len(batch), "err", err)
		var ref *fsm.Refusal
		if errors.As(err, &ref) {
			return nil, statusOf(err), "nothing was applied: " + err.Error()
		}
		// Unavailable or abandoned: the entry may still commit later.
		return nil, statusOf(err), fmt.Sprintf("the apply of %d resource(s) may not have been committed: %v; run it again (applying the same file twice changes nothing)", len(batch), err)
	}
	v, err := s.reads.ReadView(ctx)
	if err != nil {
		return nil, statusOf(err), fmt.Sprintf("applied at index %d, but reading the result failed: %v", index, err)
	}
	for _, i := range changed {
		res := &results[i]
		cur, ok := v.Resource(res.Kind, res.Name)
		if !ok {
			return nil, http.StatusConflict, fmt.Sprintf("applied at index %d, but %s %q was deleted since by another client", index, res.Kind, res.Name)
		}
		// The FSM bumps the generation only for a change of the desired
		// state; if another client applied the same resource at the same
		// moment, the action describes what this node saw.
		res.Generation = cur.Generation
		switch {
		case prev[i] == 0:
			res.Action = ActionCreated
		case prev[i] == cur.Generation:
			res.Action = ActionUnchanged
		default:
			res.Action = ActionConfigured
		}
		s.logger.Info("resource applied", "kind", res.Kind, "name", res.Name, "generation", res.Generation, "action", res.Action, "index", index)
	}
	return results, http.StatusOK, ""
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
