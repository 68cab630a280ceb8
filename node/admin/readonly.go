package admin

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"

	"github.com/berth-registry/berth/events"
	"github.com/berth-registry/berth/fsm"
	"github.com/berth-registry/berth/node/access"
)

// ReadOnlyRequest is the body of POST /admin/v1/readonly.
type ReadOnlyRequest struct {
	// On is required, so that a body without it (or with a misspelt
	// field) is refused rather than taken as "off".
	On     *bool  `json:"on"`
	Reason string `json:"reason,omitempty"`
}

// AdminActor is who a change made with the admin token is recorded as,
// when the request carries no identity of its own.
const AdminActor = "admin"

// ResourceActor is who a resource applied or deleted with the admin
// token is recorded as (`clusterctl history`): the subject the admin
// token has everywhere else (access.AdminSubject).
const ResourceActor = access.AdminSubject

// withActor returns the request's context with an Origin naming actor,
// unless the request already carries an identity of its own, and the
// client's user agent.
func withActor(r *http.Request, actor string) context.Context {
	ctx := r.Context()
	o := events.OriginFrom(ctx)
	if o.Actor != "" {
		return ctx
	}
	o.Actor = actor
	if o.UserAgent == "" {
		o.UserAgent = r.UserAgent()
	}
	return events.WithOrigin(ctx, o)
}

// maxReadOnlyBody bounds the request: one flag and a short reason.
const maxReadOnlyBody = 4 << 10

// readOnlyStatus answers the mode as the log last set it, at the read
// index, so it reflects every acknowledged switch.
func (s *server) readOnlyStatus(w http.ResponseWriter, r *http.Request) {
	v, err := s.reads.ReadView(r.Context())
	if err != nil {
		s.fail(w, "read-only status", err)
		return
	}
	writeJSON(w, http.StatusOK, v.ReadOnly())
}

// setReadOnly commits a ReadOnlySet and answers the mode once this node
// applied it: from then on every node that applied the entry refuses
// writes (or, off, takes them again).
func (s *server) setReadOnly(w http.ResponseWriter, r *http.Request) {
	dec := json.NewDecoder(io.LimitReader(r.Body, maxReadOnlyBody))
	dec.DisallowUnknownFields()
	var req ReadOnlyRequest
	if err := dec.Decode(&req); err != nil || req.On == nil {
		msg := `body must be {"on": true|false, "reason": "why (optional)"}`
		if err != nil && !errors.Is(err, io.EOF) {
			msg += ": " + err.Error()
		}
		writeErr(w, http.StatusBadRequest, msg)
		return
	}
	req.Reason = strings.TrimSpace(req.Reason)
	if err := fsm.CheckReadOnlyReason(req.Reason); err != nil {
		writeErr(w, http.StatusBadRequest, err.Error())
		return
	}
	if !*req.On && req.Reason != "" {
		writeErr(w, http.StatusBadRequest, "a reason is kept only when turning read-only mode on; send no reason with on: false")
		return
	}
	ctx := withActor(r, AdminActor)
	if _, err := s.props.Propose(ctx, events.ReadOnlySet{On: *req.On, Reason: req.Reason}); err != nil {
		s.fail(w, "set read-only mode", err)
		return
	}
	v, err := s.reads.ReadView(ctx)
	if err != nil {
		s.fail(w, "read-only status", err)
		return
	}
	ro := v.ReadOnly()
	s.logger.Info("read-only mode set", "on", ro.On, "reason", ro.Reason, "actor", ro.Actor, "index", ro.Index)
	writeJSON(w, http.StatusOK, ro)
}
