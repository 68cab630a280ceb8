package cluster

import (
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/berth-registry/berth/e2e/harness"
)

// jsonLogLines decodes every line a node wrote (stdout and stderr), failing
// the test on any that is not a JSON object with time, level and msg:
// Raft's and memberlist's lines included.
func jsonLogLines(t *testing.T, nd *node) []map[string]any {
	t.Helper()
	var out []map[string]any
	for i, line := range strings.Split(strings.TrimRight(nd.p.Out.String(), "\n"), "\n") {
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Errorf("%s line %d is not JSON: %q", nd.id, i+1, line)
			continue
		}
		for _, k := range []string{"time", "level", "msg"} {
			if _, ok := m[k]; !ok {
				t.Errorf("%s line %d has no %q: %s", nd.id, i+1, k, line)
			}
		}
		out = append(out, m)
	}
	return out
}

// TestJSONLogs runs a cluster with --log-format json and checks what an
// operator's log pipeline relies on: every line of every node is JSON
// with time, level and msg, including Raft's and memberlist's, no debug
// line shows at info, a push leaves access-log lines naming repository,
// reference and digest, and a dead peer's failures are not logged per
// attempt. It also waits for the cluster with `clusterctl status --wait`.
func TestJSONLogs(t *testing.T) {
	c := &cluster{t: t, dir: t.TempDir(), nodeArgs: []string{"--log-format", "json"}}
	c.minio = startMinIO(t, c.dir)
	c.startNodes("node", 3)
	ctl := harness.Tool(t, "clusterctl")
	ctlEnv := c.ctlEnv()
	server := "--server=" + c.url(c.nodes[0].api, "")
	harness.Run(t, ctlEnv, ctl, "status", server, "--wait=60s")

	// Push through a follower, so the manifest write is forwarded too.
	leader := c.leader()
	via := c.nodes[0]
	if via == leader {
		via = c.nodes[1]
	}
	im := harness.NewImage("logs/app", "v1")
	ctx, cancel := c.ctx(30 * time.Second)
	defer cancel()
	if err := im.Push(ctx, via.api); err != nil {
		t.Fatalf("push: %v", err)
	}

	// A dead peer: the survivors' Raft and gossip fail to reach it.
	var dead *node
	for _, nd := range c.nodes {
		if nd != leader && nd != via {
			dead = nd
		}
	}
	dead.p.Kill()
	// status --wait notices, and fails after its timeout with the reason.
	cmd := exec.Command(ctl, "status", server, "--wait=3s")
	cmd.Env = append(os.Environ(), ctlEnv...)
	out, err := cmd.CombinedOutput()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || !strings.Contains(string(out), dead.id+": unreachable") {
		t.Errorf("status --wait=3s with %s down: err %v, output:\n%s", dead.id, err, out)
	}
	time.Sleep(5 * time.Second) // about 20 heartbeat rounds
	c.start(dead)
	harness.Run(t, ctlEnv, ctl, "status", server, "--wait=60s")

	t.Run("every line is JSON with time, level and msg", func(t *testing.T) {
		loggers := map[string]bool{}
		for _, nd := range c.nodes {
			for _, m := range jsonLogLines(t, nd) {
				if m["level"] == "DEBUG" {
					t.Errorf("%s: a debug line at info: %v", nd.id, m)
				}
				if l, ok := m["logger"].(string); ok {
					loggers[l] = true
				}
			}
		}
		// Raft and memberlist wrote through the same handler.
		for _, l := range []string{"raft", "memberlist"} {
			if !loggers[l] {
				t.Errorf("no line from %s (loggers seen: %v)", l, loggers)
			}
		}
	})

	t.Run("a push leaves access-log lines", func(t *testing.T) {
		var manifest map[string]any
		for _, m := range jsonLogLines(t, via) {
			if m["msg"] == "request" && m["method"] == "PUT" && m["path"] == "/v2/logs/app/manifests/v1" {
				manifest = m
			}
		}
		if manifest == nil {
			t.Fatalf("no access-log line for the manifest PUT on %s:\n%s", via.id, harness.Tail(via.p.Out.String(), 4000))
		}
		want := map[string]any{"level": "INFO", "status": float64(201), "repository": "logs/app", "reference": "v1", "digest": im.ManifestDigest}
		for k, v := range want {
			if manifest[k] != v {
				t.Errorf("%s = %#v, want %#v in %v", k, manifest[k], v, manifest)
			}
		}
		for _, k := range []string{"bytes", "duration", "client", "user_agent", "request_id"} {
			if _, ok := manifest[k]; !ok {
				t.Errorf("no %s in %v", k, manifest)
			}
		}
	})

	t.Run("a dead peer's failures are not logged per attempt", func(t *testing.T) {
		for _, nd := range []*node{leader, via} {
			seen := map[string]int{}
			for _, m := range jsonLogLines(t, nd) {
				if m["level"] != "WARN" && m["level"] != "ERROR" {
					continue
				}
				// The record less what varies between attempts.
				delete(m, "time")
				delete(m, "backoff time")
				delete(m, "duration")
				b, _ := json.Marshal(m)
				seen[string(b)]++
			}
			for line, n := range seen {
				if n > 1 {
					t.Errorf("%s logged %d times within 30 s: %s", nd.id, n, line)
				}
			}
		}
	})
}
