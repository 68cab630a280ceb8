package fsm

import (
	"bytes"
	"fmt"
	"io"
	"slices"
	"sort"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/berth-registry/berth/events"
)

// withTags builds a repository "r" whose manifest "bulk" has n tags.
func withTags(tb testing.TB, n int) *harness {
	h := newHarness(tb)
	h.must(events.ManifestPut{Repo: "r", Digest: dg("bulk")})
	tags := make([]string, 0, 10_000)
	for i := 0; i < n; i += len(tags) {
		tags = tags[:0]
		for j := i; j < min(i+10_000, n); j++ {
			tags = append(tags, fmt.Sprintf("v%07d", j))
		}
		h.must(events.ManifestPut{Repo: "r", Digest: dg("bulk"), Tags: tags})
	}
	return h
}

// deleteCost is the median time Apply takes to delete a manifest with two
// tags from h's repository "r".
func deleteCost(h *harness, rounds int) time.Duration {
	took := make([]time.Duration, rounds)
	for i := range rounds {
		m := dg(fmt.Sprint("x", i))
		h.must(events.ManifestPut{Repo: "r", Digest: m, Tags: []string{fmt.Sprint("a", i), fmt.Sprint("z", i)}})
		start := time.Now()
		h.must(events.ManifestDeleted{Repo: "r", Digest: m})
		took[i] = time.Since(start)
	}
	slices.Sort(took)
	return took[rounds/2]
}

// TestManifestDeleteCostIndependentOfTagCount: deleting a manifest finds
// its tags through the reverse index, so it costs the same in a repository
// of 1,000 tags as in one of 200,000. A scan of every tag (the old way)
// made the large case about a hundred times slower; the bound of 5x leaves
// room for a noisy shared machine and a deeper tree.
func TestManifestDeleteCostIndependentOfTagCount(t *testing.T) {
	small, large := withTags(t, 1_000), withTags(t, 200_000)
	best := func(h *harness) time.Duration {
		d := deleteCost(h, 200)
		for range 2 {
			d = min(d, deleteCost(h, 200))
		}
		return d
	}
	s, l := best(small), best(large)
	t.Logf("median ManifestDeleted: %v at 1k tags, %v at 200k tags", s, l)
	if l > 5*s {
		t.Errorf("ManifestDeleted costs %v at 200k tags and %v at 1k: it grows with the repository's tag count", l, s)
	}
	// And the tags are really gone, the bulk ones untouched.
	v := large.f.View()
	if got := v.TagsFor("r", dg("x0")); len(got) != 0 {
		t.Errorf("tags of a deleted manifest remain: %v", got)
	}
	if _, ok := v.Tag("r", "a0"); ok {
		t.Error("tag a0 of a deleted manifest still resolves")
	}
	if got := len(v.TagsFor("r", dg("bulk"))); got != 200_000 {
		t.Errorf("bulk manifest has %d tags, want 200000", got)
	}
}

// TestReverseIndexSurvivesRestore: the reverse index is not in the
// snapshot, so Restore must rebuild it; a manifest deleted after a restore
// takes its tags with it, and the snapshot bytes are the same either way.
func TestReverseIndexSurvivesRestore(t *testing.T) {
	h := newHarness(t)
	manyTags(h, "big", 500)
	h.must(
		events.ManifestPut{Repo: "big", Digest: dg("other"), Tags: []string{"t00007", "zz", "aa"}},
		events.TagSet{Repo: "big", Tag: "zz", Digest: dg("big/m")}, // moved: no longer other's
	)
	snap := h.snapshot()
	c := newHarness(t)
	if err := c.f.Restore(io.NopCloser(bytes.NewReader(snap))); err != nil {
		t.Fatal(err)
	}
	c.idx = c.f.AppliedIndex()
	if !bytes.Equal(c.snapshot(), snap) {
		t.Fatal("restore then snapshot is not the identity")
	}
	for _, tc := range []struct {
		name string
		h    *harness
	}{{"applied", h}, {"restored", c}} {
		t.Run(tc.name, func(t *testing.T) {
			v := tc.h.f.View()
			if got := v.TagsFor("big", dg("other")); !slices.Equal(got, []string{"aa", "t00007"}) {
				t.Errorf("TagsFor(other) = %v, want [aa t00007]", got)
			}
			if got := v.TagsFor("big", dg("big/m")); len(got) != 501 || !sort.StringsAreSorted(got) || !slices.Contains(got, "zz") {
				t.Errorf("TagsFor(big/m): %d tags, sorted %v, has zz %v; want 501 sorted with zz", len(got), sort.StringsAreSorted(got), slices.Contains(got, "zz"))
			}
			tc.h.must(events.ManifestDeleted{Repo: "big", Digest: dg("other")})
			v = tc.h.f.View()
			for _, tag := range []string{"aa", "t00007"} {
				if _, ok := v.Tag("big", tag); ok {
					t.Errorf("tag %s of the deleted manifest still resolves", tag)
				}
			}
			if d, ok := v.Tag("big", "zz"); !ok || d != dg("big/m") {
				t.Errorf("moved tag zz = %s %v, want big/m's", d, ok)
			}
			if got, _ := v.Tags("big", "", -1); len(got) != 501 {
				t.Errorf("%d tags left, want 501", len(got))
			}
		})
	}
}

// BenchmarkManifestDeleted deletes a two-tag manifest from repositories of
// growing tag counts; ns/op should stay flat.
func BenchmarkManifestDeleted(b *testing.B) {
	for _, size := range []int{1_000, 100_000, 1_000_000} {
		b.Run(fmt.Sprint(size), func(b *testing.B) {
			h := withTags(b, size)
			b.ResetTimer()
			for i := range b.N {
				b.StopTimer()
				m := dg(fmt.Sprint("x", i))
				h.must(events.ManifestPut{Repo: "r", Digest: m, Tags: []string{fmt.Sprint("a", i), fmt.Sprint("z", i)}})
				b.StartTimer()
				h.must(events.ManifestDeleted{Repo: "r", Digest: m})
			}
		})
	}
}

// TestReferrersPages: pages are bounded by Limit and, with a filter, by the
// rows they look at; following the cursor visits every referrer once.
func TestReferrersPages(t *testing.T) {
	h := newHarness(t)
	h.must(events.ManifestPut{Repo: "r", Digest: dg("subject")})
	var sigs []string
	for i := range 50 {
		at := "sbom"
		if i%17 == 16 {
			at = "sig"
		}
		d := dg(fmt.Sprint("ref", i))
		h.must(events.ManifestPut{Repo: "r", Digest: d, Subject: dg("subject"), ArtifactType: at})
		if at == "sig" {
			sigs = append(sigs, d.String())
		}
	}
	slices.Sort(sigs)
	v := h.f.View()
	for _, tc := range []struct {
		filter   string
		want     int
		maxPages int
	}{{"", 50, 10}, {"sig", len(sigs), 3}, {"none", 0, 3}} {
		var got []string
		var after digest.Digest
		pages := 0
		for {
			list, next := v.Referrers("r", dg("subject"), ReferrersQuery{After: after, Limit: 5, ArtifactType: tc.filter})
			pages++
			if len(list) > 5 {
				t.Errorf("filter %q: page of %d, limit 5", tc.filter, len(list))
			}
			for _, m := range list {
				got = append(got, m.Digest.String())
			}
			if next == "" || pages > 100 {
				break
			}
			after = next
		}
		if len(got) != tc.want || !sort.StringsAreSorted(got) || (tc.filter == "sig" && !slices.Equal(got, sigs)) {
			t.Errorf("filter %q: %d referrers %v, want %d in digest order", tc.filter, len(got), got, tc.want)
		}
		if pages > tc.maxPages {
			t.Errorf("filter %q: %d pages, want at most %d (5 per page, 20 rows looked at per page)", tc.filter, pages, tc.maxPages)
		}
	}
}
