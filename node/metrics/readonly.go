package metrics

import "github.com/prometheus/client_golang/prometheus"

// WatchReadOnly exports berth_readonly, read from on when scraped: 1 while
// this node's state has the registry in read-only mode. /readyz stays
// ready then (reads are served), so this gauge is how a dashboard or an
// alert tells that writes are being refused.
func (m *Metrics) WatchReadOnly(on func() bool) {
	m.reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "berth_readonly",
		Help: "1 while the registry is in read-only mode (clusterctl readonly on): writes are refused, reads served, GC paused; else 0.",
	}, func() float64 { return boolValue(on()) }))
}
