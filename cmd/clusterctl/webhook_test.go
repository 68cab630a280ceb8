package main

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// fakeWebhookAPI answers the webhook and events endpoints with fixed
// bodies and records the requests, so the tests see what clusterctl sends
// and prints.
func fakeWebhookAPI(t *testing.T, seen *[]string) *cli {
	mux := http.NewServeMux()
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		*seen = append(*seen, r.Method+" "+r.URL.RequestURI())
		switch {
		case strings.HasSuffix(r.URL.Path, "/deliveries"):
			w.Write([]byte(`[{"webhook":"ci","eventId":"c1:7","index":7,"attempt":2,"status":503,"latency":12000000,"error":"503 Service Unavailable","time":"2026-01-02T03:04:05Z"}]`))
		case strings.HasSuffix(r.URL.Path, "/dead-letters"):
			w.Write([]byte(`[]`))
		case strings.HasSuffix(r.URL.Path, "/redeliver"):
			if r.URL.Query().Get("deadLetters") == "true" {
				w.Write([]byte(`{"webhook":"ci","deadLetters":{"delivered":2,"deadLettered":1}}`))
				return
			}
			w.Write([]byte(`{"webhook":"ci","from":5,"sequence":3}`))
		case strings.HasSuffix(r.URL.Path, "/test"):
			w.Write([]byte(`{"webhook":"ci","eventId":"c1:ping:1","status":500,"error":"500 Internal Server Error","latency":1000000}`))
		case r.URL.Path == "/admin/v1/events":
			w.Write([]byte(`{"id":"c1:7","type":"dev.berth.manifest.pushed","time":"2026-01-02T03:04:05Z","subject":"team-a/app:1.0","data":{"index":7,"actor":"alice","userAgent":"crane/0.20"}}` + "\n"))
		default:
			http.NotFound(w, r)
		}
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return &cli{t: t, env: map[string]string{"BERTH_SERVER": srv.URL, "BERTH_TOKEN": testToken}}
}

func TestWebhookCommands(t *testing.T) {
	var seen []string
	c := fakeWebhookAPI(t, &seen)
	for _, tc := range []struct {
		args      []string
		request   string
		wantOut   []string
		wantError string
	}{
		{[]string{"webhook", "deliveries", "ci"}, "GET /admin/v1/webhooks/ci/deliveries?limit=20",
			[]string{"TIME", "EVENT", "ATTEMPT", "2026-01-02T03:04:05Z", "c1:7", "503", "12ms", "503 Service Unavailable"}, ""},
		{[]string{"webhook", "dead-letters", "ci", "--limit", "5"}, "GET /admin/v1/webhooks/ci/dead-letters?limit=5", []string{"No dead letters."}, ""},
		{[]string{"webhook", "redeliver", "ci", "--from", "5"}, "POST /admin/v1/webhooks/ci/redeliver?from=5",
			[]string{"webhook/ci: redelivering from index 5 (stream sequence 3)"}, ""},
		{[]string{"webhook", "redeliver", "ci", "--dead-letters"}, "POST /admin/v1/webhooks/ci/redeliver?deadLetters=true",
			[]string{"2 dead letters delivered, 1 failed again"}, "1 dead letters of webhook ci failed again"},
		{[]string{"webhook", "test", "ci"}, "POST /admin/v1/webhooks/ci/test", nil, "ping c1:ping:1 failed: status 500"},
		{[]string{"events", "--repo", "team-a/**", "--type", "manifest.pushed", "--since", "3", "--follow"},
			"GET /admin/v1/events?follow=true&repo=team-a%2F%2A%2A&since=3&type=manifest.pushed",
			[]string{"INDEX", "ACTOR/USER-AGENT", "7 ", "manifest.pushed", "team-a/app:1.0", "alice / crane/0.20"}, ""},
		{[]string{"events", "-o", "json"}, "GET /admin/v1/events?since=0", []string{`{"id":"c1:7"`}, ""},
	} {
		seen = nil
		out, err := c.run("", tc.args...)
		if tc.wantError == "" && err != nil || tc.wantError != "" && (err == nil || !strings.Contains(err.Error(), tc.wantError)) {
			t.Errorf("clusterctl %v: error %v, want %q\n%s", tc.args, err, tc.wantError, out)
		}
		if len(seen) != 1 || seen[0] != tc.request {
			t.Errorf("clusterctl %v sent %v, want %s", tc.args, seen, tc.request)
		}
		for _, w := range tc.wantOut {
			if !strings.Contains(out, w) {
				t.Errorf("clusterctl %v output lacks %q:\n%s", tc.args, w, out)
			}
		}
	}
	for _, args := range [][]string{{"webhook", "redeliver", "ci"}, {"webhook", "redeliver", "ci", "--from", "1", "--dead-letters"}} {
		c.fails("", "exactly one of --from INDEX or --dead-letters", args...)
	}
	c.fails("", `unknown output format "yaml"`, "events", "-o", "yaml")
}

// Ctrl-C ends `events --follow` without an error.
func TestEventsFollowStopsOnCancel(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte(`{"id":"c1:1","type":"dev.berth.ping","data":{"index":1}}` + "\n"))
		w.(http.Flusher).Flush()
		<-r.Context().Done()
	}))
	t.Cleanup(srv.Close)
	root := newRoot(env(map[string]string{"BERTH_SERVER": srv.URL, "BERTH_TOKEN": testToken}))
	var out strings.Builder
	root.SetOut(&out)
	root.SetArgs([]string{"events", "--follow"})
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	if err := root.ExecuteContext(ctx); err != nil {
		t.Errorf("events --follow ended with %v", err)
	}
	if !strings.Contains(out.String(), "ping") {
		t.Errorf("output:\n%s", out.String())
	}
}
