package secrets

import (
	"context"
	"encoding/json"
	"errors"

	"github.com/berth-registry/berth/fsm/resource"
)

// ConditionSecretResolved is the condition type that says whether this
// node can read the secret a resource references.
const ConditionSecretResolved = "SecretResolved"

// Conditions computes the observed conditions of a stored resource on this
// node: for a Webhook with spec.signing and a Registry with
// spec.credentials.secretRef or spec.events.credentials.secretRef, whether
// the secret can be read. A resource
// that references no secret has no condition. It never fails: a problem is
// what a condition reports.
func (r *Resolver) Conditions(ctx context.Context, kind, _ string, doc []byte) []resource.Condition {
	var d struct {
		Spec struct {
			Signing *struct {
				SecretRef *resource.SecretRef `json:"secretRef"`
			} `json:"signing"`
			Credentials *struct {
				SecretRef *resource.SecretRef `json:"secretRef"`
			} `json:"credentials"`
			// Events is a Registry's Berth origin stream, which mirrors
			// connect to with a secret (a Webhook's events are a list).
			Events json.RawMessage `json:"events"`
		} `json:"spec"`
	}
	if err := json.Unmarshal(doc, &d); err != nil {
		return nil
	}
	var ref *resource.SecretRef
	switch {
	case kind == "Webhook" && d.Spec.Signing != nil:
		ref = d.Spec.Signing.SecretRef
	case kind == "Registry" && d.Spec.Credentials != nil:
		ref = d.Spec.Credentials.SecretRef
	}
	var events *resource.SecretRef
	var e *struct {
		Credentials *struct {
			Type      string              `json:"type"`
			SecretRef *resource.SecretRef `json:"secretRef"`
		} `json:"credentials"`
	}
	if kind == "Registry" && len(d.Spec.Events) > 0 {
		if err := json.Unmarshal(d.Spec.Events, &e); err != nil {
			return nil
		}
	}
	if e != nil && e.Credentials != nil && e.Credentials.SecretRef != nil {
		// The key defaults to the credentials' type, as the mirror reads it.
		ref := *e.Credentials.SecretRef
		if ref.Key == "" {
			ref.Key = e.Credentials.Type
		}
		events = &ref
	}
	if ref == nil && events == nil {
		return nil
	}
	var err error
	switch {
	case kind == "Webhook":
		_, err = r.Resolve(ctx, *ref)
	case ref != nil:
		err = r.Exists(ctx, *ref)
	}
	if err == nil && events != nil {
		_, err = r.Resolve(ctx, *events)
	}
	return []resource.Condition{secretCondition(err)}
}

// secretCondition turns the outcome of reading a secret into a condition.
// The message names the file but never its content.
func secretCondition(err error) resource.Condition {
	c := resource.Condition{Type: ConditionSecretResolved, Status: "False", Reason: "SecretUnreadable"}
	switch {
	case err == nil:
		c.Status, c.Reason = "True", "SecretFound"
		return c
	case errors.Is(err, ErrNotFound):
		c.Reason = "SecretNotFound"
	case errors.Is(err, ErrTooLarge):
		c.Reason = "SecretTooLarge"
	case errors.Is(err, ErrEmpty):
		c.Reason = "SecretEmpty"
	case errors.Is(err, ErrInvalidRef):
		c.Reason = "InvalidSecretRef"
	case errors.Is(err, ErrNotFile):
		c.Reason = "SecretNotAFile"
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		c.Status, c.Reason = "Unknown", "Canceled"
	}
	c.Message = err.Error()
	return c
}
