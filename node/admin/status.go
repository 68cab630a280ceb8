package admin

import (
	"context"
	"encoding/json"

	"github.com/berth-registry/berth/fsm"
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

// withStatus adds the observed status to a stored document: conditions
// when there are any, and a Namespace's storage usage (and quota) in bytes
// from the state the read sees. Without either, the document is answered
// as stored.
func (s *server) withStatus(ctx context.Context, v *fsm.View, kind, name string, doc json.RawMessage) json.RawMessage {
	status := map[string]any{}
	if s.conditions != nil {
		if conds := s.conditions(ctx, kind, name, doc); len(conds) > 0 {
			status["conditions"] = conds
		}
	}
	if kind == fsm.KindNamespace {
		u := v.NamespaceUsage(name)
		status["usage"] = u.Bytes
		if u.Quota > 0 {
			status["quota"] = u.Quota
		}
	}
	if len(status) == 0 {
		return doc
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(doc, &m); err != nil {
		return doc // stored documents are JSON objects; keep it as it is if not
	}
	b, err := json.Marshal(status)
	if err != nil {
		return doc
	}
	m["status"] = b
	out, err := json.Marshal(m)
	if err != nil {
		return doc
	}
	return out
}
