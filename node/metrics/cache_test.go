package metrics

import (
	"testing"

	"github.com/berth-registry/berth/blob/cache"
)

// The cache's counters are read when scraped, each under its own name.
func TestWatchCache(t *testing.T) {
	m := New("test")
	stats := cache.Stats{Hits: 7, Misses: 3, HitBytes: 7000, Fills: 2, FilledBytes: 2500, Evictions: 1, Used: 1500}
	m.WatchCache(func() cache.Stats { return stats })
	want := map[string]float64{
		"berth_blob_cache_hits_total": 7, "berth_blob_cache_misses_total": 3, "berth_blob_cache_hit_bytes_total": 7000,
		"berth_blob_cache_fills_total": 2, "berth_blob_cache_filled_bytes_total": 2500,
		"berth_blob_cache_evictions_total": 1, "berth_blob_cache_used_bytes": 1500,
	}
	for name, v := range want {
		if got, ok := sample(t, m, name); !ok || got != v {
			t.Errorf("%s = %v (present %v), want %v", name, got, ok, v)
		}
	}
	stats.Hits = 8 // read at scrape time, not copied at registration
	if got, _ := sample(t, m, "berth_blob_cache_hits_total"); got != 8 {
		t.Errorf("hits after one more: %v, want 8", got)
	}
}
