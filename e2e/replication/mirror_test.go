// Package replication runs two independent Berth deployments on one
// machine, each with its own data and NATS: an origin, and a mirror that
// follows the origin's event stream (issue 12, mirror mode).
package replication

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/berth-registry/berth/e2e/harness"
)

// node is one single-node registryd.
type node struct {
	addr, data string
	env        []string
	p          *harness.Proc
}

func start(t *testing.T, name, addr, data string, env []string) *node {
	t.Helper()
	n := &node{addr: addr, data: data, env: env}
	n.p = harness.StartProc(t, name, harness.Tool(t, "registryd"), []string{"serve", "--addr", addr, "--data-dir", data}, env)
	harness.WaitFor(t, name+" ready", 60*time.Second, func() error {
		if n.p.Exited() {
			t.Fatalf("%s exited: %v\n%s", name, n.p.Err, harness.Tail(n.p.Out.String(), 4000))
		}
		return harness.GetOK("http://" + addr + "/readyz")
	})
	return n
}

func (n *node) ctl(t *testing.T, args ...string) string {
	t.Helper()
	return harness.Run(t, []string{"BERTH_SERVER=http://" + n.addr, "BERTH_TOKEN="}, harness.Tool(t, "clusterctl"),
		append([]string{"--token-file", filepath.Join(n.data, "admin.token")}, args...)...)
}

func (n *node) applyYAML(t *testing.T, doc string) string {
	t.Helper()
	return harness.RunInput(t, []string{"BERTH_SERVER=http://" + n.addr, "BERTH_TOKEN="}, doc, harness.Tool(t, "clusterctl"),
		"--token-file", filepath.Join(n.data, "admin.token"), "apply", "-f", "-")
}

// status reads `clusterctl replication status -o json`.
func (n *node) status(t *testing.T) replicationAnswer {
	t.Helper()
	var ans replicationAnswer
	out := n.ctl(t, "replication", "status", "-o", "json")
	if err := json.Unmarshal([]byte(out), &ans); err != nil {
		t.Fatalf("replication status: %v\n%s", err, out)
	}
	return ans
}

type replicationAnswer struct {
	Leader   bool `json:"leader"`
	Policies []struct {
		Policy     string  `json:"policy"`
		Running    bool    `json:"running"`
		Cursor     uint64  `json:"cursor"`
		OriginHead uint64  `json:"originHead"`
		LagEntries uint64  `json:"lagEntries"`
		LagSeconds float64 `json:"lagSeconds"`
		Bytes      int64   `json:"bytesCopied"`
		LastError  string  `json:"lastError"`
	} `json:"policies"`
}

// listing is every repository's tags and the digest each points at.
func listing(t *testing.T, addr string) map[string]string {
	t.Helper()
	ctx, cancel := harness.Ctx(30 * time.Second)
	defer cancel()
	out := map[string]string{}
	var cat struct {
		Repositories []string `json:"repositories"`
	}
	getJSON(t, ctx, "http://"+addr+"/v2/_catalog?n=10000", &cat)
	for _, repo := range cat.Repositories {
		var tl struct {
			Tags []string `json:"tags"`
		}
		getJSON(t, ctx, "http://"+addr+"/v2/"+repo+"/tags/list?n=10000", &tl)
		for _, tag := range tl.Tags {
			code, hdr, _, err := harness.HTTPStatus(ctx, http.MethodHead, "http://"+addr+"/v2/"+repo+"/manifests/"+tag,
				map[string]string{"Accept": "application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json, application/vnd.oci.image.index.v1+json"}, nil)
			if err != nil || code != http.StatusOK {
				t.Fatalf("HEAD %s:%s on %s: %d %v", repo, tag, addr, code, err)
			}
			out[repo+":"+tag] = hdr.Get("Docker-Content-Digest")
		}
	}
	return out
}

func getJSON(t *testing.T, ctx context.Context, url string, v any) {
	t.Helper()
	code, _, body, err := harness.HTTPStatus(ctx, http.MethodGet, url, nil, nil)
	if err != nil || code != http.StatusOK {
		t.Fatalf("GET %s: %d %v %s", url, code, err, body)
	}
	if err := json.Unmarshal(body, v); err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
}

func diff(origin, mirror map[string]string) string {
	var out []string
	for k, d := range origin {
		if m, ok := mirror[k]; !ok {
			out = append(out, "missing "+k)
		} else if m != d {
			out = append(out, fmt.Sprintf("%s is %s, origin %s", k, m, d))
		}
	}
	for k := range mirror {
		if _, ok := origin[k]; !ok {
			out = append(out, "extra "+k)
		}
	}
	slices.Sort(out)
	return strings.Join(out, "\n")
}

// pushCrane pushes a one-file image with crane and returns its digest.
func pushCrane(t *testing.T, dir, ref, content string) string {
	t.Helper()
	layer := filepath.Join(dir, strings.NewReplacer("/", "_", ":", "_").Replace(ref)+".tar")
	if err := os.WriteFile(layer, harness.TarWithFile("f", []byte(content)), 0o644); err != nil {
		t.Fatal(err)
	}
	out := harness.Run(t, nil, harness.Tool(t, "crane"), "append", "--insecure", "-f", layer, "-t", ref)
	d := strings.TrimSpace(out[strings.LastIndex(out, "@")+1:])
	if !strings.HasPrefix(d, "sha256:") {
		t.Fatalf("crane append printed %q", out)
	}
	return d
}

const policyYAML = `apiVersion: berth.dev/v1
kind: Registry
metadata: {name: origin}
spec:
  type: berth
  url: http://%s
  insecure: true
  events:
    urls: ["nats://%s"]
    stream: BERTH_EVENTS
    credentials: {type: token, secretRef: {name: origin-nats, key: token}}
---
apiVersion: berth.dev/v1
kind: ReplicationPolicy
metadata: {name: follow-eu}
spec:
  mode: mirror
  registry: origin
  repositories: ["**", "!private/**"]
  deletion: true
`

// An origin single node serves its embedded NATS (token) to a mirror
// single node. 50 crane pushes at the origin, the mirror killed -9 in the
// middle of them and restarted: afterwards every image pulls from the
// mirror with the origin's digest, the mirror's tags equal the origin's
// exactly, deletes propagate, and the mirror refuses pushes to what it
// mirrors.
func TestMirrorFollowsOrigin(t *testing.T) {
	const token = "origin-nats-token-for-mirrors"
	natsAddr := fmt.Sprintf("127.0.0.1:%d", harness.FreePort(t))
	origin := start(t, "origin", fmt.Sprintf("127.0.0.1:%d", harness.FreePort(t)), t.TempDir(),
		[]string{"BERTH_EVENTS_NATS_LISTEN=" + natsAddr, "BERTH_EVENTS_NATS_TOKEN=" + token})
	mirrorData := t.TempDir()
	secret := filepath.Join(mirrorData, "secrets", "origin-nats")
	if err := os.MkdirAll(secret, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(secret, "token"), []byte(token+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	mirrorAddr := fmt.Sprintf("127.0.0.1:%d", harness.FreePort(t))
	mirror := start(t, "mirror", mirrorAddr, mirrorData, nil)
	dir := t.TempDir()

	// Some content exists before the mirror subscribes: the initial sync
	// copies it, the excluded repository stays out.
	pushCrane(t, dir, origin.addr+"/team-a/base:v0", "before the mirror")
	pushCrane(t, dir, origin.addr+"/private/secret:v0", "not mirrored")

	// Bad input first: a policy naming a Registry that does not exist is
	// accepted (apply order is free) and reported by replication status.
	mirror.applyYAML(t, "apiVersion: berth.dev/v1\nkind: ReplicationPolicy\nmetadata: {name: orphan}\nspec: {mode: mirror, registry: nowhere}\n")
	out := mirror.ctl(t, "replication", "status", "orphan")
	if !strings.Contains(out, `Registry "nowhere" does not exist`) {
		t.Errorf("status of a policy with a missing Registry:\n%s", out)
	}
	mirror.ctl(t, "delete", "replicationpolicy", "orphan")

	mirror.applyYAML(t, fmt.Sprintf(policyYAML, origin.addr, natsAddr))
	harness.WaitFor(t, "the initial sync", 60*time.Second, func() error {
		if d := diff(map[string]string{"team-a/base:v0": listing(t, origin.addr)["team-a/base:v0"]}, listing(t, mirror.addr)); d != "" {
			return fmt.Errorf("%s", d)
		}
		return nil
	})

	// 50 pushes over five repositories; the mirror dies with SIGKILL
	// after 20 and comes back after 35.
	want := map[string]string{}
	var mu sync.Mutex
	for i := range 50 {
		ref := fmt.Sprintf("%s/team-a/app-%d:t%d", origin.addr, i%5, i)
		d := pushCrane(t, dir, ref, fmt.Sprintf("image %d", i))
		mu.Lock()
		want[fmt.Sprintf("team-a/app-%d:t%d", i%5, i)] = d
		mu.Unlock()
		switch i {
		case 20:
			mirror.p.Kill()
		case 35:
			mirror = start(t, "mirror-restarted", mirrorAddr, mirrorData, nil)
		}
	}
	// A tag moves, a tag goes, a manifest goes: with deletion: true the
	// mirror follows.
	harness.Run(t, nil, harness.Tool(t, "crane"), "tag", "--insecure", origin.addr+"/team-a/app-0:t0", "latest")
	harness.Run(t, nil, harness.Tool(t, "crane"), "delete", "--insecure", origin.addr+"/team-a/app-1:t1")
	harness.Run(t, nil, harness.Tool(t, "crane"), "delete", "--insecure", origin.addr+"/team-a/app-2@"+want["team-a/app-2:t2"])

	harness.WaitFor(t, "the mirror to hold exactly the origin's tags", 90*time.Second, func() error {
		o := listing(t, origin.addr)
		for k := range o {
			if strings.HasPrefix(k, "private/") {
				delete(o, k)
			}
		}
		if d := diff(o, listing(t, mirror.addr)); d != "" {
			return fmt.Errorf("mirror differs from origin:\n%s", d)
		}
		return nil
	})
	// The restarted mirror resumed from its committed cursor; it did not
	// start over with a full listing.
	if out := mirror.p.Out.String(); strings.Contains(out, "initial sync") || !strings.Contains(out, "mirror following the origin") {
		t.Errorf("the restarted mirror did not resume from its cursor:\n%s", harness.Tail(out, 3000))
	}
	got := listing(t, mirror.addr)
	for k, d := range want {
		if k == "team-a/app-1:t1" || k == "team-a/app-2:t2" {
			if _, ok := got[k]; ok {
				t.Errorf("%s was deleted at the origin but is still on the mirror", k)
			}
			continue
		}
		if got[k] != d {
			t.Errorf("%s on the mirror is %q, pushed %s", k, got[k], d)
		}
	}
	if _, ok := got["private/secret:v0"]; ok {
		t.Error("an excluded repository was mirrored")
	}
	if got["team-a/app-0:latest"] != want["team-a/app-0:t0"] {
		t.Errorf("latest on the mirror is %q, want %s", got["team-a/app-0:latest"], want["team-a/app-0:t0"])
	}
	// Every image pulls whole from the mirror: crane checks every blob
	// against its digest.
	for k := range want {
		if k == "team-a/app-1:t1" || k == "team-a/app-2:t2" {
			continue
		}
		harness.Run(t, nil, harness.Tool(t, "crane"), "validate", "--insecure", "--remote", mirror.addr+"/"+k)
	}

	// The mirror is read-only where it mirrors, writable elsewhere.
	layer := filepath.Join(dir, "local.tar")
	os.WriteFile(layer, harness.TarWithFile("f", []byte("local")), 0o644)
	denied := harness.RunFail(t, nil, harness.Tool(t, "crane"), "append", "--insecure", "-f", layer, "-t", mirror.addr+"/team-a/app-0:mine")
	if !strings.Contains(denied, "DENIED") || !strings.Contains(denied, `ReplicationPolicy "follow-eu"`) {
		t.Errorf("push to a mirrored repository: %s", denied)
	}
	harness.Run(t, nil, harness.Tool(t, "crane"), "append", "--insecure", "-f", layer, "-t", mirror.addr+"/private/local:v1")

	// Status: caught up, nothing failing, bytes counted since the restart.
	harness.WaitFor(t, "status to show the mirror caught up", 30*time.Second, func() error {
		ans := mirror.status(t)
		if len(ans.Policies) != 1 {
			return fmt.Errorf("policies: %+v", ans.Policies)
		}
		p := ans.Policies[0]
		if !ans.Leader || !p.Running || p.LastError != "" || p.LagEntries != 0 || p.Cursor < p.OriginHead || p.Bytes == 0 {
			return fmt.Errorf("status: %+v", ans)
		}
		return nil
	})
	text := mirror.ctl(t, "replication", "status")
	if !strings.Contains(text, "follow-eu") || !strings.Contains(text, "following") {
		t.Errorf("replication status:\n%s", text)
	}
	// The same numbers as metrics.
	ctx, cancel := harness.Ctx(10 * time.Second)
	defer cancel()
	tok, _ := os.ReadFile(filepath.Join(mirrorData, "admin.token"))
	_, _, body, err := harness.HTTPStatus(ctx, http.MethodGet, "http://"+mirror.addr+"/metrics", map[string]string{"Authorization": "Bearer " + strings.TrimSpace(string(tok))}, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range []string{`berth_replication_cursor_index{policy="follow-eu"}`, `berth_replication_lag_entries{policy="follow-eu"} 0`, `berth_replication_running{policy="follow-eu"} 1`} {
		if !strings.Contains(string(body), m) {
			t.Errorf("metrics lack %s", m)
		}
	}
}
