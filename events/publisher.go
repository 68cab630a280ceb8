package events

import "strconv"

// MessageID is an event's deduplication ID: the cluster ID and the Raft
// index, which together name one event for all time. The outbox
// (events/outbox) sends it as Nats-Msg-Id, so JetStream drops an event a
// new leader publishes again.
func MessageID(clusterID string, index uint64) string {
	return clusterID + ":" + strconv.FormatUint(index, 10)
}
