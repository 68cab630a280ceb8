package api

import (
	"context"
	"errors"
	"net/http"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/berth-registry/berth/events"
	"github.com/berth-registry/berth/fsm"
)

// orphanIfRefused tells garbage collection about bytes this request wrote
// when Apply refused the event that would have named them (a manifest
// over its namespace's quota, a link in read-only mode): no other event
// names them, so GC could never find them. Best effort: a failure leaves
// the bytes where they are, as before.
func (h *handler) orphanIfRefused(r *http.Request, err error, d digest.Digest, size int64) {
	var ref *fsm.Refusal
	if !errors.As(err, &ref) {
		return
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), 10*time.Second)
	defer cancel()
	if _, err := h.props.Propose(ctx, events.BytesOrphaned{Digest: d, Size: size}); err != nil && h.logger != nil {
		h.logger.Debug("could not report the bytes of a refused write to GC", "digest", d, "err", err)
	}
}
