package webhook

import (
	"context"
	"net/http"
	"os"
	"slices"
	"sort"
	"sync/atomic"
	"testing"
	"time"

	"github.com/berth-registry/berth/events"
)

// outage is how long the recovering receiver answers 503; issue 9 says
// 10 s, the default here is shorter so the test stays fast.
// BERTH_WEBHOOK_OUTAGE=10s runs the figure.
func outage(t *testing.T) time.Duration {
	if s := os.Getenv("BERTH_WEBHOOK_OUTAGE"); s != "" {
		d, err := time.ParseDuration(s)
		if err != nil {
			t.Fatalf("BERTH_WEBHOOK_OUTAGE=%q: %v", s, err)
		}
		return d
	}
	return 2 * time.Second
}

// assertInLogOrder checks that, per repository, successful deliveries
// arrived in increasing index order (deduplicated by id first).
func assertInLogOrder(t *testing.T, delivered []events.CloudEvent) {
	t.Helper()
	seen := map[string]bool{}
	last := map[string]uint64{}
	for _, e := range delivered {
		if seen[e.ID] {
			continue
		}
		seen[e.ID] = true
		if e.Data.Index <= last[e.Data.Repository] {
			t.Errorf("repository %q: event index %d delivered after index %d", e.Data.Repository, e.Data.Index, last[e.Data.Repository])
		}
		last[e.Data.Repository] = e.Data.Index
	}
}

func TestRecoveringReceiverGetsEveryEventOncePerRepositoryInOrder(t *testing.T) {
	js := startJetStream(t)
	down := outage(t)
	var firstAt atomic.Int64
	rc := newReceiver(t, func(n int, r *http.Request) int {
		firstAt.CompareAndSwap(0, time.Now().UnixNano())
		if time.Since(time.Unix(0, firstAt.Load())) < down {
			return http.StatusServiceUnavailable
		}
		return http.StatusAccepted
	})
	m := newTestManager(t, js, nil)
	mustSync(t, m, testHook("ci", rc.URL))
	runManager(t, m)

	pub := &publisher{t: t, js: js}
	want := map[string]bool{}
	repos := []string{"team-a/app", "team-a/db", "team-b/web"}
	for i := range 45 {
		want[pub.publish(events.CETypeManifestPushed, repos[i%len(repos)]).ID] = true
		if i%15 == 0 {
			time.Sleep(down / 4) // some pushes during the outage, some after
		}
	}

	waitFor(t, down+15*time.Second, "every event delivered", func() bool {
		return len(uniqueIDs(rc.delivered())) == len(want)
	})
	got := uniqueIDs(rc.delivered())
	for id := range want {
		if got[id] != 1 {
			t.Errorf("event %s delivered %d times, want once", id, got[id])
		}
	}
	if len(got) != len(want) {
		t.Errorf("delivered %d distinct events, want %d", len(got), len(want))
	}
	assertInLogOrder(t, rc.delivered())
	failed := 0
	for _, r := range rc.requests() {
		if r.Status == http.StatusServiceUnavailable {
			failed++
		}
	}
	if failed == 0 {
		t.Fatal("the receiver never answered 503: the outage was not exercised")
	}
}

func TestFailingEndpointDeadLettersThenRedeliverDeadLetters(t *testing.T) {
	js := startJetStream(t)
	var broken atomic.Bool
	broken.Store(true)
	rc := newReceiver(t, func(int, *http.Request) int {
		if broken.Load() {
			return http.StatusInternalServerError
		}
		return http.StatusOK
	})
	counters := NewCounters()
	m := newTestManager(t, js, func(o *Options) { o.Metrics = counters })
	hook := testHook("broken", rc.URL)
	hook.MaxDeliveries = 3
	mustSync(t, m, hook)
	runManager(t, m)

	pub := &publisher{t: t, js: js}
	e1 := pub.publish(events.CETypeManifestPushed, "a/one")
	e2 := pub.publish(events.CETypeTagDeleted, "b/two")
	e3 := pub.publish(events.CETypeManifestPushed, "a/one")

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var dls []DeadLetter
	waitFor(t, 15*time.Second, "three dead letters", func() bool {
		var err error
		dls, err = m.DeadLetters(ctx, "broken", 0)
		if err != nil {
			t.Fatalf("DeadLetters: %v", err)
		}
		return len(dls) == 3
	})
	byID := map[string]DeadLetter{}
	for _, dl := range dls {
		byID[dl.EventID] = dl
		if dl.Attempts != 3 || dl.LastError == "" {
			t.Errorf("dead letter %s: attempts %d, last error %q; want 3 attempts and the error", dl.EventID, dl.Attempts, dl.LastError)
		}
	}
	for _, e := range []events.CloudEvent{e1, e2, e3} {
		if _, ok := byID[e.ID]; !ok {
			t.Errorf("event %s is not in the dead letters", e.ID)
		}
	}
	// The later event of a/one waited for the earlier one to be dead-lettered.
	if byID[e3.ID].Seq < byID[e1.ID].Seq {
		t.Errorf("event %s dead-lettered before the earlier %s of the same repository", e3.ID, e1.ID)
	}

	recs, err := m.Deliveries(ctx, "broken", 100)
	if err != nil {
		t.Fatalf("Deliveries: %v", err)
	}
	attempts := map[string][]int{}
	for _, r := range recs {
		if r.Status != http.StatusInternalServerError || r.Error == "" {
			t.Errorf("record %+v: want status 500 with an error", r)
		}
		attempts[r.EventID] = append(attempts[r.EventID], r.Attempt)
	}
	for _, e := range []events.CloudEvent{e1, e2, e3} {
		if !slices.Equal(attempts[e.ID], []int{1, 2, 3}) {
			t.Errorf("event %s attempts recorded %v, want [1 2 3]", e.ID, attempts[e.ID])
		}
	}
	if _, dead := counters.Snapshot(); dead["broken"] != 3 {
		t.Errorf("dead-letter counter = %d, want 3", dead["broken"])
	}
	if del, _ := counters.Snapshot(); del[DeliveryKey{"broken", "500"}] != 9 {
		t.Errorf("delivery counter {broken,500} = %d, want 9", del[DeliveryKey{"broken", "500"}])
	}

	broken.Store(false)
	res, err := m.RedeliverDeadLetters(ctx, "broken")
	if err != nil {
		t.Fatalf("RedeliverDeadLetters: %v", err)
	}
	if res.Delivered != 3 || res.DeadLettered != 0 {
		t.Errorf("RedeliverDeadLetters = %+v, want 3 delivered", res)
	}
	got := uniqueIDs(rc.delivered())
	for _, e := range []events.CloudEvent{e1, e2, e3} {
		if got[e.ID] != 1 {
			t.Errorf("after redelivery event %s delivered %d times, want once", e.ID, got[e.ID])
		}
	}
	if left, err := m.DeadLetters(ctx, "broken", 0); err != nil || len(left) != 0 {
		t.Errorf("dead letters after redelivery = %d (%v), want none", len(left), err)
	}
	assertInLogOrder(t, rc.delivered())
}

func TestManagerRestartResumesWithoutLosingEvents(t *testing.T) {
	js := startJetStream(t)
	var stuck atomic.Bool
	stuck.Store(true)
	rc := newReceiver(t, nil)
	// Webhook "slow" fails while stuck, so the first manager stops in the
	// middle of retrying it.
	slowRC := newReceiver(t, func(int, *http.Request) int {
		if stuck.Load() {
			return http.StatusBadGateway
		}
		return http.StatusOK
	})
	hooks := func() []Webhook {
		all := testHook("all", rc.URL)
		slow := testHook("slow", slowRC.URL)
		slow.Repositories = []string{"slow/**"}
		return []Webhook{all, slow}
	}

	pub := &publisher{t: t, js: js}
	m1 := newTestManager(t, js, nil)
	mustSync(t, m1, hooks()...)
	stop1 := runManager(t, m1)
	want := map[string]bool{}
	wantSlow := map[string]bool{}
	for i := range 10 {
		repo := []string{"fast/one", "slow/one"}[i%2]
		id := pub.publish(events.CETypeManifestPushed, repo).ID
		want[id] = true
		if repo == "slow/one" {
			wantSlow[id] = true
		}
	}
	waitFor(t, 10*time.Second, "first batch delivered to 'all'", func() bool { return len(uniqueIDs(rc.delivered())) == 10 })
	waitFor(t, 10*time.Second, "'slow' retrying", func() bool { return len(slowRC.requests()) >= 2 })
	stop1()

	// Published while no manager runs (between leaders).
	for range 6 {
		for _, repo := range []string{"fast/one", "slow/one"} {
			id := pub.publish(events.CETypeManifestPushed, repo).ID
			want[id] = true
			if repo == "slow/one" {
				wantSlow[id] = true
			}
		}
	}
	stuck.Store(false)

	m2 := newTestManager(t, js, nil)
	mustSync(t, m2, hooks()...)
	runManager(t, m2)
	waitFor(t, 15*time.Second, "all events after the restart", func() bool {
		return len(uniqueIDs(rc.delivered())) == len(want) && len(uniqueIDs(slowRC.delivered())) == len(wantSlow)
	})
	for name, c := range map[string]struct {
		rc   *receiver
		want map[string]bool
	}{"all": {rc, want}, "slow": {slowRC, wantSlow}} {
		got := uniqueIDs(c.rc.delivered())
		for id := range c.want {
			if got[id] == 0 {
				t.Errorf("webhook %s: event %s lost across the restart", name, id)
			}
		}
		for id := range got {
			if !c.want[id] {
				t.Errorf("webhook %s: unexpected event %s", name, id)
			}
		}
		t.Run(name, func(t *testing.T) { assertInLogOrder(t, c.rc.delivered()) })
	}
}

func TestFilterByTypeAndRepositoryGlobs(t *testing.T) {
	js := startJetStream(t)
	rc := newReceiver(t, nil)
	m := newTestManager(t, js, nil)
	hook := testHook("teama", rc.URL)
	hook.Events = []string{"manifest.pushed", "dev.berth.tag.deleted"}
	hook.Repositories = []string{"team-a/**", "!team-a/private/**"}
	mustSync(t, m, hook)
	runManager(t, m)

	pub := &publisher{t: t, js: js}
	var want []string
	for _, c := range []struct {
		typ, repo string
		match     bool
	}{
		{events.CETypeManifestPushed, "team-a/app", true},
		{events.CETypeTagDeleted, "team-a/x/y", true},
		{events.CETypeTagUpdated, "team-a/app", false},
		{events.CETypeManifestPushed, "team-a/private/secret", false},
		{events.CETypeManifestPushed, "team-b/app", false},
		{events.CETypeResourceApplied, "", false},
		{"dev.berth.manifest.pulled", "team-a/app", false},
		{events.CETypeManifestPushed, "team-ab/app", false},
		{events.CETypeManifestPushed, "team-a", true}, // doublestar: "team-a/**" matches the directory itself
	} {
		ce := pub.publish(c.typ, c.repo)
		if c.match {
			want = append(want, ce.ID)
		}
	}
	last := pub.publish(events.CETypeManifestPushed, "team-a/last")
	want = append(want, last.ID)

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	waitFor(t, 5*time.Second, "every message handled and acked", func() bool {
		c, err := js.Consumer(ctx, DefaultEventsStream, ConsumerPrefix+"teama")
		if err != nil {
			t.Fatal(err)
		}
		info, err := c.Info(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return info.NumAckPending == 0 && info.NumPending == 0
	})
	var got []string
	for _, e := range rc.delivered() {
		got = append(got, e.ID)
	}
	sort.Strings(got)
	sort.Strings(want)
	if !slices.Equal(got, want) {
		t.Errorf("delivered %v, want %v", got, want)
	}
}

func TestRedeliverFromIndex(t *testing.T) {
	js := startJetStream(t)
	rc := newReceiver(t, nil)
	m := newTestManager(t, js, nil)
	mustSync(t, m, testHook("replay", rc.URL))
	runManager(t, m)
	pub := &publisher{t: t, js: js}
	var all []events.CloudEvent
	for range 6 {
		all = append(all, pub.publish(events.CETypeManifestPushed, "r/one"))
	}
	waitFor(t, 10*time.Second, "first delivery", func() bool { return len(rc.delivered()) == 6 })

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	// An index between two events starts at the next event.
	from := all[3].Data.Index - 1
	seq, err := m.RedeliverFrom(ctx, "replay", from)
	if err != nil {
		t.Fatalf("RedeliverFrom: %v", err)
	}
	if seq != 4 {
		t.Errorf("RedeliverFrom(%d) starts at sequence %d, want 4", from, seq)
	}
	waitFor(t, 10*time.Second, "replayed events", func() bool { return len(rc.delivered()) == 9 })
	var replayed []string
	for _, e := range rc.delivered()[6:] {
		replayed = append(replayed, e.ID)
	}
	if want := []string{all[3].ID, all[4].ID, all[5].ID}; !slices.Equal(replayed, want) {
		t.Errorf("replayed %v, want %v", replayed, want)
	}
	// Past the end: nothing more, new events still flow.
	if _, err := m.RedeliverFrom(ctx, "replay", 1_000_000); err != nil {
		t.Fatalf("RedeliverFrom past the end: %v", err)
	}
	next := pub.publish(events.CETypeManifestPushed, "r/one")
	waitFor(t, 10*time.Second, "an event after the reset", func() bool { return len(rc.delivered()) == 10 })
	if got := rc.delivered()[9].ID; got != next.ID {
		t.Errorf("after a reset past the end got %s, want %s", got, next.ID)
	}
	if _, err := m.RedeliverFrom(ctx, "nope", 1); err == nil {
		t.Error("RedeliverFrom of an unknown webhook succeeded")
	}
}

func TestSyncDeletesConsumerOfRemovedWebhook(t *testing.T) {
	js := startJetStream(t)
	rc := newReceiver(t, nil)
	m := newTestManager(t, js, nil)
	mustSync(t, m, testHook("a", rc.URL), testHook("b", rc.URL))
	mustSync(t, m, testHook("a", rc.URL))
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := js.Consumer(ctx, DefaultEventsStream, ConsumerPrefix+"a"); err != nil {
		t.Errorf("consumer of kept webhook a: %v", err)
	}
	if _, err := js.Consumer(ctx, DefaultEventsStream, ConsumerPrefix+"b"); err == nil {
		t.Error("consumer of removed webhook b still exists")
	}
	bad := testHook("a", "ftp://x")
	if err := m.Sync(ctx, []Webhook{bad}); err == nil {
		t.Error("Sync accepted an ftp URL")
	}
	if _, err := js.Consumer(ctx, DefaultEventsStream, ConsumerPrefix+"a"); err != nil {
		t.Errorf("a bad update deleted webhook a's consumer: %v", err)
	}
}

// TestCrashMidRetryRedelivers cuts the first manager's connection while it
// retries (as a kill -9 of the leader would: no Nak, no ack); the next
// manager, on another connection, gets the held events after AckWait and
// delivers every event, per repository in order.
func TestCrashMidRetryRedelivers(t *testing.T) {
	s, js := startJetStreamServer(t)
	var down atomic.Bool
	down.Store(true)
	rc := newReceiver(t, func(int, *http.Request) int {
		if down.Load() {
			return http.StatusServiceUnavailable
		}
		return http.StatusOK
	})
	pub := &publisher{t: t, js: js}

	nc1, js1 := connect(t, s)
	m1 := newTestManager(t, js1, func(o *Options) { o.AckWait = time.Second })
	mustSync(t, m1, testHook("ci", rc.URL))
	stop1 := runManager(t, m1)
	want := map[string]bool{}
	for i := range 8 {
		want[pub.publish(events.CETypeManifestPushed, []string{"x/a", "x/b"}[i%2]).ID] = true
	}
	waitFor(t, 10*time.Second, "retries under way", func() bool { return len(rc.requests()) >= 4 })
	// The crash: m1's acks, Naks and InProgress can no longer reach the
	// server, then it stops sending too.
	nc1.Close()
	stop1()
	down.Store(false)

	_, js2 := connect(t, s)
	m2 := newTestManager(t, js2, func(o *Options) { o.AckWait = time.Second })
	mustSync(t, m2, testHook("ci", rc.URL))
	runManager(t, m2)
	for i := range 4 {
		want[pub.publish(events.CETypeManifestPushed, []string{"x/a", "x/b"}[i%2]).ID] = true
	}
	waitFor(t, 15*time.Second, "every event after the crash", func() bool {
		return len(uniqueIDs(rc.delivered())) == len(want)
	})
	for id := range uniqueIDs(rc.delivered()) {
		if !want[id] {
			t.Errorf("unexpected event %s", id)
		}
	}
	assertInLogOrder(t, rc.delivered())
}
