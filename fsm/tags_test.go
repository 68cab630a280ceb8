package fsm

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"unsafe"

	"github.com/opencontainers/go-digest"

	"github.com/berth-registry/berth/events"
)

// pageAll reads a repository's tags page by page.
func pageAll(v *View, repo string, n int) []string {
	var got []string
	last := ""
	for {
		page, more := v.Tags(repo, last, n)
		got = append(got, page...)
		if !more {
			return got
		}
		last = page[len(page)-1]
	}
}

// repoCounters returns a repository's row as the view sees it.
func repoCounters(v *View, repo string) (repoRow, bool) {
	r, ok := v.first(tRepo, repo).(*repoRow)
	if !ok {
		return repoRow{}, false
	}
	return *r, true
}

// manyTags puts a manifest in repo and gives it n tags, set in a shuffled
// order so the B-tree splits at every level.
func manyTags(h *harness, repo string, n int) []string {
	h.t.Helper()
	h.must(events.ManifestPut{Repo: repo, Digest: dg(repo + "/m"), Tags: []string{"seed"}})
	want := []string{"seed"}
	for i := range n {
		want = append(want, fmt.Sprintf("t%05d", i))
	}
	order := slices.Clone(want[1:])
	rand.New(rand.NewPCG(7, 7)).Shuffle(len(order), func(i, j int) { order[i], order[j] = order[j], order[i] })
	for i := 0; i < len(order); i += 100 {
		h.must(events.ManifestPut{Repo: repo, Digest: dg(repo + "/m"), Tags: order[i:min(i+100, len(order))]})
	}
	slices.Sort(want)
	return want
}

func TestTagsPagination(t *testing.T) {
	h := newHarness(t)
	want := manyTags(h, "big", 5000)
	// Neighbours whose names extend "big" must not leak into its pages.
	h.must(
		events.ManifestPut{Repo: "big-x", Digest: dg("n1"), Tags: []string{"a"}},
		events.ManifestPut{Repo: "big/x", Digest: dg("n2"), Tags: []string{"b"}},
		events.ManifestPut{Repo: "bif", Digest: dg("n3"), Tags: []string{"c"}},
		events.ManifestPut{Repo: "odd", Digest: dg("o"), Tags: []string{"a", "a.b", "a-b", "a_b", "A", "a0", "b"}},
	)
	v := h.f.View()
	for _, n := range []int{1, 7, 62, 63, 64, 100, 1000, 5001, -1} {
		if got := pageAll(v, "big", n); !reflect.DeepEqual(got, want) {
			t.Errorf("n=%d: %d tags, want %d (first diff at %v)", n, len(got), len(want), firstDiff(got, want))
		}
	}
	tests := []struct {
		name, repo, last string
		n                int
		want             []string
		more             bool
	}{
		{"first page", "big", "", 3, []string{"seed", "t00000", "t00001"}, true},
		{"after a tag", "big", "t01999", 2, []string{"t02000", "t02001"}, true},
		{"after a name that is not a tag", "big", "t01999x", 2, []string{"t02000", "t02001"}, true},
		{"before every tag", "big", "a", 1, []string{"seed"}, true},
		{"exactly the rest", "big", "t04997", 2, []string{"t04998", "t04999"}, false},
		{"after the last tag", "big", "t04999", 10, nil, false},
		{"after everything", "big", "zzz", 10, nil, false},
		{"n=0 with tags left", "big", "", 0, nil, true},
		{"n=0 at the end", "big", "t04999", 0, nil, false},
		{"unknown repository", "nope", "", 10, nil, false},
		{"lexical byte order", "odd", "", -1, []string{"A", "a", "a-b", "a.b", "a0", "a_b", "b"}, false},
		{"neighbour", "big/x", "", -1, []string{"b"}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, more := v.Tags(tt.repo, tt.last, tt.n)
			if !reflect.DeepEqual(got, tt.want) || more != tt.more {
				t.Errorf("Tags(%q, %q, %d) = %v %v, want %v %v", tt.repo, tt.last, tt.n, got, more, tt.want, tt.more)
			}
		})
	}
	if r, _ := repoCounters(v, "big"); r.Tags != len(want) {
		t.Errorf("counter %d, want %d", r.Tags, len(want))
	}
	if d, ok := v.Tag("big", "t03333"); !ok || d != dg("big/m") {
		t.Errorf("Tag = %s %v", d, ok)
	}
	if got := v.TagsFor("big", dg("big/m")); !reflect.DeepEqual(got, want) {
		t.Errorf("TagsFor: %d tags, want %d", len(got), len(want))
	}
}

func firstDiff(a, b []string) int {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return i
		}
	}
	return min(len(a), len(b))
}

func TestTagLifecycle(t *testing.T) {
	m1, m2 := dg("m1"), dg("m2")
	base := []events.Payload{
		events.ManifestPut{Repo: "r", Digest: m1, Tags: []string{"a", "b"}},
		events.ManifestPut{Repo: "r", Digest: m2, Tags: []string{"c"}},
	}
	tests := []struct {
		name    string
		evs     []events.Payload
		tags    map[string]digest.Digest // the repository's tags afterwards
		exists  bool
		counter int
	}{
		{"put", nil, map[string]digest.Digest{"a": m1, "b": m1, "c": m2}, true, 3},
		{"TagSet moves a tag", []events.Payload{events.TagSet{Repo: "r", Tag: "a", Digest: m2}},
			map[string]digest.Digest{"a": m2, "b": m1, "c": m2}, true, 3},
		{"ManifestPut moves a tag", []events.Payload{events.ManifestPut{Repo: "r", Digest: m2, Tags: []string{"b"}}},
			map[string]digest.Digest{"a": m1, "b": m2, "c": m2}, true, 3},
		{"moved tag survives its old manifest", []events.Payload{
			events.TagSet{Repo: "r", Tag: "a", Digest: m2}, events.ManifestDeleted{Repo: "r", Digest: m1}},
			map[string]digest.Digest{"a": m2, "c": m2}, true, 2},
		{"re-setting a tag counts it once", []events.Payload{
			events.TagSet{Repo: "r", Tag: "a", Digest: m1}, events.TagSet{Repo: "r", Tag: "a", Digest: m1}},
			map[string]digest.Digest{"a": m1, "b": m1, "c": m2}, true, 3},
		{"TagDeleted", []events.Payload{events.TagDeleted{Repo: "r", Tag: "b"}},
			map[string]digest.Digest{"a": m1, "c": m2}, true, 2},
		{"last tag deleted, manifests keep the repository", []events.Payload{
			events.TagDeleted{Repo: "r", Tag: "a"}, events.TagDeleted{Repo: "r", Tag: "b"}, events.TagDeleted{Repo: "r", Tag: "c"}},
			map[string]digest.Digest{}, true, 0},
		{"last manifest and tags deleted removes the repository", []events.Payload{
			events.ManifestDeleted{Repo: "r", Digest: m1}, events.ManifestDeleted{Repo: "r", Digest: m2}},
			map[string]digest.Digest{}, false, 0},
		{"RepositoryDeleted drops the tags", []events.Payload{events.RepositoryDeleted{Repo: "r"}},
			map[string]digest.Digest{}, false, 0},
		{"a recreated repository starts without tags", []events.Payload{
			events.RepositoryDeleted{Repo: "r"}, events.ManifestPut{Repo: "r", Digest: m1}},
			map[string]digest.Digest{}, true, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t)
			h.must(base...)
			h.must(tt.evs...)
			v := h.f.View()
			checkTags(t, v, "r", tt.tags)
			r, ok := repoCounters(v, "r")
			if ok != tt.exists || v.RepositoryExists("r") != tt.exists {
				t.Errorf("repository exists = %v, want %v", ok, tt.exists)
			}
			if r.Tags != tt.counter {
				t.Errorf("tag counter %d, want %d", r.Tags, tt.counter)
			}
			if r.tags != nil && r.tags.len() == 0 {
				t.Error("an empty tag index is kept")
			}
		})
	}
}

// checkTags compares every tag query of a view with the expected tags.
func checkTags(t *testing.T, v *View, repo string, want map[string]digest.Digest) {
	t.Helper()
	names := make([]string, 0, len(want))
	byDigest := map[digest.Digest][]string{}
	for tag, d := range want {
		names = append(names, tag)
		byDigest[d] = append(byDigest[d], tag)
	}
	slices.Sort(names)
	got, more := v.Tags(repo, "", -1)
	if more || !slices.Equal(got, names) {
		t.Errorf("%s: Tags = %v %v, want %v", repo, got, more, names)
	}
	for tag, d := range want {
		if g, ok := v.Tag(repo, tag); !ok || g != d {
			t.Errorf("%s: Tag(%s) = %s %v, want %s", repo, tag, g, ok, d)
		}
	}
	for d, tags := range byDigest {
		slices.Sort(tags)
		if g := v.TagsFor(repo, d); !slices.Equal(g, tags) {
			t.Errorf("%s: TagsFor(%s) = %v, want %v", repo, d, g, tags)
		}
	}
	if r, _ := repoCounters(v, repo); r.Tags != len(want) || r.tags.len() != len(want) {
		t.Errorf("%s: counter %d, index %d, want %d", repo, r.Tags, r.tags.len(), len(want))
	}
}

// TestTagsMatchModel applies random tag events and compares every query
// with a plain map after each one.
func TestTagsMatchModel(t *testing.T) {
	h := newHarness(t)
	rng := rand.New(rand.NewPCG(1, 2))
	repos := []string{"a", "a/b", "b"}
	model := map[string]map[string]digest.Digest{}
	manifests := map[string]map[digest.Digest]bool{}
	for _, r := range repos {
		model[r], manifests[r] = map[string]digest.Digest{}, map[digest.Digest]bool{}
	}
	for step := range 3000 {
		repo := repos[rng.IntN(len(repos))]
		m := dg(fmt.Sprint("m", rng.IntN(4)))
		tag := fmt.Sprint("t", rng.IntN(150))
		var ev events.Payload
		switch k := rng.IntN(100); {
		case k < 30:
			tags := []string{tag, fmt.Sprint("t", rng.IntN(150))}
			ev = events.ManifestPut{Repo: repo, Digest: m, Tags: tags}
			manifests[repo][m] = true
			for _, tg := range tags {
				model[repo][tg] = m
			}
		case k < 65:
			ev = events.TagSet{Repo: repo, Tag: tag, Digest: m}
			if manifests[repo][m] {
				model[repo][tag] = m
			}
		case k < 90:
			ev = events.TagDeleted{Repo: repo, Tag: tag}
			delete(model[repo], tag)
		case k < 99:
			ev = events.ManifestDeleted{Repo: repo, Digest: m}
			delete(manifests[repo], m)
			for tg, d := range model[repo] {
				if d == m {
					delete(model[repo], tg)
				}
			}
		default:
			ev = events.RepositoryDeleted{Repo: repo}
			model[repo], manifests[repo] = map[string]digest.Digest{}, map[digest.Digest]bool{}
		}
		h.apply(ev) // refusals are part of the test: they must change nothing
		v := h.f.View()
		for _, r := range repos {
			checkTags(t, v, r, model[r])
			if v.RepositoryExists(r) != (len(manifests[r]) > 0) {
				t.Fatalf("step %d (%T): repository %s exists = %v", step, ev, r, v.RepositoryExists(r))
			}
		}
		if t.Failed() {
			t.Fatalf("step %d: %T %+v", step, ev, ev)
		}
	}
}

func TestViewIsolationFromTagChanges(t *testing.T) {
	changes := []struct {
		name string
		ev   events.Payload
	}{
		{"tag added", events.TagSet{Repo: "big", Tag: "t02500x", Digest: dg("big/m")}},
		{"tag moved", events.TagSet{Repo: "big", Tag: "t02500", Digest: dg("other")}},
		{"tags put", events.ManifestPut{Repo: "big", Digest: dg("other"), Tags: []string{"t00001", "new1", "zz"}}},
		{"tag deleted", events.TagDeleted{Repo: "big", Tag: "t04999"}},
		{"manifest deleted", events.ManifestDeleted{Repo: "big", Digest: dg("big/m")}},
		{"repository deleted", events.RepositoryDeleted{Repo: "big"}},
	}
	for _, c := range changes {
		t.Run(c.name, func(t *testing.T) {
			h := newHarness(t)
			want := manyTags(h, "big", 5000)
			h.must(events.ManifestPut{Repo: "big", Digest: dg("other")})
			before := h.f.View()
			orig := tagState(before, "big")
			h.must(c.ev)
			after := h.f.View()
			wantMap := map[string]digest.Digest{}
			for _, tag := range want {
				wantMap[tag] = dg("big/m")
			}
			checkTags(t, before, "big", wantMap)
			if !slices.Equal(tagState(before, "big"), orig) || !slices.Equal(pageAll(before, "big", 100), want) {
				t.Error("the old view saw the change")
			}
			if slices.Equal(tagState(after, "big"), orig) {
				t.Error("a new view does not see the change")
			}
		})
	}
}

// tagState lists a repository's tags with their digests.
func tagState(v *View, repo string) []string {
	var out []string
	for _, tag := range pageAll(v, repo, -1) {
		d, _ := v.Tag(repo, tag)
		out = append(out, tag+"="+string(d))
	}
	return out
}

func TestTagsSnapshotRoundTrip(t *testing.T) {
	build := func() *harness {
		h := newHarness(t)
		manyTags(h, "big", 3000)
		manyTags(h, "big/sub", 200)
		h.must(
			events.ManifestPut{Repo: "big", Digest: dg("other"), Tags: []string{"t00007", "zz"}},
			events.ManifestPut{Repo: "big-x", Digest: dg("n"), Tags: []string{"only"}},
			events.BlobLinked{Repo: "blobs-only", Digest: dg("b")},
			events.TagDeleted{Repo: "big", Tag: "t01000"},
		)
		return h
	}
	a, b := build(), build()
	snap := a.snapshot()
	if !bytes.Equal(snap, b.snapshot()) {
		t.Fatal("the same log gave different snapshots")
	}
	// One row per tag (big: seed + 3000 + zz - t01000), in (repository, tag) order.
	var rows []string
	for _, line := range strings.Split(string(snap), "\n") {
		if strings.HasPrefix(line, `{"t":"tag"`) {
			rows = append(rows, line)
		}
	}
	if len(rows) != 3001+201+1 || !slices.IsSortedFunc(rows, func(x, y string) int { return strings.Compare(rowKey(x), rowKey(y)) }) {
		t.Errorf("%d tag rows, sorted = %v", len(rows), slices.IsSortedFunc(rows, func(x, y string) int { return strings.Compare(rowKey(x), rowKey(y)) }))
	}

	c := newHarness(t)
	if err := c.f.Restore(io.NopCloser(bytes.NewReader(snap))); err != nil {
		t.Fatal(err)
	}
	c.idx = c.f.AppliedIndex()
	if !bytes.Equal(c.snapshot(), snap) {
		t.Error("restore then snapshot is not the identity")
	}
	va, vc := a.f.View(), c.f.View()
	for _, repo := range []string{"big", "big/sub", "big-x", "blobs-only"} {
		if ga, gc := pageAll(va, repo, 100), pageAll(vc, repo, 100); !slices.Equal(ga, gc) {
			t.Errorf("%s: restored tags differ", repo)
		}
		ra, _ := repoCounters(va, repo)
		rc, _ := repoCounters(vc, repo)
		if ra.Tags != rc.Tags || rc.Tags != rc.tags.len() {
			t.Errorf("%s: counters %d / restored %d (index %d)", repo, ra.Tags, rc.Tags, rc.tags.len())
		}
	}
	// The restored tags share their manifest's digest string.
	if r, _ := repoCounters(vc, "big"); r.tags != nil {
		m, _ := vc.first(tManifest, "big", dg("big/m").String()).(*Manifest)
		d, _ := r.tags.get("t00001")
		if m == nil || !sameString(string(d), string(m.Digest)) {
			t.Error("a restored tag keeps its own copy of the digest")
		}
	}
	// The restored state keeps working: the index is changed by copy.
	old := c.f.View()
	c.must(events.TagSet{Repo: "big", Tag: "t01000", Digest: dg("other")}, events.TagDeleted{Repo: "big", Tag: "zz"})
	if _, ok := old.Tag("big", "t01000"); ok {
		t.Error("a change after restore leaked into an older view")
	}
	if d, ok := c.f.View().Tag("big", "t01000"); !ok || d != dg("other") {
		t.Errorf("tag after restore = %s %v", d, ok)
	}
}

func rowKey(line string) string {
	var row snapshotRow
	var r tagRow
	if json.Unmarshal([]byte(line), &row) != nil || json.Unmarshal(row.V, &r) != nil {
		return ""
	}
	return r.Repo + "\x00" + r.Tag
}

func sameString(a, b string) bool { return unsafe.StringData(a) == unsafe.StringData(b) }

func TestRestoreTagRows(t *testing.T) {
	hdr := `{"format":"berth-fsm","version":1,"index":3}` + "\n"
	repo := func(name string, tags int) string {
		return fmt.Sprintf(`{"t":"repo","v":{"Name":%q,"Manifests":1,"Tags":%d,"Blobs":0}}`+"\n", name, tags)
	}
	man := func(r, d string) string {
		return fmt.Sprintf(`{"t":"manifest","v":{"Repo":%q,"Digest":%q}}`+"\n", r, dg(d))
	}
	tag := func(r, name, d string) string {
		return fmt.Sprintf(`{"t":"tag","v":{"Repo":%q,"Tag":%q,"Digest":%q}}`+"\n", r, name, dg(d))
	}
	tests := []struct {
		name    string
		in      string
		want    map[string][]string // tags per repository
		wantErr bool
	}{
		{"in order", hdr + repo("a", 2) + repo("b", 1) + man("a", "m") + man("b", "m") +
			tag("a", "x", "m") + tag("a", "y", "m") + tag("b", "z", "m"),
			map[string][]string{"a": {"x", "y"}, "b": {"z"}}, false},
		{"out of order and split", hdr + repo("a", 3) + repo("b", 1) + man("a", "m") + man("b", "m") +
			tag("a", "y", "m") + tag("b", "z", "m") + tag("a", "x", "m") + tag("a", "w", "m"),
			map[string][]string{"a": {"w", "x", "y"}, "b": {"z"}}, false},
		{"a stale counter is recomputed", hdr + repo("a", 9) + man("a", "m") + tag("a", "x", "m"),
			map[string][]string{"a": {"x"}}, false},
		{"tag of a repository without a row", hdr + repo("a", 0) + man("a", "m") + tag("b", "x", "m"), nil, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t)
			err := h.f.Restore(io.NopCloser(strings.NewReader(tt.in)))
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v, want error %v", err, tt.wantErr)
			}
			if err != nil {
				return
			}
			v := h.f.View()
			for repo, want := range tt.want {
				if got, _ := v.Tags(repo, "", -1); !slices.Equal(got, want) {
					t.Errorf("%s: tags %v, want %v", repo, got, want)
				}
				if r, _ := repoCounters(v, repo); r.Tags != len(want) {
					t.Errorf("%s: counter %d, want %d", repo, r.Tags, len(want))
				}
			}
		})
	}
}

// TestConcurrentViewsSeeWholeEvents runs readers against a writer; with
// -race it also checks that no committed index is ever written.
func TestConcurrentViewsSeeWholeEvents(t *testing.T) {
	h := newHarness(t)
	manyTags(h, "big", 2000)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	errs := make(chan string, 4)
	for range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				v := h.f.View()
				r, _ := repoCounters(v, "big")
				tags := pageAll(v, "big", 150)
				// There are 2001 tags to start with and every event below
				// adds or removes a pair, so a view that saw half of an
				// event would see an even count.
				if len(tags) != r.Tags || len(tags)%2 != 1 {
					errs <- fmt.Sprintf("view saw %d tags, counter %d", len(tags), r.Tags)
					return
				}
			}
		}()
	}
	for i := range 300 {
		// Each pair has its own manifest, so one ManifestDeleted removes
		// both tags in one event.
		m := dg(fmt.Sprint("pair", i))
		h.must(events.ManifestPut{Repo: "big", Digest: m, Tags: []string{fmt.Sprintf("p%04d", i), fmt.Sprintf("q%04d", i)}})
		if i%3 == 0 {
			h.must(events.ManifestDeleted{Repo: "big", Digest: m})
		}
	}
	close(stop)
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Error(e)
	}
}

// BenchmarkTagSet times one TagSet event (decode, apply, commit) in
// repositories of growing size: with a copy-on-write B-tree the cost grows
// with log n, not n.
func BenchmarkTagSet(b *testing.B) {
	for _, size := range []int{1_000, 100_000, 1_000_000} {
		b.Run(fmt.Sprint(size), func(b *testing.B) {
			h := newHarness(b)
			h.must(events.ManifestPut{Repo: "r", Digest: dg("m")})
			tags := make([]string, 0, 10_000)
			for i := 0; i < size; i += len(tags) {
				tags = tags[:0]
				for j := i; j < min(i+10_000, size); j++ {
					tags = append(tags, fmt.Sprintf("v%07d", j))
				}
				h.must(events.ManifestPut{Repo: "r", Digest: dg("m"), Tags: tags})
			}
			b.ResetTimer()
			for i := range b.N {
				if err := h.apply(events.TagSet{Repo: "r", Tag: fmt.Sprintf("v%07d", i%size), Digest: dg("m")}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
