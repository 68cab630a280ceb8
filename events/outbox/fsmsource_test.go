package outbox

import (
	"github.com/berth-registry/berth/fsm"
)

// FSMSource is the node's adapter (node/events.go) again, for tests that
// drive the outbox from a real FSM: events/ may not import fsm.
type FSMSource struct{ FSM *fsm.FSM }

func (s FSMSource) ClusterID() string { return s.FSM.View().ClusterID() }

func (s FSMSource) Cursor() uint64 {
	c, _ := s.FSM.View().OutboxCursor()
	return c
}

func (s FSMSource) Pending(after uint64, limit int) []Row {
	rows := s.FSM.View().Pending(after, limit)
	out := make([]Row, len(rows))
	for i, r := range rows {
		out[i] = Row{Index: r.Index, Entry: r.Entry, Warnings: r.Warnings}
	}
	return out
}

func (s FSMSource) Changed() <-chan struct{} { return s.FSM.Changed() }
