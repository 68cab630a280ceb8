package fsm

import (
	"strings"
	"testing"

	"github.com/berth-registry/berth/events"
)

// Every event type this binary decodes has a case in Apply's dispatch,
// or the FSM would refuse a whole class of entries the leader proposed
// (RetentionApplied once did). An empty payload is no valid event: its
// handler may refuse it or trip over it (the leader validates payloads
// before they are proposed), but it must not be "no handler".
func TestEveryEventTypeHasAHandler(t *testing.T) {
	for _, typ := range events.Types() {
		p, err := events.DecodePayload(typ, []byte("{}"))
		if err != nil {
			t.Fatalf("%s: %v", typ, err)
		}
		h := newHarness(t)
		h.seed()
		func() {
			defer func() { _ = recover() }() // reached a handler
			if err := h.apply(p); err != nil && strings.Contains(err.Error(), "no handler") {
				t.Errorf("%s: %v", typ, err)
			}
		}()
	}
}
