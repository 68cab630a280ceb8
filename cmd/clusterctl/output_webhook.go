package main

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/berth-registry/berth/fsm/resource"
)

// webhookColumns is the table of `get webhooks`: where events go, which
// ones, and whether this node can sign them (STATUS, from the conditions
// the answering node computed).
func webhookColumns(name, generation, labels, created column) (normal, wide []column) {
	return []column{name, {"URL", path("spec.url")}, {"EVENTS", eventsCell}, {"REPOSITORIES", listCell("spec.repositories")},
			{"FORMAT", path("spec.format")}, {"ENABLED", path("spec.enabled")}, {"STATUS", statusCell}, {"AGE", ageOf}},
		[]column{{"TIMEOUT", dashed("spec.timeout")}, {"MAX-DELIVERIES", dashed("spec.retry.maxDeliveries")}, {"SIGNING", signingCell},
			generation, labels, created}
}

// strs reads a list of strings from a decoded document.
func strs(doc map[string]any, p string) []string {
	l, _ := field(doc, p).([]any)
	out := make([]string, 0, len(l))
	for _, e := range l {
		out = append(out, fmt.Sprint(e))
	}
	return out
}

func listCell(p string) func(map[string]any, time.Time) string {
	return func(doc map[string]any, _ time.Time) string { return orDash(strings.Join(strs(doc, p), ",")) }
}

// eventsCell names the default set instead of listing its types, which
// would push every other column off the screen: "all", "all-but-pulls"
// (the default: every change, no opt-in events), or the default with the
// opt-in events added ("default+manifest.pulled,blob.pulled").
func eventsCell(doc map[string]any, _ time.Time) string {
	events := strs(doc, "spec.events")
	def := slices.DeleteFunc(slices.Clone(resource.WebhookEvents), func(e string) bool { return slices.Contains(resource.OptInEvents, e) })
	switch {
	case slices.Equal(events, resource.WebhookEvents):
		return "all"
	case slices.Equal(events, def):
		return "all-but-pulls"
	}
	if !slices.ContainsFunc(def, func(e string) bool { return !slices.Contains(events, e) }) {
		extra := slices.DeleteFunc(slices.Clone(events), func(e string) bool { return slices.Contains(def, e) })
		return "default+" + strings.Join(extra, ",")
	}
	return orDash(strings.Join(events, ","))
}

// statusCell is Ready when every condition holds, the reasons of those
// that do not otherwise, and "-" when the node reported none.
func statusCell(doc map[string]any, _ time.Time) string {
	conds := conditions(doc)
	if len(conds) == 0 {
		return "-"
	}
	var bad []string
	for _, c := range conds {
		if c.Status != "True" {
			bad = append(bad, c.Reason)
		}
	}
	if len(bad) == 0 {
		return "Ready"
	}
	return strings.Join(bad, ",")
}

func signingCell(doc map[string]any, _ time.Time) string {
	if n := str(doc, "spec.signing.secretRef.name"); n != "" {
		return n + "/" + str(doc, "spec.signing.secretRef.key")
	}
	return "-"
}

func conditions(doc map[string]any) []resource.Condition {
	l, _ := field(doc, "status.conditions").([]any)
	var out []resource.Condition
	for _, e := range l {
		m, ok := e.(map[string]any)
		if !ok {
			continue
		}
		out = append(out, resource.Condition{Type: str(m, "type"), Status: str(m, "status"), Reason: str(m, "reason"), Message: str(m, "message")})
	}
	return out
}

// webhookDetails are the rows of `get webhook NAME`.
func webhookDetails(doc map[string]any) [][2]string {
	retry := "-"
	if field(doc, "spec.retry") != nil {
		retry = fmt.Sprintf("initialBackoff %s, maxBackoff %s, maxDeliveries %s",
			str(doc, "spec.retry.initialBackoff"), str(doc, "spec.retry.maxBackoff"), str(doc, "spec.retry.maxDeliveries"))
	}
	signing := "-"
	if n := str(doc, "spec.signing.secretRef.name"); n != "" {
		signing = fmt.Sprintf("HMAC-SHA256 (secret %s, key %s)", n, str(doc, "spec.signing.secretRef.key"))
	}
	return [][2]string{
		{"URL:", str(doc, "spec.url")},
		{"Enabled:", str(doc, "spec.enabled")},
		{"Events:", orDash(strings.Join(strs(doc, "spec.events"), ", "))},
		{"Repositories:", orDash(strings.Join(strs(doc, "spec.repositories"), ", "))},
		{"Format:", str(doc, "spec.format")},
		{"Headers:", headersSummary(doc)},
		{"Timeout:", orDash(str(doc, "spec.timeout"))},
		{"Retry:", retry},
		{"Signing:", signing},
	}
}

// headersSummary shows X-Team=a,b;X-Env=prod.
func headersSummary(doc map[string]any) string {
	h, _ := field(doc, "spec.headers").(map[string]any)
	if len(h) == 0 {
		return "-"
	}
	parts := make([]string, 0, len(h))
	for k := range h {
		parts = append(parts, k+"="+strings.Join(strs(doc, "spec.headers."+k), ","))
	}
	slices.Sort(parts)
	return strings.Join(parts, "; ")
}

// conditionRows lists status.conditions, one a line, for any kind.
func conditionRows(doc map[string]any) [][2]string {
	var rows [][2]string
	for i, c := range conditions(doc) {
		label := ""
		if i == 0 {
			label = "Conditions:"
		}
		line := fmt.Sprintf("%s=%s (%s)", c.Type, c.Status, c.Reason)
		if c.Message != "" {
			line += ": " + c.Message
		}
		rows = append(rows, [2]string{label, line})
	}
	return rows
}
