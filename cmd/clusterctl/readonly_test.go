package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/berth-registry/berth/events"
	"github.com/berth-registry/berth/fsm"
)

// clusterctl readonly on/status/off against the real admin API over a real
// FSM: the mode refuses a registry write with the reason and who set it,
// resources still apply, and off lets writes in again.
func TestReadOnlyCommands(t *testing.T) {
	c, n := newCLIWithNode(t)
	if out := c.ok("", "readonly", "status"); out != "read-write (read-only mode was never turned on)\n" {
		t.Errorf("status before: %q", out)
	}
	n.Propose(context.Background(), events.BlobLinked{Repo: "app", Digest: digest.FromString("layer"), Size: 5})

	on := c.ok("", "readonly", "on", "--reason", "copying the bucket")
	if !regexp.MustCompile(`^read-only: set by admin at \S+Z \(index 2\): copying the bucket\n$`).MatchString(on) {
		t.Errorf("readonly on printed %q", on)
	}
	if out := c.ok("", "readonly", "status"); out != on {
		t.Errorf("status %q, want what on printed, %q", out, on)
	}
	if out := c.ok("", "readonly", "status", "-o", "json"); !strings.Contains(out, `"on": true`) || !strings.Contains(out, `"actor": "admin"`) {
		t.Errorf("status -o json: %s", out)
	}

	_, err := n.Propose(context.Background(), events.BlobUnlinked{Repo: "app", Digest: digest.FromString("layer")})
	var r *fsm.Refusal
	if !errors.As(err, &r) || r.Code != fsm.CodeReadOnly ||
		!strings.Contains(r.Message, "set by admin") || !strings.Contains(r.Message, "copying the bucket") || !strings.Contains(r.Message, "clusterctl readonly off") {
		t.Fatalf("a write while read-only: %v", err)
	}
	if out := c.ok(regs, "apply", "-f", "-"); !strings.Contains(out, "registry/hub created") {
		t.Errorf("apply while read-only: %q", out)
	}

	if out := c.ok("", "readonly", "off"); !regexp.MustCompile(`^read-write: lifted by admin at \S+Z \(index 5\)\n$`).MatchString(out) {
		t.Errorf("readonly off printed %q", out)
	}
	if _, err := n.Propose(context.Background(), events.BlobUnlinked{Repo: "app", Digest: digest.FromString("layer")}); err != nil {
		t.Errorf("a write after off: %v", err)
	}
	if out := c.ok("", "readonly", "off"); !strings.Contains(out, "(index 5)") {
		t.Errorf("a second off changed the mode: %q", out)
	}
}

func TestReadOnlyBadRequests(t *testing.T) {
	c, n := newCLIWithNode(t)
	c.fails("", "control character", "readonly", "on", "--reason", "two\nlines")
	c.fails("", "at most 256", "readonly", "on", "--reason", strings.Repeat("r", 300))
	c.fails("", "unknown command", "readonly", "maybe")
	for _, tc := range []struct{ body, want string }{
		{``, `body must be {"on"`},
		{`{}`, `body must be {"on"`},
		{`{"enabled": true}`, `unknown field "enabled"`},
		{`{"on": "yes"}`, `body must be {"on"`},
		{`{"on": false, "reason": "done"}`, "send no reason with on: false"},
	} {
		code, body := c.post("/admin/v1/readonly", tc.body)
		if code != http.StatusBadRequest || !strings.Contains(body, tc.want) {
			t.Errorf("POST %s: %d %s, want 400 mentioning %q", tc.body, code, body, tc.want)
		}
	}
	if n.f.View().ReadOnly().On {
		t.Error("a refused request turned read-only mode on")
	}
}

// post sends body to the admin API with the token, as clusterctl would,
// and returns the status and the error message (or the raw answer).
func (c *cli) post(path, body string) (int, string) {
	c.t.Helper()
	req, err := http.NewRequest("POST", c.env["BERTH_SERVER"]+path, strings.NewReader(body))
	if err != nil {
		c.t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+c.env["BERTH_TOKEN"])
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		c.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var e struct{ Error string }
	if json.Unmarshal(b, &e) == nil && e.Error != "" {
		return resp.StatusCode, e.Error
	}
	return resp.StatusCode, string(b)
}

// clusterctl status shows the mode, and which nodes applied it.
func TestStatusShowsReadOnly(t *testing.T) {
	since := time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)
	var buf bytes.Buffer
	printStatus(&buf, clusterStatus{
		Leader:   "n1",
		Nodes:    []nodeStatus{{ID: "n1", State: "Leader", ReadOnly: true}, {ID: "n2", State: "Follower"}},
		ReadOnly: &readOnlyState{On: true, Reason: "bucket copy", Actor: "admin", Since: since, Index: 42},
	})
	out := buf.String()
	for _, want := range []string{
		"Mode:   read-only: set by admin at 2026-11-30T12:00:00Z (index 42): bucket copy\n",
		"n1     Leader (read-only)",
		"n2     Follower ",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("status lacks %q:\n%s", want, out)
		}
	}
	buf.Reset()
	printGCStatus(&buf, gcStatusAnswer{Paused: "garbage collection is paused: registry is in read-only mode"})
	if !strings.HasPrefix(buf.String(), "garbage collection is paused: registry is in read-only mode\n") {
		t.Errorf("gc status: %q", buf.String())
	}
}

// An unreachable node's term and indexes are unknown: "-", not 0.
func TestStatusUnreachableNode(t *testing.T) {
	var buf bytes.Buffer
	printStatus(&buf, clusterStatus{
		Leader: "n1",
		Nodes: []nodeStatus{
			{ID: "n1", State: "Leader", Term: 3, CommitIndex: 40, AppliedIndex: 40},
			{ID: "n2", State: "unreachable", Error: "dial tcp: connection refused"},
		},
	})
	var row string
	for _, l := range strings.Split(buf.String(), "\n") {
		if strings.HasPrefix(l, "n2 ") {
			row = l
		}
	}
	if f := strings.Fields(row); len(f) < 6 || f[1] != "unreachable" || f[2] != "-" || f[3] != "-" || f[4] != "-" || f[5] != "-" {
		t.Errorf("unreachable row %q: want state unreachable and - for term, commit, applied and lag\n%s", row, buf.String())
	}
}
