package node

import (
	"testing"
	"time"
)

// A leader commits QuotasEnabled when its term starts (a single voter is
// never behind the generation gate), and the FSM then enforces quotas.
func TestLeaderEnablesQuotas(t *testing.T) {
	n := startSingle(t)
	for deadline := time.Now().Add(10 * time.Second); !n.fsm.View().QuotasEnforced(); {
		if time.Now().After(deadline) {
			t.Fatal("the leader did not commit QuotasEnabled")
		}
		time.Sleep(10 * time.Millisecond)
	}
}
