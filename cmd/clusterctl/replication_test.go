package main

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/berth-registry/berth/replication"
)

func TestPrintReplication(t *testing.T) {
	now := time.Date(2026, 11, 30, 13, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		name string
		ans  replicationAnswer
		want []string
	}{
		{"none", replicationAnswer{Leader: true}, []string{"no enabled replication policies"}},
		{"following", replicationAnswer{Leader: true, Policies: []replication.Status{{
			Policy: "follow-eu", Registry: "origin", Running: true, Cursor: 412, OriginHead: 420, LagEntries: 8, LagSeconds: 1.25,
			Bytes: 3 << 20, LastEvent: now.Add(-3 * time.Second),
		}}}, []string{"follow-eu", "origin", "following", "412", "420", "8", "1.2s", "3Mi", "3s ago"}},
		{"missing registry", replicationAnswer{Leader: true, Policies: []replication.Status{{
			Policy: "orphan", Registry: "nowhere", LastError: `no such resource: Registry "nowhere" does not exist`,
		}}}, []string{"orphan", "error", `orphan: last error: no such resource: Registry "nowhere" does not exist`}},
		{"retrying", replicationAnswer{Leader: true, Policies: []replication.Status{{
			Policy: "p", Running: true, LastError: "connect to the origin's NATS: timeout", ErrorTime: now,
		}}}, []string{"retrying", "p: last error (2026-11-30T13:00:00Z): connect to the origin's NATS: timeout"}},
		{"push job", replicationAnswer{Leader: true, Policies: []replication.Status{{
			Policy: "to-dr", Registry: "dr", Mode: "push", Running: true, Job: "manual-20261130T125900.000Z", JobState: "running",
			JobArtifacts: 31, JobBytes: 5 << 20, Artifacts: 12, Bytes: 2 << 20,
		}}}, []string{"PUSH POLICY", "to-dr", "dr", "running", "manual-20261130T125900.000Z", "31", "5MiB", "12 (2MiB)"}},
		{"push and mirror", replicationAnswer{Leader: true, Policies: []replication.Status{
			{Policy: "follow-eu", Registry: "origin", Running: true},
			{Policy: "to-dr", Registry: "dr", Mode: "push", Job: "schedule-x", JobState: "interrupted", LastError: "destination refused"},
		}}, []string{"ORIGIN HEAD", "PUSH POLICY", "interrupted", "to-dr: last error: destination refused"}},
		{"proxy", replicationAnswer{Leader: true, Policies: []replication.Status{
			{Policy: "hub-cache", Registry: "hub", Mode: "proxy", Running: true, TTL: "10m0s"},
			{Policy: "orphan-cache", Registry: "gone", Mode: "proxy", TTL: "10m0s", LastError: `no such resource: Registry "gone" does not exist`},
		}}, []string{"PROXY POLICY", "hub-cache", "serving", "10m0s", "orphan-cache", "error", `orphan-cache: last error: no such resource: Registry "gone"`}},
		{"no leader", replicationAnswer{Policies: []replication.Status{{Policy: "p", Cursor: 7}}}, []string{"unknown", "lag is unknown"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var b bytes.Buffer
			printReplication(&b, tc.ans, now)
			for _, w := range tc.want {
				if !strings.Contains(b.String(), w) {
					t.Errorf("output lacks %q:\n%s", w, b.String())
				}
			}
		})
	}
}
