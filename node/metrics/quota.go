package metrics

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/berth-registry/berth/fsm"
)

// namespaceCollector reads each namespace's storage usage and quota from
// the FSM when scraped: Apply already keeps both.
//
// Only namespaces an operator created (a Namespace resource) get series:
// any first path component of a pushed repository is a namespace, and
// those names are the client's (package doc: no client-chosen labels).
type namespaceCollector struct {
	view         func() *fsm.View
	usage, quota *prometheus.Desc
}

func (c *namespaceCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.usage
	ch <- c.quota
}

func (c *namespaceCollector) Collect(ch chan<- prometheus.Metric) {
	v := c.view()
	for _, r := range v.Resources(fsm.KindNamespace) {
		u := v.NamespaceUsage(r.Name)
		ch <- prometheus.MustNewConstMetric(c.usage, prometheus.GaugeValue, float64(u.Bytes), r.Name)
		if u.Quota > 0 {
			ch <- prometheus.MustNewConstMetric(c.quota, prometheus.GaugeValue, float64(u.Quota), r.Name)
		}
	}
}

// WatchNamespaces exports berth_namespace_usage_bytes{namespace} and
// berth_namespace_quota_bytes{namespace} (absent without a quota), read
// from view (the node's FSM, not through the read index: a scrape may be
// a few entries behind) at each scrape.
func (m *Metrics) WatchNamespaces(view func() *fsm.View) {
	m.reg.MustRegister(&namespaceCollector{
		view: view,
		usage: prometheus.NewDesc("berth_namespace_usage_bytes",
			"Deduplicated bytes a namespace stores: its manifests and the blobs they reference, each digest once, as its quota counts them.", []string{"namespace"}, nil),
		quota: prometheus.NewDesc("berth_namespace_quota_bytes",
			"A namespace's storage quota (spec.quota.storage); absent for a namespace without one.", []string{"namespace"}, nil),
	})
}
