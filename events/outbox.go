package events

// The cluster's own bookkeeping for the event outbox (ARCHITECTURE.md rule
// 8). Neither is ever published: ToCloudEvent returns ok=false for both.

// TypeOutboxCursor and TypeClusterIdentified are generation 2 (see
// generation.go): a voter that cannot decode them would halt.
const (
	TypeOutboxCursor      Type = "OutboxCursor"
	TypeClusterIdentified Type = "ClusterIdentified"
)

// OutboxCursor records that every published event up to Index is
// acknowledged (durably) by JetStream. The leader's outbox commits it about
// once a second; a new leader resumes after it. The first one also turns
// the outbox on: from then on the FSM keeps each accepted, publishable
// entry until a cursor passes it.
type OutboxCursor struct {
	Index uint64 `json:"index"`
}

func (OutboxCursor) EventType() Type    { return TypeOutboxCursor }
func (OutboxCursor) SchemaVersion() int { return 1 }

// ClusterIdentified names the cluster for all time: it is the first part
// of every published event's ID ("<cluster id>:<index>"). The first leader
// proposes it; the FSM keeps the first and refuses any later one, so two
// leaders racing to name the cluster agree on the winner.
type ClusterIdentified struct {
	ID string `json:"id"`
}

func (ClusterIdentified) EventType() Type    { return TypeClusterIdentified }
func (ClusterIdentified) SchemaVersion() int { return 1 }
