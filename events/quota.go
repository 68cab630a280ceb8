package events

// Namespace storage quotas (fsm/quota.go; docs/design.md, "Namespace
// quotas").

// TypeQuotasEnabled is generation 3 (generation.go).
const TypeQuotasEnabled Type = "QuotasEnabled"

// QuotasEnabled turns on the enforcement of namespace storage quotas in
// Apply, for good. A binary older than quotas accepts every push, so a
// cluster in a rolling upgrade that refused pushes on its new nodes only
// would fold the same log into different states. The leader therefore
// commits this event once every voter announced generation 3 (it is the
// gate): from its index on, every node that applies the log enforces
// quotas. Usage is counted from the start either way.
type QuotasEnabled struct{}

func (QuotasEnabled) EventType() Type    { return TypeQuotasEnabled }
func (QuotasEnabled) SchemaVersion() int { return 1 }

// QuotaWarning says a namespace's usage reached QuotaWarnPercent of its
// quota. The FSM derives it in Apply from the entry that took the usage
// (or lowered the quota) across that line, identically on every node, and
// keeps it in the entry's outbox row; it is published after the entry's
// own event. Repo is the repository of the push that crossed, if any.
type QuotaWarning struct {
	Namespace string `json:"namespace"`
	Repo      string `json:"repo,omitempty"`
	Usage     int64  `json:"usage"`
	Quota     int64  `json:"quota"`
}

// QuotaWarningEvent renders a warning derived from the log entry ev at
// index. Its ID is the entry's, followed by "/quota.warning/<namespace>":
// unique, stable across republishing, and distinct from the entry's own.
func QuotaWarningEvent(clusterID string, index uint64, ev Event, w QuotaWarning) CloudEvent {
	return CloudEvent{
		SpecVersion: "1.0", ID: EventID(clusterID, index) + "/quota.warning/" + w.Namespace,
		Source: "berth://" + clusterID, Type: CETypeQuotaWarning, Time: ev.Time.UTC(),
		Subject: w.Namespace, DataContentType: "application/json",
		Data: CloudEventData{
			Repository: w.Repo, Namespace: w.Namespace, Usage: w.Usage, Quota: w.Quota,
			Actor: ev.Origin.Actor, UserAgent: ev.Origin.UserAgent, RequestID: ev.Origin.RequestID, Index: index,
		},
	}
}
