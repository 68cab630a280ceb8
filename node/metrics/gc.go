package metrics

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/berth-registry/berth/fsm"
)

// gcCollector reads garbage collection from the FSM when scraped: the
// open run, if any, and the last finished one. The FSM keeps the last 20
// runs (fsm.GCRecord), not a running total, so the exported values are
// gauges of the last run; an alert on a run that failed or reclaimed
// nothing reads them, and the dashboard plots them over time.
type gcCollector struct {
	view func() *fsm.View
	open, openCandidates,
	lastStart, lastDuration, lastDeleted, lastBytes, lastSwept *prometheus.Desc
}

func (c *gcCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.open, c.openCandidates, c.lastStart, c.lastDuration, c.lastDeleted, c.lastBytes, c.lastSwept} {
		ch <- d
	}
}

func (c *gcCollector) Collect(ch chan<- prometheus.Metric) {
	v := c.view()
	gauge := func(d *prometheus.Desc, x float64) { ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, x) }
	open, candidates := 0.0, 0.0
	if run, ok := v.GCRun(); ok {
		open, candidates = 1, float64(run.Blobs+run.Manifests)
	}
	gauge(c.open, open)
	gauge(c.openCandidates, candidates)
	runs := v.GCHistory()
	if len(runs) == 0 {
		return
	}
	last := runs[len(runs)-1]
	for _, r := range runs {
		if r.StartIndex > last.StartIndex {
			last = r
		}
	}
	swept := 0.0
	if last.Outcome == "swept" {
		swept = 1
	}
	gauge(c.lastStart, float64(last.Started.Unix()))
	gauge(c.lastDuration, last.Finished.Sub(last.Started).Seconds())
	gauge(c.lastDeleted, float64(last.Deleted))
	gauge(c.lastBytes, float64(last.Bytes))
	gauge(c.lastSwept, swept)
}

// WatchGC exports the garbage collection gauges, read from view at each
// scrape (every node has the same log, so every node answers alike).
func (m *Metrics) WatchGC(view func() *fsm.View) {
	d := func(name, help string) *prometheus.Desc { return prometheus.NewDesc(name, help, nil, nil) }
	m.reg.MustRegister(&gcCollector{
		view:           view,
		open:           d("berth_gc_run_open", "1 while a garbage collection run is open (marking or sweeping), else 0."),
		openCandidates: d("berth_gc_run_candidates", "Candidates (blobs and manifests) of the open run, 0 when none is open."),
		lastStart:      d("berth_gc_last_run_start_timestamp_seconds", "When the last finished run started (Unix time)."),
		lastDuration:   d("berth_gc_last_run_duration_seconds", "How long the last finished run took."),
		lastDeleted:    d("berth_gc_last_run_deleted", "Objects the last finished run deleted."),
		lastBytes:      d("berth_gc_last_run_reclaimed_bytes", "Bytes the last finished run reclaimed."),
		lastSwept:      d("berth_gc_last_run_swept", "1 if the last finished run swept, 0 if it was cancelled."),
	})
}
