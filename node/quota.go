package node

import (
	"context"

	"github.com/berth-registry/berth/events"
	"github.com/berth-registry/berth/fsm"
)

// enableQuotas commits QuotasEnabled once per cluster, from the leader's
// term (events.QuotasEnabled says why enforcement waits for it). It is a
// generation 3 event: during a rolling upgrade admit refuses it until
// every voter announced generation 3, and proposeUntilDone retries (one
// warning) until then or until the term ends.
func (n *Node) enableQuotas(ctx context.Context) {
	n.proposeUntilDone(ctx, events.QuotasEnabled{}, func(v *fsm.View) bool { return v.QuotasEnforced() })
}
