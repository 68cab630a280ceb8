package single

import (
	"encoding/json"
	"fmt"
	"os"
	"regexp"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/berth-registry/berth/e2e/harness"
)

const brokenHook = `apiVersion: berth.dev/v1
kind: Webhook
metadata: {name: broken}
spec:
  url: %s
  events: [manifest.pushed]
  repositories: ["dl/**"]
  timeout: 1s
  retry: {initialBackoff: 100ms, maxBackoff: 1s, maxDeliveries: 3}
`

// An endpoint that answers 500 forever: each event ends in the dead
// letters after maxDeliveries attempts, which `webhook deliveries` lists;
// once the endpoint is fixed, `redeliver --dead-letters` delivers each
// once and empties the list. `webhook test` delivers a ping, and
// `clusterctl events` lists the pushes.
func TestWebhookDeadLettersAndRedeliver(t *testing.T) {
	data := t.TempDir()
	reg := startRegistry(t, data, "")
	c := newCtl(t, reg)
	pushIndexed(t, reg.addr, "warm/up", "w")
	clusterID := c.clusterID()

	var broken atomic.Bool
	broken.Store(true)
	r := newReceiver(t, func() int {
		if broken.Load() {
			return 500
		}
		return 200
	})
	c.apply(fmt.Sprintf(brokenHook, r.url))
	var want []string
	var indexes []uint64
	for i := range 3 {
		idx := pushIndexed(t, reg.addr, "dl/app", fmt.Sprintf("v%d", i))
		indexes = append(indexes, idx)
		want = append(want, fmt.Sprintf("%s:%d", clusterID, idx))
	}

	var dls []struct {
		EventID   string `json:"eventId"`
		Index     uint64 `json:"index"`
		Attempts  int    `json:"attempts"`
		LastError string `json:"lastError"`
	}
	harness.WaitFor(t, "dead letters", 30*time.Second, func() error {
		out := c.run("webhook", "dead-letters", "broken", "-o", "json")
		if err := json.Unmarshal([]byte(out), &dls); err != nil {
			return fmt.Errorf("dead-letters -o json: %v: %s", err, out)
		}
		if len(dls) < len(want) {
			return fmt.Errorf("%d dead letters so far", len(dls))
		}
		return nil
	})
	var dlIDs []string
	for _, d := range dls {
		dlIDs = append(dlIDs, d.EventID)
		if d.Attempts != 3 || !strings.Contains(d.LastError, "500") {
			t.Errorf("dead letter %s: %d attempts, last error %q; want 3 attempts ending in 500", d.EventID, d.Attempts, d.LastError)
		}
	}
	if !slices.Equal(dlIDs, want) {
		t.Errorf("dead letters %v, want the pushes in order %v", dlIDs, want)
	}
	if table := c.run("webhook", "dead-letters", "broken"); !strings.Contains(table, "ATTEMPTS") || !strings.Contains(table, want[0]) {
		t.Errorf("dead-letters table:\n%s", table)
	}
	var recs []struct {
		EventID string `json:"eventId"`
		Attempt int    `json:"attempt"`
		Status  int    `json:"status"`
	}
	if err := json.Unmarshal([]byte(c.run("webhook", "deliveries", "broken", "--limit", "100", "-o", "json")), &recs); err != nil {
		t.Fatal(err)
	}
	attempts := map[string][]int{}
	for _, rec := range recs {
		if rec.Status != 500 {
			t.Errorf("attempt %d of %s answered %d while the endpoint was broken", rec.Attempt, rec.EventID, rec.Status)
		}
		attempts[rec.EventID] = append(attempts[rec.EventID], rec.Attempt)
	}
	for _, id := range want {
		if !slices.Equal(attempts[id], []int{1, 2, 3}) {
			t.Errorf("recorded attempts of %s: %v, want [1 2 3]", id, attempts[id])
		}
	}

	// /metrics counts the attempts and the dead letters.
	tok, err := os.ReadFile(c.tok)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := harness.Ctx(10 * time.Second)
	defer cancel()
	code, _, body, err := harness.HTTPStatus(ctx, "GET", "http://"+reg.addr+"/metrics", map[string]string{"Authorization": "Bearer " + strings.TrimSpace(string(tok))}, nil)
	if err != nil || code != 200 {
		t.Fatalf("GET /metrics: %d %v", code, err)
	}
	for _, series := range []string{`berth_webhook_deliveries_total{status="500",webhook="broken"} 9`, `berth_webhook_dead_letters_total{webhook="broken"} 3`,
		`berth_events_outbox_state{state="publishing"} 1`} {
		if !strings.Contains(string(body), series+"\n") {
			t.Errorf("/metrics lacks %s", series)
		}
	}
	if !regexp.MustCompile(`(?m)^berth_events_published_total [1-9]`).Match(body) {
		t.Error("/metrics: berth_events_published_total is not positive")
	}

	broken.Store(false)
	if out := c.run("webhook", "redeliver", "broken", "--dead-letters"); !strings.Contains(out, "3 dead letters delivered, 0 failed again") {
		t.Errorf("redeliver --dead-letters: %s", out)
	}
	time.Sleep(500 * time.Millisecond)
	got := r.deliveredIDs()
	for _, id := range want {
		if got[id] != 1 {
			t.Errorf("%s delivered %d times after redeliver, want once", id, got[id])
		}
	}
	if out := c.run("webhook", "dead-letters", "broken"); !strings.Contains(out, "No dead letters.") {
		t.Errorf("dead letters left after redeliver:\n%s", out)
	}

	// A ping reaches the (fixed) endpoint.
	if out := c.run("webhook", "test", "broken"); !strings.Contains(out, "delivered: 200") {
		t.Errorf("webhook test: %s", out)
	}
	last := r.requests()[len(r.requests())-1]
	if !strings.Contains(string(last.body), `"dev.berth.ping"`) {
		t.Errorf("webhook test sent %s", last.body)
	}

	// clusterctl events lists the pushes, from the start or filtered.
	var listed []string
	for _, line := range strings.Split(strings.TrimSpace(c.run("events", "--since", "0", "-o", "json")), "\n") {
		var ce struct {
			ID string `json:"id"`
		}
		if err := json.Unmarshal([]byte(line), &ce); err != nil {
			t.Fatalf("events -o json line %q: %v", line, err)
		}
		listed = append(listed, ce.ID)
	}
	for _, id := range want {
		if !slices.Contains(listed, id) {
			t.Errorf("clusterctl events --since 0 does not list %s: %v", id, listed)
		}
	}
	table := c.run("events", "--repo", "dl/**", "--type", "manifest.pushed", "--since", fmt.Sprint(indexes[1]))
	lines := strings.Split(strings.TrimSpace(table), "\n")
	if len(lines) != 3 || !strings.HasPrefix(lines[0], "INDEX") || !strings.HasPrefix(lines[1], fmt.Sprint(indexes[1])) ||
		!strings.Contains(lines[1], "manifest.pushed") || !strings.Contains(lines[1], "dl/app:v1") {
		t.Errorf("clusterctl events --repo dl/** --since %d:\n%s", indexes[1], table)
	}
}

const distHook = `apiVersion: berth.dev/v1
kind: Webhook
metadata: {name: dist}
spec:
  url: %s
  events: [manifest.pushed]
  repositories: ["dist/**"]
  format: distribution
`

// distributionEnvelope is CNCF Distribution's notification body, as its
// docs (docs/content/about/notifications.md) describe it.
type distributionEnvelope struct {
	Events []struct {
		ID        string    `json:"id"`
		Timestamp time.Time `json:"timestamp"`
		Action    string    `json:"action"`
		Target    struct {
			MediaType  string `json:"mediaType"`
			Size       int64  `json:"size"`
			Digest     string `json:"digest"`
			Length     int64  `json:"length"`
			Repository string `json:"repository"`
			Tag        string `json:"tag"`
		} `json:"target"`
		Request struct {
			ID        string `json:"id"`
			Method    string `json:"method"`
			UserAgent string `json:"useragent"`
		} `json:"request"`
		Source struct {
			Addr string `json:"addr"`
		} `json:"source"`
	} `json:"events"`
}

// format: distribution posts Distribution's envelope, which a receiver
// written for distribution/registry parses.
func TestWebhookDistributionFormat(t *testing.T) {
	data := t.TempDir()
	reg := startRegistry(t, data, "")
	c := newCtl(t, reg)
	pushIndexed(t, reg.addr, "warm/up", "w")
	clusterID := c.clusterID()
	r := newReceiver(t, func() int { return 200 })
	c.apply(fmt.Sprintf(distHook, r.url))
	ctx, cancel := harness.Ctx(20 * time.Second)
	defer cancel()
	im := harness.NewImage("dist/app", "1.0")
	idx, err := im.PushIndexed(ctx, reg.addr)
	if err != nil {
		t.Fatal(err)
	}
	id := fmt.Sprintf("%s:%d", clusterID, idx)
	waitDelivered(t, r, []string{id}, 20*time.Second)
	q := r.requests()[0]
	if ct := q.header.Get("Content-Type"); ct != "application/vnd.docker.distribution.events.v2+json" {
		t.Errorf("Content-Type %q", ct)
	}
	var env distributionEnvelope
	if err := json.Unmarshal(q.body, &env); err != nil {
		t.Fatalf("not a Distribution envelope: %v\n%s", err, q.body)
	}
	if len(env.Events) != 1 {
		t.Fatalf("envelope with %d events:\n%s", len(env.Events), q.body)
	}
	e := env.Events[0]
	if e.Action != "push" || e.Target.Repository != "dist/app" || e.Target.Tag != "1.0" || e.Target.Digest != im.ManifestDigest ||
		e.Target.MediaType != "application/vnd.oci.image.manifest.v1+json" || e.Target.Size != int64(len(im.Manifest)) || e.Timestamp.IsZero() {
		t.Errorf("envelope event %+v\nwant a push of dist/app:1.0 %s", e, im.ManifestDigest)
	}
	if e.ID != id {
		t.Errorf("event id %q, want %q", e.ID, id)
	}
}
