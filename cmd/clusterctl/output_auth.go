package main

import (
	"fmt"
	"strings"
	"time"
)

// authColumns lays out the identity and namespace kinds. Hashes are never
// shown in a table or in details (they are in -o yaml, which apply takes
// back): they say nothing to a reader and invite copying.
func authColumns(kind string, name, generation, labels, created column) (normal, wide []column, ok bool) {
	switch kind {
	case "Namespace":
		return []column{name, {"PUBLIC", path("spec.public")}, {"USAGE", usageCell}, {"QUOTA", dashed("spec.quota.storage")}, {"MEMBERS", membersCount}, generation, {"AGE", ageOf}},
			[]column{{"MEMBER-LIST", membersCell}, labels, created}, true
	case "User":
		return []column{name, {"CLUSTER-ADMIN", path("spec.clusterAdmin")}, {"DISABLED", path("spec.disabled")}, generation, {"AGE", ageOf}},
			[]column{labels, created}, true
	case "Robot":
		return []column{name, {"NAMESPACE", path("spec.namespace")}, {"ROLE", path("spec.role")}, {"EXPIRES", expiresCell}, {"DISABLED", path("spec.disabled")}, {"AGE", ageOf}},
			[]column{generation, labels, created}, true
	}
	return nil, nil, false
}

// usageCell shows status.usage (bytes the namespace stores, as the
// server counts them for the quota) in binary units, with its share of
// the quota when there is one: "42.5Gi (85%)".
func usageCell(doc map[string]any, _ time.Time) string {
	usage, ok := field(doc, "status.usage").(float64)
	if !ok {
		return "-" // a server without quotas
	}
	out := humanBytes(int64(usage))
	if quota, ok := field(doc, "status.quota").(float64); ok && quota > 0 {
		out += fmt.Sprintf(" (%d%%)", int64(usage*100/quota))
	}
	return out
}

func usageDetail(doc map[string]any) string {
	usage, ok := field(doc, "status.usage").(float64)
	if !ok {
		return "-"
	}
	return fmt.Sprintf("%s (%d bytes)", usageCell(doc, time.Time{}), int64(usage))
}

// humanBytes writes n in the largest binary unit it reaches, with one
// decimal: 1536 is "1.5Ki".
func humanBytes(n int64) string {
	units := []string{"Ki", "Mi", "Gi", "Ti", "Pi"}
	if n < 1024 {
		return fmt.Sprint(n)
	}
	v, u := float64(n)/1024, 0
	for v >= 1024 && u < len(units)-1 {
		v, u = v/1024, u+1
	}
	return strings.TrimSuffix(fmt.Sprintf("%.1f", v), ".0") + units[u]
}

func members(doc map[string]any) []string {
	l, _ := field(doc, "spec.members").([]any)
	out := make([]string, 0, len(l))
	for _, e := range l {
		m, _ := e.(map[string]any)
		who := fmt.Sprintf("user:%v", m["user"])
		if r, isRobot := m["robot"]; isRobot {
			who = fmt.Sprintf("robot:%v", r)
		}
		out = append(out, fmt.Sprintf("%s=%v", who, m["role"]))
	}
	return out
}

func membersCount(doc map[string]any, _ time.Time) string { return fmt.Sprint(len(members(doc))) }

func membersCell(doc map[string]any, _ time.Time) string {
	return orDash(strings.Join(members(doc), ","))
}

// expiresCell shows a robot's expiry, and "expired" once it has passed.
func expiresCell(doc map[string]any, now time.Time) string {
	s := str(doc, "spec.expires")
	if s == "" {
		return "never"
	}
	if t, err := time.Parse(time.RFC3339, s); err == nil && !now.Before(t) {
		return s + " (expired)"
	}
	return s
}

// authDetails are the detail rows of the identity and namespace kinds.
func authDetails(doc map[string]any, now time.Time) [][2]string {
	switch str(doc, "kind") {
	case "Namespace":
		return [][2]string{
			{"Public:", str(doc, "spec.public")},
			{"Quota:", orDash(str(doc, "spec.quota.storage"))},
			{"Usage:", usageDetail(doc)},
			{"Members:", orDash(strings.Join(members(doc), ", "))},
		}
	case "User":
		return [][2]string{
			{"Cluster admin:", str(doc, "spec.clusterAdmin")},
			{"Disabled:", str(doc, "spec.disabled")},
		}
	case "Robot":
		return [][2]string{
			{"Namespace:", str(doc, "spec.namespace")},
			{"Role:", str(doc, "spec.role")},
			{"Expires:", expiresCell(doc, now)},
			{"Disabled:", str(doc, "spec.disabled")},
		}
	}
	return nil
}
