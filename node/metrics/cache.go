package metrics

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/berth-registry/berth/blob/cache"
)

// cacheCollector reads the blob cache's own counters when scraped.
type cacheCollector struct {
	stats func() cache.Stats

	hits, misses, hitBytes, fills, filledBytes, evictions, used *prometheus.Desc
}

// WatchCache exports the node-local blob cache's counters (blob/cache).
func (m *Metrics) WatchCache(stats func() cache.Stats) {
	d := func(name, help string) *prometheus.Desc { return prometheus.NewDesc(name, help, nil, nil) }
	m.reg.MustRegister(&cacheCollector{stats: stats,
		hits:        d("berth_blob_cache_hits_total", "Blob opens served from this node's local copy."),
		misses:      d("berth_blob_cache_misses_total", "Blob opens passed to the shared store."),
		hitBytes:    d("berth_blob_cache_hit_bytes_total", "Size of the blobs opened from local copies: bytes spared the shared store for whole pulls (a HEAD or Range request reads less)."),
		fills:       d("berth_blob_cache_fills_total", "Verified copies that entered the cache."),
		filledBytes: d("berth_blob_cache_filled_bytes_total", "Bytes of the copies that entered the cache."),
		evictions:   d("berth_blob_cache_evictions_total", "Copies removed to stay within storage.cachesize."),
		used:        d("berth_blob_cache_used_bytes", "Bytes cached now."),
	})
}

func (c *cacheCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.hits, c.misses, c.hitBytes, c.fills, c.filledBytes, c.evictions, c.used} {
		ch <- d
	}
}

func (c *cacheCollector) Collect(ch chan<- prometheus.Metric) {
	s := c.stats()
	counter := func(d *prometheus.Desc, v uint64) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v))
	}
	counter(c.hits, s.Hits)
	counter(c.misses, s.Misses)
	counter(c.hitBytes, s.HitBytes)
	counter(c.fills, s.Fills)
	counter(c.filledBytes, s.FilledBytes)
	counter(c.evictions, s.Evictions)
	ch <- prometheus.MustNewConstMetric(c.used, prometheus.GaugeValue, float64(s.Used))
}
