package single

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

const outageHook = `apiVersion: berth.dev/v1
kind: Webhook
metadata: {name: outage}
spec:
  url: %s
  events: [manifest.pushed]
  repositories: ["wh/**"]
  timeout: 2s
  retry: {initialBackoff: 200ms, maxBackoff: 1s, maxDeliveries: 1000}
  signing: {secretRef: {name: e2e-hook, key: hmac}}
`

// A receiver that answers 503 for 10 s and then recovers gets every push
// acknowledged after the Webhook was applied: after dedup by id, the set
// of ids is exactly <cluster id>:<index> of the acknowledged pushes, each
// repository's events arrive in log order, and every signature verifies
// with README.md's recipes (Go and shell), while a changed body or an old
// timestamp fails them.
func TestWebhookDeliversEveryPushThroughOutage(t *testing.T) {
	openssl, err := exec.LookPath("openssl")
	if err != nil {
		t.Fatal("openssl is needed to run README.md's shell verification recipe: install it")
	}
	data := t.TempDir()
	reg := startRegistry(t, data, "")
	c := newCtl(t, reg)
	const secret = "e2e-hmac-secret"
	secretFile := writeSecret(t, data, "e2e-hook", "hmac", secret+"\n")
	pushIndexed(t, reg.addr, "warm/up", "w") // the outbox is on, the cluster named
	clusterID := c.clusterID()

	var recoverAt atomic.Int64
	recoverAt.Store(time.Now().Add(time.Hour).UnixNano())
	r := newReceiver(t, func() int {
		if time.Now().UnixNano() < recoverAt.Load() {
			return 503
		}
		return 204
	})
	recoverAt.Store(time.Now().Add(10 * time.Second).UnixNano())
	c.apply(fmt.Sprintf(outageHook, r.url))

	// Pushes right after the apply: the webhook starts at its own apply.
	repos := []string{"wh/a", "wh/b", "wh/team/c"}
	var want []string
	perRepo := map[string][]string{}
	for i := range 5 {
		for _, repo := range repos {
			id := fmt.Sprintf("%s:%d", clusterID, pushIndexed(t, reg.addr, repo, fmt.Sprintf("v%d", i)))
			want = append(want, id)
			perRepo[repo] = append(perRepo[repo], id)
		}
	}
	pushIndexed(t, reg.addr, "other/x", "v0") // not matched by the webhook
	waitDelivered(t, r, want, 45*time.Second)
	time.Sleep(500 * time.Millisecond) // anything extra would show now

	reqs := r.requests()
	got := r.deliveredIDs()
	var gotIDs []string
	for id := range got {
		gotIDs = append(gotIDs, id)
	}
	slices.Sort(gotIDs)
	slices.Sort(want)
	if !slices.Equal(gotIDs, want) {
		t.Errorf("delivered ids (after dedup) %v\nwant the acknowledged pushes %v", gotIDs, want)
	}
	if !slices.ContainsFunc(reqs, func(q hookRequest) bool { return q.status == 503 }) {
		t.Error("no attempt was answered 503: the outage was not exercised")
	}

	// Per repository, first arrivals come in log order.
	firstSeen := map[string]bool{}
	arrived := map[string][]string{}
	for _, q := range reqs {
		var ce struct {
			ID   string `json:"id"`
			Type string `json:"type"`
			Data struct {
				Repository string `json:"repository"`
			} `json:"data"`
		}
		if err := json.Unmarshal(q.body, &ce); err != nil {
			t.Fatalf("body is not a CloudEvent: %v\n%s", err, q.body)
		}
		if ce.ID != q.header.Get("Berth-Event-Id") || ce.Type != "dev.berth.manifest.pushed" {
			t.Errorf("event %s (%s) with Berth-Event-Id %q", ce.ID, ce.Type, q.header.Get("Berth-Event-Id"))
		}
		if ct := q.header.Get("Content-Type"); ct != "application/cloudevents+json" {
			t.Errorf("Content-Type %q", ct)
		}
		if !firstSeen[ce.ID] {
			firstSeen[ce.ID] = true
			arrived[ce.Data.Repository] = append(arrived[ce.Data.Repository], ce.ID)
		}
	}
	for _, repo := range repos {
		if !slices.Equal(arrived[repo], perRepo[repo]) {
			t.Errorf("%s: events arrived in the order %v, want log order %v", repo, arrived[repo], perRepo[repo])
		}
	}

	// Every attempt is signed; README's Go recipe accepts it, and refuses
	// a changed body and an old timestamp.
	now := time.Now()
	for _, q := range reqs {
		if err := readmeVerify([]byte(secret), q.body, q.header.Get("Berth-Signature"), now); err != nil {
			t.Fatalf("signature %q of %s: %v", q.header.Get("Berth-Signature"), q.header.Get("Berth-Event-Id"), err)
		}
	}
	q := reqs[len(reqs)-1]
	sig := q.header.Get("Berth-Signature")
	if readmeVerify([]byte(secret), append(slices.Clone(q.body), ' '), sig, now) == nil {
		t.Error("a changed body verified")
	}
	if readmeVerify([]byte(secret), q.body, sig, now.Add(10*time.Minute)) == nil {
		t.Error("a 10-minute-old signature verified")
	}

	// README's shell recipe, with openssl.
	dir := t.TempDir()
	script := writeFile(t, filepath.Join(dir, "verify.sh"), []byte(readmeShellRecipe(t)))
	body := writeFile(t, filepath.Join(dir, "body.json"), q.body)
	shell := func(sig, body string) (string, error) {
		cmd := exec.Command("sh", script, sig, body, secretFile)
		cmd.Env = append(os.Environ(), "PATH="+filepath.Dir(openssl)+":"+os.Getenv("PATH"))
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	if out, err := shell(sig, body); err != nil {
		t.Errorf("README verify.sh refused a valid delivery: %v\n%s", err, out)
	}
	changed := writeFile(t, filepath.Join(dir, "changed.json"), append(slices.Clone(q.body), ' '))
	if out, err := shell(sig, changed); err == nil || !strings.Contains(out, "bad signature") {
		t.Errorf("README verify.sh accepted a changed body: %v\n%s", err, out)
	}
	old := strings.Replace(sig, "t=", "t=1", 1) // a timestamp far in the future
	if out, err := shell(old, body); err == nil || !strings.Contains(out, "stale") {
		t.Errorf("README verify.sh accepted a wrong timestamp: %v\n%s", err, out)
	}

	// The attempts are on record, 503s and successes.
	table := c.run("webhook", "deliveries", "outage", "--limit", "100")
	if !strings.Contains(table, "503") || !strings.Contains(table, "204") || !strings.Contains(table, "STATUS") {
		t.Errorf("webhook deliveries:\n%s", table)
	}
	if strings.Contains(reg.p.Out.String(), secret) {
		t.Error("the secret was logged")
	}
}
