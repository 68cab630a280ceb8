package replication

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/berth-registry/berth/e2e/harness"
)

// Bad mirror policies on a single node: what `clusterctl apply` refuses it
// refuses with the field path and line of every problem, and stores
// nothing; what it cannot know at apply (the Registry is missing or not a
// Berth origin, the origin is unreachable or has no such stream) `clusterctl
// replication status` says, while the node stays ready and logs the
// failure once rather than per retry.
func TestMirrorBadInput(t *testing.T) {
	const token = "bad-input-nats-token"
	data := t.TempDir()
	secret := filepath.Join(data, "secrets", "origin-nats")
	if err := os.MkdirAll(secret, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(secret, "token"), []byte(token), 0o600); err != nil {
		t.Fatal(err)
	}
	mirror := start(t, "mirror", fmt.Sprintf("127.0.0.1:%d", harness.FreePort(t)), data, nil)
	// An origin whose NATS answers but has no such stream.
	natsAddr := fmt.Sprintf("127.0.0.1:%d", harness.FreePort(t))
	origin := start(t, "origin", fmt.Sprintf("127.0.0.1:%d", harness.FreePort(t)), t.TempDir(),
		[]string{"BERTH_EVENTS_NATS_LISTEN=" + natsAddr, "BERTH_EVENTS_NATS_TOKEN=" + token})
	closed := fmt.Sprintf("127.0.0.1:%d", harness.FreePort(t)) // nothing listens

	policy := func(name, spec string) string {
		return fmt.Sprintf("apiVersion: berth.dev/v1\nkind: ReplicationPolicy\nmetadata: {name: %s}\nspec:\n%s", name, spec)
	}
	registry := func(name, spec string) string {
		return fmt.Sprintf("apiVersion: berth.dev/v1\nkind: Registry\nmetadata: {name: %s}\nspec:\n%s---\n", name, spec)
	}
	cases := []struct {
		name    string
		doc     string
		refused []string // substrings of apply's error; nil: applied
		status  string   // substring of the policy's status when applied
	}{
		{"invalid repository glob", policy("bad-glob", "  mode: mirror\n  registry: origin\n  repositories: [\"team/[\"]\n"),
			[]string{`spec.repositories[0]: "team/[" is not a valid glob`, "(line 7)"}, ""},
		{"invalid tag glob", policy("bad-tag", "  mode: mirror\n  registry: origin\n  tags: {include: [\"v{1\"], exclude: [\"[\"]}\n"),
			[]string{`spec.tags.include[0]: "v{1" is not a valid glob`, `spec.tags.exclude[0]: "[" is not a valid glob`}, ""},
		{"invalid cron", policy("bad-cron", "  mode: push\n  registry: hub\n  trigger: schedule\n  schedule: \"61 * * * *\"\n"),
			[]string{`spec.schedule: "61 * * * *" is not a cron schedule`, "(line 8)"}, ""},
		{"schedule on a mirror", policy("bad-trigger", "  mode: mirror\n  registry: origin\n  trigger: schedule\n  schedule: \"@daily\"\n"),
			[]string{"spec.trigger: a mirror follows the origin's event stream"}, ""},
		{"every problem at once", policy("bad-all", "  mode: copy\n  registry: Origin\n  bandwidth: -5\n  colour: red\n"),
			[]string{`spec.mode: "copy" is not one of mirror, push, proxy`, `spec.registry: "Origin" is not a resource name`, "spec.bandwidth: -5 is out of bounds", "spec.colour: unknown field"}, ""},
		{"missing Registry", policy("orphan", "  mode: mirror\n  registry: nowhere\n"),
			nil, `Registry "nowhere" does not exist`},
		{"Registry not a Berth origin", registry("hub", "  type: distribution\n  url: https://registry-1.docker.io\n") + policy("not-berth", "  mode: mirror\n  registry: hub\n"),
			nil, "a mirror follows a Berth origin (type: berth)"},
		{"Registry without events", registry("plain", fmt.Sprintf("  type: berth\n  url: http://%s\n  insecure: true\n", origin.addr)) + policy("no-events", "  mode: mirror\n  registry: plain\n"),
			nil, "has no spec.events"},
		{"unreachable origin", registry("away", fmt.Sprintf("  type: berth\n  url: http://%s\n  insecure: true\n  events: {urls: [\"nats://%s\"]}\n", closed, closed)) + policy("unreachable", "  mode: mirror\n  registry: away\n"),
			nil, "connect to the origin's NATS"},
		{"no such stream", registry("nostream", fmt.Sprintf("  type: berth\n  url: http://%s\n  insecure: true\n  events: {urls: [\"nats://%s\"], stream: NOPE, credentials: {type: token, secretRef: {name: origin-nats, key: token}}}\n", origin.addr, natsAddr)) + policy("wrong-stream", "  mode: mirror\n  registry: nostream\n"),
			nil, "origin stream NOPE"},
	}
	dir := t.TempDir()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			file := filepath.Join(dir, strings.ReplaceAll(tc.name, " ", "-")+".yaml")
			if err := os.WriteFile(file, []byte(tc.doc), 0o644); err != nil {
				t.Fatal(err)
			}
			name := tc.doc[strings.LastIndex(tc.doc, "metadata: {name: ")+len("metadata: {name: "):]
			name = name[:strings.Index(name, "}")]
			if tc.refused != nil {
				out := harness.RunFail(t, []string{"BERTH_SERVER=http://" + mirror.addr, "BERTH_TOKEN="}, harness.Tool(t, "clusterctl"),
					"--token-file", filepath.Join(data, "admin.token"), "apply", "-f", file)
				for _, want := range tc.refused {
					if !strings.Contains(out, want) {
						t.Errorf("apply's refusal lacks %q:\n%s", want, out)
					}
				}
				if got := mirror.ctl(t, "get", "replicationpolicies"); strings.Contains(got, name) {
					t.Errorf("a refused policy was stored:\n%s", got)
				}
				return
			}
			mirror.ctl(t, "apply", "-f", file)
			harness.WaitFor(t, "the policy's status", 30*time.Second, func() error {
				out := mirror.ctl(t, "replication", "status", name)
				if !strings.Contains(out, tc.status) {
					return fmt.Errorf("status lacks %q:\n%s", tc.status, out)
				}
				return nil
			})
		})
	}

	// Policies that cannot run retry with backoff for a while: the node
	// stays ready, and each logs its failure once, not per retry.
	time.Sleep(8 * time.Second)
	if mirror.p.Exited() {
		t.Fatalf("the mirror exited:\n%s", harness.Tail(mirror.p.Out.String(), 3000))
	}
	if err := harness.GetOK("http://" + mirror.addr + "/readyz"); err != nil {
		t.Errorf("the mirror is not ready with failing policies: %v", err)
	}
	for _, pol := range []string{"unreachable", "wrong-stream"} {
		var lines []string
		for _, l := range strings.Split(mirror.p.Out.String(), "\n") {
			if strings.Contains(l, "policy="+pol) && strings.Contains(l, "level=WARN") {
				lines = append(lines, l)
			}
		}
		if len(lines) != 1 {
			t.Errorf("policy %s logged %d warnings in 8 s of retries, want 1:\n%s", pol, len(lines), strings.Join(lines, "\n"))
		}
	}
	text := mirror.ctl(t, "replication", "status")
	for _, want := range []string{"orphan", "unreachable", "wrong-stream", "connect to the origin's NATS"} {
		if !strings.Contains(text, want) {
			t.Errorf("replication status lacks %q:\n%s", want, text)
		}
	}
}
