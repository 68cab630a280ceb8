package metrics

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/berth-registry/berth/replication"
)

// replicationCollector reads the mirror and push policies' status at each
// scrape.
// Policy names are the operator's resources, not the client's, so they
// are fine as labels. Only the leader runs mirrors: a follower exports
// the committed cursor alone (and lag 0).
type replicationCollector struct {
	status                                   func() []replication.Status
	cursor, head, lag, lagSec, bytes, errors *prometheus.Desc
	running                                  *prometheus.Desc
}

func (c *replicationCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.cursor, c.head, c.lag, c.lagSec, c.bytes, c.errors, c.running} {
		ch <- d
	}
}

func (c *replicationCollector) Collect(ch chan<- prometheus.Metric) {
	gauge := func(d *prometheus.Desc, v float64, policy string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, policy)
	}
	for _, st := range c.status() {
		gauge(c.cursor, float64(st.Cursor), st.Policy)
		gauge(c.head, float64(st.OriginHead), st.Policy)
		gauge(c.lag, float64(st.LagEntries), st.Policy)
		gauge(c.lagSec, st.LagSeconds, st.Policy)
		gauge(c.bytes, float64(st.Bytes), st.Policy)
		failing := 0.0
		if st.LastError != "" {
			failing = 1
		}
		gauge(c.errors, failing, st.Policy)
		running := 0.0
		if st.Running {
			running = 1
		}
		gauge(c.running, running, st.Policy)
	}
}

// WatchReplication exports berth_replication_*{policy} for every enabled
// mirror and push policy, read from status at each scrape. A push
// policy's cursor is this cluster's own index its event trigger reached;
// its origin head and lag are 0.
func (m *Metrics) WatchReplication(status func() []replication.Status) {
	desc := func(name, help string) *prometheus.Desc {
		return prometheus.NewDesc("berth_replication_"+name, help, []string{"policy"}, nil)
	}
	m.reg.MustRegister(&replicationCollector{
		status:  status,
		cursor:  desc("cursor_index", "The origin's Raft index up to which a mirror policy has applied and committed the origin's events (a push policy: this cluster's index its event trigger reached)."),
		head:    desc("origin_head_index", "The origin's Raft index of the newest replicated event in its stream, as the mirror last saw it."),
		lag:     desc("lag_entries", "Replicated events in the origin's stream not applied here yet."),
		lagSec:  desc("lag_seconds", "How long the mirror has been behind its origin; 0 when caught up."),
		bytes:   desc("copied_bytes", "Blob bytes copied from the origin (a push policy: to the destination) in the current leader term."),
		errors:  desc("failing", "1 while the policy's last attempt failed (clusterctl replication status shows why), else 0."),
		running: desc("running", "1 while this node runs the policy (the leader), else 0."),
	})
}
