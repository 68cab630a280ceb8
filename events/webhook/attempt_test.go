package webhook

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/berth-registry/berth/events"
)

// TestAttemptOutcomes sends one ping per case through Test and checks what
// counts as delivered and what the record says.
func TestAttemptOutcomes(t *testing.T) {
	js := startJetStream(t)
	var redirectFollowed atomic.Bool
	target := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { redirectFollowed.Store(true) }))
	defer target.Close()
	refused := httptest.NewServer(http.NotFoundHandler())
	refusedURL := refused.URL
	refused.Close()
	big := strings.Repeat("x", 10<<20)

	for _, c := range []struct {
		name      string
		handler   http.HandlerFunc
		url       string
		ok        bool
		status    int
		errSubstr string
	}{
		{name: "204", handler: func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(204) }, ok: true, status: 204},
		{name: "503", handler: func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(503) }, status: 503, errSubstr: "503"},
		{name: "redirect not followed", handler: func(w http.ResponseWriter, r *http.Request) {
			http.Redirect(w, r, target.URL, http.StatusFound)
		}, status: 302, errSubstr: "302"},
		{name: "timeout", handler: func(w http.ResponseWriter, r *http.Request) {
			select {
			case <-r.Context().Done():
			case <-time.After(time.Second):
			}
		}, errSubstr: "timeout"},
		{name: "huge response body", handler: func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte(big)) }, ok: true, status: 200},
		{name: "refused", url: refusedURL, errSubstr: "refused"},
	} {
		t.Run(c.name, func(t *testing.T) {
			url := c.url
			if c.handler != nil {
				srv := httptest.NewServer(c.handler)
				defer srv.Close()
				url = srv.URL
			}
			m := newTestManager(t, js, nil)
			hook := testHook("probe", url)
			hook.Timeout = 300 * time.Millisecond
			mustSync(t, m, hook)
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			start := time.Now()
			rec, err := m.Test(ctx, "probe")
			if (err == nil) != c.ok || rec.OK() != c.ok {
				t.Errorf("Test = %+v, %v; want ok=%v", rec, err, c.ok)
			}
			if rec.Status != c.status {
				t.Errorf("status %d, want %d", rec.Status, c.status)
			}
			if !strings.Contains(rec.Error, c.errSubstr) {
				t.Errorf("error %q does not mention %q", rec.Error, c.errSubstr)
			}
			if time.Since(start) > 3*time.Second {
				t.Errorf("one attempt took %s: the timeout or the body bound did not hold", time.Since(start))
			}
			recs, err := m.Deliveries(ctx, "probe", 1)
			if err != nil || len(recs) != 1 || recs[0].EventID != rec.EventID {
				t.Errorf("Deliveries(probe, 1) = %+v, %v; want the attempt just made", recs, err)
			}
		})
	}
	if redirectFollowed.Load() {
		t.Error("a redirect was followed")
	}
}

func TestMatches(t *testing.T) {
	for _, c := range []struct {
		name          string
		events, repos []string
		typ, repo     string
		want          bool
	}{
		{"defaults take a push", nil, nil, events.CETypeManifestPushed, "a/b", true},
		{"defaults take resource events", nil, nil, events.CETypeResourceApplied, "", true},
		{"defaults skip pulls", nil, nil, "dev.berth.manifest.pulled", "a/b", false},
		{"listed pulls are taken", []string{"blob.pulled"}, nil, "dev.berth.blob.pulled", "a/b", true},
		{"unlisted type", []string{"tag.deleted"}, nil, events.CETypeManifestPushed, "a/b", false},
		{"glob matches", nil, []string{"team-a/**"}, events.CETypeManifestPushed, "team-a/x/y", true},
		{"glob does not match", nil, []string{"team-a/**"}, events.CETypeManifestPushed, "team-b/x", false},
		{"single star stays in one component", nil, []string{"team-a/*"}, events.CETypeManifestPushed, "team-a/x/y", false},
		{"exclude wins", nil, []string{"team-a/**", "!team-a/tmp-*"}, events.CETypeManifestPushed, "team-a/tmp-1", false},
		{"only excludes", nil, []string{"!scratch/**"}, events.CETypeManifestPushed, "team-a/app", true},
		{"only excludes, excluded", nil, []string{"!scratch/**"}, events.CETypeManifestPushed, "scratch/app", false},
		{"repository-less events pass the repository filter", nil, []string{"team-a/**"}, events.CETypeResourceApplied, "", true},
		{"unlisted repository-less job events do not", nil, []string{"**"}, "dev.berth.gc.completed", "", false},
		{"listed repository-less events pass the repository filter", []string{"gc.completed", "replication.failed"}, []string{"**"}, "dev.berth.replication.failed", "", true},
		{"listed job events still need their type", []string{"replication.failed"}, []string{"**"}, "dev.berth.replication.started", "", false},
		{"a listed event with a repository is filtered", []string{"replication.artifact.copied"}, []string{"team-a/**"}, "dev.berth.replication.artifact.copied", "team-b/x", false},
	} {
		t.Run(c.name, func(t *testing.T) {
			w, err := Webhook{Name: "x", URL: "http://127.0.0.1/", Events: c.events, Repositories: c.repos}.Normalize()
			if err != nil {
				t.Fatal(err)
			}
			ce := events.CloudEvent{Type: c.typ, Data: events.CloudEventData{Repository: c.repo}}
			if got := w.Matches(ce); got != c.want {
				t.Errorf("Matches(%s %q) = %v, want %v", c.typ, c.repo, got, c.want)
			}
		})
	}
}

func TestNormalizeRejects(t *testing.T) {
	for _, w := range []Webhook{
		{Name: "", URL: "http://h/"},
		{Name: "a.b", URL: "http://h/"},
		{Name: "a b", URL: "http://h/"},
		{Name: "ok", URL: "ftp://h/"},
		{Name: "ok", URL: "/relative"},
		{Name: "ok", URL: "http://h/", Format: "xml"},
		{Name: "ok", URL: "http://h/", Repositories: []string{"a/[b"}},
	} {
		if _, err := w.Normalize(); err == nil {
			t.Errorf("Normalize(%+v) accepted it", w)
		}
	}
}

func TestBackoffStaysInBounds(t *testing.T) {
	wh := Webhook{InitialBackoff: 100 * time.Millisecond, MaxBackoff: time.Second}
	for n := 1; n <= 40; n++ {
		for range 50 {
			if d := backoff(wh, n); d < wh.InitialBackoff || d > wh.MaxBackoff {
				t.Fatalf("backoff(%d) = %s, outside [%s, %s]", n, d, wh.InitialBackoff, wh.MaxBackoff)
			}
		}
	}
	if d := backoff(wh, 10); d < wh.MaxBackoff/2 {
		t.Errorf("backoff(10) = %s, want near MaxBackoff %s", d, wh.MaxBackoff)
	}
}

// TestConcurrencyIsBounded: many repositories proceed in parallel, but no
// more than Options.Concurrency requests to one webhook are in flight.
func TestConcurrencyIsBounded(t *testing.T) {
	js := startJetStream(t)
	var inFlight, peak atomic.Int32
	rc := newReceiver(t, func(int, *http.Request) int {
		n := inFlight.Add(1)
		defer inFlight.Add(-1)
		for {
			p := peak.Load()
			if n <= p || peak.CompareAndSwap(p, n) {
				break
			}
		}
		time.Sleep(50 * time.Millisecond)
		return http.StatusOK
	})
	m := newTestManager(t, js, func(o *Options) { o.Concurrency = 3 })
	mustSync(t, m, testHook("par", rc.URL))
	runManager(t, m)
	pub := &publisher{t: t, js: js}
	for i := range 24 {
		pub.publish(events.CETypeManifestPushed, "repo/"+string(rune('a'+i%12)))
	}
	waitFor(t, 10*time.Second, "24 deliveries", func() bool { return len(rc.delivered()) == 24 })
	if p := peak.Load(); p != 3 {
		t.Errorf("peak concurrent requests %d, want 3 (parallel across repositories, bounded)", p)
	}
}
