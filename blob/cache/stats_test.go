package cache_test

import (
	"testing"

	"github.com/berth-registry/berth/blob/cache"
)

// Stats counts what metrics show: a miss that fills, then hits, and the
// eviction of the least recently opened copy when the bound is reached.
func TestStats(t *testing.T) {
	f := newFixture(t, 4096) // blobs up to 1024 bytes are cached
	a, b := random(1000), random(900)
	da, db := f.put(t, a), f.put(t, b)

	f.readAll(t, da, a, whole) // miss, fills
	f.readAll(t, da, a, whole) // hit
	f.readAll(t, da, a, whole) // hit
	want := cache.Stats{Hits: 2, Misses: 1, HitBytes: 2000, Fills: 1, FilledBytes: 1000, Used: 1000}
	if got := f.cache.Stats(); got != want {
		t.Fatalf("after one fill and two hits: %+v, want %+v", got, want)
	}

	// Four more copies of ~1000 bytes exceed 4096: the oldest go.
	f.readAll(t, db, b, whole)
	for range 3 {
		c := random(1000)
		f.readAll(t, f.put(t, c), c, whole)
	}
	got := f.cache.Stats()
	if got.Fills != 5 || got.FilledBytes != 4900 || got.Evictions == 0 || got.Used > 4096 || got.Misses != 5 {
		t.Fatalf("after five fills into 4096 bytes: %+v; want 5 fills of 4900 bytes, evictions, used <= 4096", got)
	}
}
