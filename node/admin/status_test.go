package admin

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/berth-registry/berth/fsm"
	"github.com/berth-registry/berth/fsm/resource"
	"github.com/berth-registry/berth/node/secrets"
)

const twoWebhooks = `apiVersion: berth.dev/v1
kind: Webhook
metadata: {name: ci}
spec:
  url: https://ci.example.com/hooks/berth
  events: [manifest.pushed, tag.deleted]
  repositories: ["team-a/**"]
  signing: {secretRef: {name: ci-hook, key: hmac}}
---
apiVersion: berth.dev/v1
kind: Webhook
metadata: {name: plain}
spec:
  url: http://127.0.0.1:9/hook
`

// conditionsOf returns status.conditions of a decoded resource.
func conditionsOf(t *testing.T, m map[string]any) []resource.Condition {
	t.Helper()
	status, ok := m["status"]
	if !ok {
		return nil
	}
	b, _ := json.Marshal(status)
	var s struct{ Conditions []resource.Condition }
	if err := json.Unmarshal(b, &s); err != nil {
		t.Fatal(err)
	}
	return s.Conditions
}

// A webhook whose signing secret is missing is served with a condition
// saying so, computed by the answering node; once the file is there the
// condition turns True. Nothing crashes and nothing is stored.
func TestWebhookSecretCondition(t *testing.T) {
	dir := t.TempDir()
	n := &logNode{f: fsm.New(slog.New(slog.DiscardHandler))}
	srv := httptest.NewServer(New(token, n, n, nil, WithConditions(secrets.New(dir).Conditions)))
	t.Cleanup(srv.Close)

	if code, m := call(t, srv, "POST", "/admin/v1/apply", twoWebhooks); code != http.StatusOK {
		t.Fatalf("apply: %d %v", code, m)
	}
	code, m := call(t, srv, "GET", "/admin/v1/resources/webhook/ci", "")
	conds := conditionsOf(t, m)
	secretFile := filepath.Join(dir, "ci-hook", "hmac")
	if code != http.StatusOK || len(conds) != 1 || conds[0].Type != "SecretResolved" || conds[0].Status != "False" ||
		conds[0].Reason != "SecretNotFound" || !strings.Contains(conds[0].Message, secretFile) {
		t.Fatalf("get ci without its secret: %d %+v", code, m)
	}
	if spec, _ := m["spec"].(map[string]any); spec["url"] != "https://ci.example.com/hooks/berth" {
		t.Errorf("spec not served: %v", m)
	}

	// The status is observed, not desired: applying what GET answered
	// changes nothing.
	b, _ := json.Marshal(m)
	if code, m := call(t, srv, "POST", "/admin/v1/apply", string(b)); code != http.StatusOK || results(t, m)[0].Action != "unchanged" {
		t.Errorf("re-apply of get output: %d %v", code, m)
	}

	if err := os.MkdirAll(filepath.Dir(secretFile), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(secretFile, []byte("hmac-key-value\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	code, m = call(t, srv, "GET", "/admin/v1/resources/webhooks/ci", "")
	if conds := conditionsOf(t, m); code != http.StatusOK || len(conds) != 1 || conds[0].Status != "True" || conds[0].Reason != "SecretFound" {
		t.Errorf("get ci with its secret: %d %+v", code, m)
	}
	raw, _ := json.Marshal(m)
	if strings.Contains(string(raw), "hmac-key-value") {
		t.Errorf("the answer reveals the secret: %s", raw)
	}

	// A webhook that signs nothing has no condition; lists carry them too.
	if code, m := call(t, srv, "GET", "/admin/v1/resources/wh/plain", ""); code != http.StatusOK || m["status"] != nil {
		t.Errorf("get plain: %d %v", code, m)
	}
	if err := os.Remove(secretFile); err != nil {
		t.Fatal(err)
	}
	code, m = call(t, srv, "GET", "/admin/v1/resources/webhooks", "")
	items, _ := m["items"].([]any)
	if code != http.StatusOK || m["kind"] != "WebhookList" || len(items) != 2 {
		t.Fatalf("list: %d %v", code, m)
	}
	if c := conditionsOf(t, items[0].(map[string]any)); len(c) != 1 || c[0].Reason != "SecretNotFound" {
		t.Errorf("list item ci: %v", items[0])
	}
	if c := conditionsOf(t, items[1].(map[string]any)); c != nil {
		t.Errorf("list item plain: %v", items[1])
	}
}

// Without a conditions hook, documents are answered exactly as stored.
func TestNoConditionsHook(t *testing.T) {
	srv, _ := newServer(t)
	if code, m := call(t, srv, "POST", "/admin/v1/apply", twoWebhooks); code != http.StatusOK {
		t.Fatalf("apply: %d %v", code, m)
	}
	if code, m := call(t, srv, "GET", "/admin/v1/resources/webhook/ci", ""); code != http.StatusOK || m["status"] != nil {
		t.Errorf("get: %d %v", code, m)
	}
	// A hook that finds nothing to say leaves the document alone too.
	s := &server{conditions: func(context.Context, string, string, []byte) []resource.Condition { return nil }}
	doc := json.RawMessage(`{"kind":"Webhook"}`)
	if got := s.withStatus(context.Background(), fsm.New(slog.New(slog.DiscardHandler)).View(), "Webhook", "x", doc); string(got) != string(doc) {
		t.Errorf("withStatus = %s", got)
	}
}
