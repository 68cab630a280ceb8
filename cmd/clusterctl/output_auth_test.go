package main

import (
	"bytes"
	"strings"
	"testing"
)

const (
	nsJSON = `{"apiVersion":"berth.dev/v1","kind":"Namespace","metadata":{"name":"team-a","generation":3,"creationTimestamp":"2026-03-15T10:00:00Z"},
		"spec":{"public":false,"quota":{"storage":"50Gi"},"members":[{"user":"alice","role":"admin"},{"robot":"ci-team-a","role":"developer"}]}}`
	nsUsageJSON = `{"apiVersion":"berth.dev/v1","kind":"Namespace","metadata":{"name":"team-a","generation":3,"creationTimestamp":"2026-03-15T10:00:00Z"},
		"spec":{"public":false,"quota":{"storage":"50Gi"},"members":[{"user":"alice","role":"admin"},{"robot":"ci-team-a","role":"developer"}]},
		"status":{"usage":45634027520,"quota":53687091200}}`
	userJSON = `{"apiVersion":"berth.dev/v1","kind":"User","metadata":{"name":"alice","generation":1,"creationTimestamp":"2026-03-15T10:00:00Z"},
		"spec":{"passwordHash":"$2a$10$lLuWqPd2eQBjBOD6tKSxTOfiOjykZALwEId.Wzvv4ukv8qmoR816.","clusterAdmin":true,"disabled":false}}`
	robotJSON = `{"apiVersion":"berth.dev/v1","kind":"Robot","metadata":{"name":"ci-team-a","generation":1,"creationTimestamp":"2026-03-15T10:00:00Z"},
		"spec":{"namespace":"team-a","role":"developer","expires":"2026-03-01T00:00:00Z","secretHash":"sha256:9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08","disabled":false}}`
)

func TestHumanBytes(t *testing.T) {
	for n, want := range map[int64]string{0: "0", 1023: "1023", 1024: "1Ki", 1536: "1.5Ki", 50 << 30: "50Gi", 45634027520: "42.5Gi", 3 << 50: "3Pi", 5 << 60: "5120Pi"} {
		if got := humanBytes(n); got != want {
			t.Errorf("humanBytes(%d) = %q, want %q", n, got, want)
		}
	}
}

func TestPrintAuthKinds(t *testing.T) {
	tests := []struct {
		name, doc, output string
		want              string
	}{
		{"namespace table", nsJSON, "", "NAME     PUBLIC   USAGE   QUOTA   MEMBERS   GENERATION   AGE\nteam-a   false    -       50Gi    2         3            2h\n"},
		{"namespace table with usage", nsUsageJSON, "", "NAME     PUBLIC   USAGE          QUOTA   MEMBERS   GENERATION   AGE\nteam-a   false    42.5Gi (85%)   50Gi    2         3            2h\n"},
		{"namespace wide", nsJSON, "wide", "MEMBER-LIST"},
		{"user table", userJSON, "", "NAME    CLUSTER-ADMIN   DISABLED   GENERATION   AGE\nalice   true            false      1            2h\n"},
		{"robot table", robotJSON, "", "NAME        NAMESPACE   ROLE        EXPIRES                          DISABLED   AGE\nci-team-a   team-a      developer   2026-03-01T00:00:00Z (expired)   false      2h\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := render(t, func(b *bytes.Buffer) error { return printList(b, docs(t, tt.doc), tt.output, now) })
			if !strings.Contains(got, tt.want) {
				t.Errorf("got:\n%s\nwant:\n%s", got, tt.want)
			}
			if strings.Contains(got, "$2a$") || strings.Contains(got, "sha256:") {
				t.Errorf("a hash is shown:\n%s", got)
			}
		})
	}
	got := render(t, func(b *bytes.Buffer) error { return printOne(b, docs(t, nsJSON)[0], "", now) })
	if !strings.Contains(got, "Members:     user:alice=admin, robot:ci-team-a=developer") || !strings.Contains(got, "Quota:       50Gi") {
		t.Errorf("namespace details:\n%s", got)
	}
	got = render(t, func(b *bytes.Buffer) error { return printOne(b, docs(t, nsUsageJSON)[0], "", now) })
	if !strings.Contains(got, "Usage:       42.5Gi (85%) (45634027520 bytes)") {
		t.Errorf("namespace details with usage:\n%s", got)
	}
	got = render(t, func(b *bytes.Buffer) error { return printOne(b, docs(t, robotJSON)[0], "", now) })
	if !strings.Contains(got, "Role:") || strings.Contains(got, "sha256:") {
		t.Errorf("robot details:\n%s", got)
	}
}
