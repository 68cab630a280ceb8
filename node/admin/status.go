package admin

import (
	"context"
	"encoding/json"

	"github.com/berth-registry/berth/fsm/resource"
)

// ConditionsFunc computes the observed conditions of a stored resource on
// the node that answers, such as whether it can read a referenced secret.
// It must not fail: a problem is what a condition reports.
type ConditionsFunc func(ctx context.Context, kind, name string, doc []byte) []resource.Condition

// Option configures the admin API.
type Option func(*server)

// WithConditions makes GET of a resource (and of a list) carry
// status.conditions computed by f. The status is observed, never stored:
// apply ignores it, so `get -o yaml | apply -f -` still works.
func WithConditions(f ConditionsFunc) Option {
	return func(s *server) { s.conditions = f }
}

// withStatus adds status.conditions to a stored document when there are
// any; otherwise the document is answered as stored.
func (s *server) withStatus(ctx context.Context, kind, name string, doc json.RawMessage) json.RawMessage {
	if s.conditions == nil {
		return doc
	}
	conds := s.conditions(ctx, kind, name, doc)
	if len(conds) == 0 {
		return doc
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(doc, &m); err != nil {
		return doc // stored documents are JSON objects; keep it as it is if not
	}
	status, err := json.Marshal(map[string]any{"conditions": conds})
	if err != nil {
		return doc
	}
	m["status"] = status
	out, err := json.Marshal(m)
	if err != nil {
		return doc
	}
	return out
}
