package events

import (
	"context"
	"strconv"
)

// Publisher delivers committed events outside the cluster. It is the seam
// where NATS JetStream plugs in: the leader's outbox reads the committed
// log from its publish cursor and calls Publish for each event, in index
// order, then commits the new cursor through the log (ARCHITECTURE.md rule
// 8). A Publisher must be idempotent for a given index, because a new
// leader resumes from the last committed cursor and may publish an event
// again; JetStream drops the duplicate by its message ID.
type Publisher interface {
	Publish(ctx context.Context, index uint64, e Event) error
}

// MessageID is an event's deduplication ID: the cluster ID and the Raft
// index, which together name one event for all time.
func MessageID(clusterID string, index uint64) string {
	return clusterID + ":" + strconv.FormatUint(index, 10)
}
