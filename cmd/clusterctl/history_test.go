package main

import (
	"context"
	"regexp"
	"strings"
	"testing"

	"github.com/berth-registry/berth/events"
	"github.com/berth-registry/berth/node/admin"
)

func TestChangeSummary(t *testing.T) {
	doc := func(spec map[string]any, labels map[string]any) map[string]any {
		meta := map[string]any{"name": "ci", "generation": 1.0}
		if labels != nil {
			meta["labels"] = labels
		}
		return map[string]any{"apiVersion": "berth.dev/v1", "kind": "Webhook", "metadata": meta, "spec": spec}
	}
	base := map[string]any{"url": "https://a", "events": []any{"push"}, "enabled": true}
	with := func(k string, v any) map[string]any {
		m := map[string]any{}
		for k, v := range base {
			m[k] = v
		}
		if v == nil {
			delete(m, k)
		} else {
			m[k] = v
		}
		return m
	}
	tests := []struct {
		name      string
		prev, cur map[string]any
		want      string
	}{
		{"one field", doc(base, nil), doc(with("url", "https://b"), nil), "spec.url"},
		{"a list", doc(base, nil), doc(with("events", []any{"push", "delete"}), nil), "spec.events"},
		{"added field", doc(base, nil), doc(with("secretRef", map[string]any{"name": "s"}), nil), "spec.secretRef"},
		{"removed field", doc(base, nil), doc(with("enabled", nil), nil), "spec.enabled"},
		{"labels", doc(base, nil), doc(base, map[string]any{"team": "a"}), "metadata.labels"},
		{"only FSM fields", doc(base, nil), func() map[string]any {
			d := doc(base, nil)
			d["metadata"].(map[string]any)["generation"] = 2.0
			return d
		}(), "-"},
		{"many", doc(base, nil), doc(map[string]any{"a": 1.0, "b": 1.0, "c": 1.0, "url": "x", "events": nil}, map[string]any{"x": "y"}),
			"metadata.labels, spec.a, spec.b, spec.c and 3 more"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := changeSummary(tt.prev, tt.cur); got != tt.want {
				t.Errorf("changeSummary = %q, want %q", got, tt.want)
			}
		})
	}
}

const hook = `apiVersion: berth.dev/v1
kind: Webhook
metadata: {name: ci}
spec:
  url: https://ci.example/hook
  events: [manifest.pushed]
`

// history shows who applied each generation and what it changed, and
// still shows it after the resource is deleted, with who deleted it.
func TestHistoryTable(t *testing.T) {
	c, n := newCLIWithNode(t)
	// The cluster records actors once every voter runs generation 3.
	if _, err := n.Propose(context.Background(), events.QuotasEnabled{}); err != nil {
		t.Fatal(err)
	}
	c.ok(hook, "apply", "-f", "-")
	c.ok(strings.Replace(hook, "ci.example", "ci2.example", 1), "apply", "-f", "-")
	c.ok(strings.Replace(strings.Replace(hook, "ci.example", "ci2.example", 1), "[manifest.pushed]", "[manifest.pushed, tag.deleted]", 1)+"  timeout: 7s\n", "apply", "-f", "-")

	ts := `\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ`
	want := []string{
		`^GENERATION +TIME +ACTOR +CHANGE$`,
		`^1 +` + ts + ` +` + admin.ResourceActor + ` +created$`,
		`^2 +` + ts + ` +` + admin.ResourceActor + ` +spec\.url$`,
		`^3 +` + ts + ` +` + admin.ResourceActor + ` +spec\.events, spec\.timeout$`,
	}
	tests := []struct {
		name  string
		args  []string
		lines []string
	}{
		{"table", []string{"history", "webhook", "ci"}, want},
		{"-o table", []string{"history", "wh", "ci", "-o", "table"}, want},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			matchLines(t, c.ok("", tt.args...), tt.lines)
		})
	}

	y := c.ok("", "history", "webhook", "ci", "-o", "yaml")
	if strings.Count(y, "kind: Webhook") != 3 || strings.Count(y, "\n---\n") != 2 || !strings.Contains(y, "timeout: 7s") {
		t.Errorf("history -o yaml is not the three documents:\n%s", y)
	}

	c.ok("", "delete", "webhook", "ci")
	c.fails("", `Webhook "ci" not found`, "get", "webhook", "ci")
	matchLines(t, c.ok("", "history", "webhook", "ci"), append(want, `^- +`+ts+` +`+admin.ResourceActor+` +deleted$`))
	// The last generation, as it was when deleted, applies back.
	docs := strings.Split(c.ok("", "history", "webhook", "ci", "-o", "yaml"), "\n---\n")
	if out := c.ok(docs[len(docs)-1], "apply", "-f", "-"); out != "webhook/ci created (generation 1)\n" {
		t.Errorf("apply of the deleted generation: %q", out)
	}
	matchLines(t, c.ok("", "history", "webhook", "ci"), want[:2])

	c.fails("", `Webhook "nope" not found`, "history", "webhook", "nope")
	c.fails("", `unknown output format "wide"`, "history", "webhook", "ci", "-o", "wide")
}

// matchLines checks each line of out against a pattern, and the count.
func matchLines(t *testing.T, out string, patterns []string) {
	t.Helper()
	lines := strings.Split(strings.TrimRight(out, "\n"), "\n")
	if len(lines) != len(patterns) {
		t.Fatalf("%d lines, want %d:\n%s", len(lines), len(patterns), out)
	}
	for i, p := range patterns {
		if !regexp.MustCompile(p).MatchString(lines[i]) {
			t.Errorf("line %d %q does not match %s", i+1, lines[i], p)
		}
	}
}
