package main

import (
	"log/slog"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/berth-registry/berth/fsm"
	"github.com/berth-registry/berth/node/admin"
	"github.com/berth-registry/berth/node/secrets"
)

const hooks = `apiVersion: berth.dev/v1
kind: Webhook
metadata: {name: ci}
spec:
  url: https://ci.example.com/hooks/berth
  events: [manifest.pushed, tag.deleted]
  repositories: ["team-a/**"]
  headers: {X-Team: [a]}
  signing: {secretRef: {name: ci-hook, key: hmac}}
`

// The whole life of a webhook through clusterctl, against the admin API
// with the node's secret conditions: a missing secret is a STATUS, not an
// error, and turns Ready once the file exists.
func TestWebhookLifecycle(t *testing.T) {
	dir := t.TempDir()
	n := &fsmNode{f: fsm.New(slog.New(slog.DiscardHandler))}
	srv := httptest.NewServer(admin.New(testToken, n, n, nil, admin.WithConditions(secrets.New(dir).Conditions)))
	t.Cleanup(srv.Close)
	c := &cli{t: t, env: map[string]string{"BERTH_SERVER": srv.URL, "BERTH_TOKEN": testToken}}

	if out := c.ok(hooks, "apply", "-f", "-"); out != "webhook/ci created (generation 1)\n" {
		t.Errorf("apply:\n%s", out)
	}
	table := c.ok("", "get", "webhooks")
	lines := strings.Split(strings.TrimSpace(table), "\n")
	if len(lines) != 2 || strings.Join(strings.Fields(lines[0]), " ") != "NAME URL EVENTS REPOSITORIES FORMAT ENABLED STATUS AGE" ||
		!strings.HasPrefix(strings.Join(strings.Fields(lines[1]), " "), "ci https://ci.example.com/hooks/berth manifest.pushed,tag.deleted team-a/** cloudevents true SecretNotFound ") {
		t.Errorf("table:\n%s", table)
	}
	d := c.ok("", "get", "webhook", "ci")
	if !strings.Contains(d, "Webhook Details\n") || !strings.Contains(d, "Conditions:   SecretResolved=False (SecretNotFound): secret not found: no file "+filepath.Join(dir, "ci-hook", "hmac")) {
		t.Errorf("details:\n%s", d)
	}

	if err := os.MkdirAll(filepath.Join(dir, "ci-hook"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "ci-hook", "hmac"), []byte("k"), 0o600); err != nil {
		t.Fatal(err)
	}
	if table := c.ok("", "get", "wh"); !strings.Contains(table, " Ready ") {
		t.Errorf("table with the secret:\n%s", table)
	}

	// get -o yaml, status and all, applies back unchanged; edited, it makes
	// a new generation.
	y := c.ok("", "get", "webhook", "ci", "-o", "yaml")
	if !strings.Contains(y, "status:\n  conditions:\n") {
		t.Errorf("yaml lacks the status:\n%s", y)
	}
	if out := c.ok(y, "apply", "-f", "-"); out != "webhook/ci unchanged (generation 1)\n" {
		t.Errorf("apply of get -o yaml:\n%s", out)
	}
	if out := c.ok(strings.Replace(y, "team-a/**", "team-b/**", 1), "apply", "-f", "-"); out != "webhook/ci configured (generation 2)\n" {
		t.Errorf("apply of edited yaml:\n%s", out)
	}
	if h := c.ok("", "history", "webhook", "ci", "-o", "table"); strings.Count(h, "\n") != 3 {
		t.Errorf("history:\n%s", h)
	}
	c.fails(strings.Replace(hooks, "timeout", "x", 1)+"  timeout: 5 minutes\n  password: x\n", `spec.timeout: "5 minutes" is not a duration`, "apply", "-f", "-")
	if out := c.ok("", "delete", "hooks", "ci"); out != "webhook/ci deleted\n" {
		t.Errorf("delete: %q", out)
	}
	c.fails("", `Webhook "ci" not found`, "get", "webhook", "ci")
}
