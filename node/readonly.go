package node

import (
	"fmt"
	"net/http"

	"github.com/berth-registry/berth/fsm"
	"github.com/berth-registry/berth/gc"
)

// Read-only mode (fsm/readonly.go) as the node uses it: the OCI API
// refuses writes up front from the local state, GC pauses, /metrics shows
// berth_readonly, status shows the mode. /readyz does not change: a
// read-only node still serves every read.
//
// Replication into this cluster (not built yet) must pause here too: its
// job should check readOnly() before fetching anything, as GC does with
// gcPaused, and its writes would be refused by Apply regardless.

// readOnly is the mode in this node's local state: what it has applied,
// without a read-index round, which is all an up-front check needs.
func (n *Node) readOnly() fsm.ReadOnly { return n.fsm.View().ReadOnly() }

// gcPaused is the GC job's gc.Paused: a run does not start, a sweep does
// not start or delete, while the registry is read-only.
func (n *Node) gcPaused() error {
	if ro := n.readOnly(); ro.On {
		return pausedError(ro)
	}
	return nil
}

func pausedError(ro fsm.ReadOnly) error {
	return fmt.Errorf("%w: %s", gc.ErrPaused, ro.Message())
}

// gcPausedError answers a GC run requested while read-only with 409.
type gcPausedError struct{ err error }

func (e gcPausedError) Error() string { return e.err.Error() }
func (e gcPausedError) Unwrap() error { return e.err }
func (gcPausedError) HTTPStatus() int { return http.StatusConflict }
