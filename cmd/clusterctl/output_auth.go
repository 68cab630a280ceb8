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
		return []column{name, {"PUBLIC", path("spec.public")}, {"QUOTA", dashed("spec.quota.storage")}, {"MEMBERS", membersCount}, generation, {"AGE", ageOf}},
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
