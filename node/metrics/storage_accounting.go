package metrics

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/berth-registry/berth/fsm"
)

// storageCollector reads the registry's storage accounting from the FSM
// when scraped. Only the totals are exported: a label per repository
// would let clients create series by pushing (package doc), and
// clusterctl get repositories or the admin API gives the breakdown.
type storageCollector struct {
	view                      func() *fsm.View
	logical, deduped, digests *prometheus.Desc
}

func (c *storageCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.logical
	ch <- c.deduped
	ch <- c.digests
}

func (c *storageCollector) Collect(ch chan<- prometheus.Metric) {
	t := c.view().StorageTotals()
	ch <- prometheus.MustNewConstMetric(c.logical, prometheus.GaugeValue, float64(t.Logical))
	ch <- prometheus.MustNewConstMetric(c.deduped, prometheus.GaugeValue, float64(t.Bytes))
	ch <- prometheus.MustNewConstMetric(c.digests, prometheus.GaugeValue, float64(t.Digests))
}

// WatchStorage exports berth_storage_logical_bytes,
// berth_storage_deduplicated_bytes and berth_storage_referenced_digests,
// read from view (the node's FSM, possibly a few entries behind) at each
// scrape.
func (m *Metrics) WatchStorage(view func() *fsm.View) {
	m.reg.MustRegister(&storageCollector{
		view: view,
		logical: prometheus.NewDesc("berth_storage_logical_bytes",
			"Bytes of every manifest of every repository with the blobs it lists, a blob counted once per manifest that lists it: what the images would take undeduplicated.", nil, nil),
		deduped: prometheus.NewDesc("berth_storage_deduplicated_bytes",
			"Bytes of the distinct manifests and blobs any manifest reaches, each digest once across the registry: what the blob store holds for them.", nil, nil),
		digests: prometheus.NewDesc("berth_storage_referenced_digests",
			"Distinct manifests and blobs any manifest reaches.", nil, nil),
	})
}
