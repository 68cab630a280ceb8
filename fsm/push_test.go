package fsm

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/berth-registry/berth/events"
)

func TestPushJobProgress(t *testing.T) {
	rep := func(kind, job, repo, d string) events.ReplicationReported {
		return events.ReplicationReported{Policy: "to-dr", Mode: "push", Kind: kind, Job: job, Repo: repo, Digest: d, Bytes: 10}
	}
	tests := []struct {
		name      string
		reports   []events.ReplicationReported
		job       string
		done      bool
		artifacts int
		copied    []string // repo@digest the open job has
		notCopied []string
	}{
		{"started", []events.ReplicationReported{rep("started", "j1", "", "")}, "j1", false, 0, nil, []string{"a@sha256:1"}},
		{"copied twice counts once", []events.ReplicationReported{
			rep("started", "j1", "", ""), rep("artifact.copied", "j1", "a", "sha256:1"),
			rep("artifact.copied", "j1", "a", "sha256:1"), rep("artifact.copied", "j1", "b", "sha256:2"),
		}, "j1", false, 2, []string{"a@sha256:1", "b@sha256:2"}, []string{"a@sha256:2"}},
		{"caught up drops the rows", []events.ReplicationReported{
			rep("started", "j1", "", ""), rep("artifact.copied", "j1", "a", "sha256:1"), rep("caught-up", "j1", "", ""),
		}, "j1", true, 1, nil, []string{"a@sha256:1"}},
		{"a new job replaces the old", []events.ReplicationReported{
			rep("started", "j1", "", ""), rep("artifact.copied", "j1", "a", "sha256:1"),
			rep("started", "j2", "", ""), rep("artifact.copied", "j1", "b", "sha256:2"),
		}, "j2", false, 0, nil, []string{"a@sha256:1", "b@sha256:2"}},
		{"event-driven reports keep nothing", []events.ReplicationReported{rep("artifact.copied", "", "a", "sha256:1")}, "", false, 0, nil, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t)
			h.seed()
			for _, r := range tt.reports {
				h.must(r)
			}
			v := h.f.View()
			j, ok := v.PushJob("to-dr")
			if tt.job == "" {
				if ok {
					t.Fatalf("job %+v, want none", j)
				}
				return
			}
			if !ok || j.Job != tt.job || j.Done != tt.done || j.Artifacts != tt.artifacts {
				t.Fatalf("job = %+v, want %s done=%v artifacts=%d", j, tt.job, tt.done, tt.artifacts)
			}
			for _, c := range tt.copied {
				repo, d, _ := strings.Cut(c, "@")
				if !v.PushCopied("to-dr", j.Job, repo, d) {
					t.Errorf("%s not reported copied", c)
				}
			}
			for _, c := range tt.notCopied {
				repo, d, _ := strings.Cut(c, "@")
				if v.PushCopied("to-dr", j.Job, repo, d) {
					t.Errorf("%s reported copied", c)
				}
			}
		})
	}
}

func TestPushJobSnapshot(t *testing.T) {
	h := newHarness(t)
	h.seed()
	h.must(events.ReplicationReported{Policy: "to-dr", Mode: "push", Kind: "started", Job: "manual-1"})
	h.must(events.ReplicationReported{Policy: "to-dr", Mode: "push", Kind: "artifact.copied", Job: "manual-1", Repo: "app", Digest: "sha256:1"})
	snap := h.snapshot()
	h2 := newHarness(t)
	if err := h2.f.Restore(io.NopCloser(bytes.NewReader(snap))); err != nil {
		t.Fatal(err)
	}
	if !h2.f.View().PushCopied("to-dr", "manual-1", "app", "sha256:1") {
		t.Error("the restored state lost the copied artifact")
	}
	if !bytes.Equal(h2.snapshot(), snap) {
		t.Error("a restored state snapshots differently")
	}
	// A copied row of a job that is not open is refused.
	bad := reseal(bytes.Replace(snap, []byte(`"Job":"manual-1","Repo"`), []byte(`"Job":"manual-2","Repo"`), 1))
	if err := newHarness(t).f.Restore(io.NopCloser(bytes.NewReader(bad))); err == nil || !strings.Contains(err.Error(), "no such open job") {
		t.Errorf("a copied row without its job: %v, want refused", err)
	}
}

func TestPushReportRefusals(t *testing.T) {
	tests := []struct {
		name    string
		rep     events.ReplicationReported
		refused bool
	}{
		{"job name too long", events.ReplicationReported{Policy: "p", Mode: "push", Kind: "started", Job: strings.Repeat("j", 129)}, true},
		{"copied without an artifact", events.ReplicationReported{Policy: "p", Mode: "push", Kind: "artifact.copied", Job: "j"}, true},
		{"policy name too long", events.ReplicationReported{Policy: strings.Repeat("p", 64), Mode: "push", Kind: "started", Job: "j"}, true},
		{"a mirror's report is only published", events.ReplicationReported{Policy: "m", Mode: "mirror", Kind: "failed", Error: strings.Repeat("e", 10000)}, false},
		{"a long error is cut", events.ReplicationReported{Policy: "p", Mode: "push", Kind: "started", Job: "j", Error: strings.Repeat("e", 10000)}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t)
			h.seed()
			if tt.rep.Kind != "started" {
				h.must(events.ReplicationReported{Policy: tt.rep.Policy, Mode: "push", Kind: "started", Job: tt.rep.Job})
			}
			err := h.apply(tt.rep)
			var r *Refusal
			if refused := errors.As(err, &r) && r.Code == CodeInvalid; refused != tt.refused {
				t.Errorf("apply: %v, want refused %v", err, tt.refused)
			}
		})
	}
}
