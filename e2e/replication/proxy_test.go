package replication

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/berth-registry/berth/e2e/harness"
)

func craneDigest(t *testing.T, ref string) string {
	t.Helper()
	return strings.TrimSpace(harness.Run(t, nil, harness.Tool(t, "crane"), "digest", "--insecure", ref))
}

const proxyYAML = `apiVersion: berth.dev/v1
kind: Registry
metadata: {name: hub}
spec:
  type: distribution
  url: http://%s
  insecure: true
  credentials: {type: basic, secretRef: {name: hub-creds}}
---
apiVersion: berth.dev/v1
kind: ReplicationPolicy
metadata: {name: hub-cache}
spec:
  mode: proxy
  registry: hub
  repositories: ["library/**"]
  prefix: {add: hub/}
  ttl: 2s
`

// A Berth single node caches a CNCF Distribution upstream that wants
// htpasswd credentials (given by secretRef): crane pulls through Berth
// with the upstream's digests, concurrent pulls fetch once, the cached
// image still pulls with the upstream stopped, a retagged upstream image
// is served with its new digest after the TTL, and pushes to Berth's other
// repositories still work.
func TestProxyPullThrough(t *testing.T) {
	const user, password = "puller", "upstream-secret-7f3a"
	up := harness.StartDistributionWithAuth(t, t.TempDir(), user, password)
	dir := t.TempDir()
	v1 := up.Push(t, dir, "library/alpine:3", "alpine three")
	other := up.Push(t, dir, "library/busybox:1", "busybox one")

	data := t.TempDir()
	secret := filepath.Join(data, "secrets", "hub-creds")
	if err := os.MkdirAll(secret, 0o700); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(secret, "username"), []byte(user+"\n"), 0o600)
	os.WriteFile(filepath.Join(secret, "password"), []byte(password+"\n"), 0o600)
	b := start(t, "berth", fmt.Sprintf("127.0.0.1:%d", harness.FreePort(t)), data, nil)
	b.applyYAML(t, fmt.Sprintf(proxyYAML, up.Addr))
	// The policy shows in the status, serving; one naming a Registry that
	// does not exist shows why it cannot.
	b.applyYAML(t, "apiVersion: berth.dev/v1\nkind: ReplicationPolicy\nmetadata: {name: orphan-cache}\nspec: {mode: proxy, registry: nowhere, prefix: {add: orphan/}}\n")
	st := b.ctl(t, "replication", "status")
	for _, want := range []string{"PROXY POLICY", "hub-cache", "serving", "2s", "orphan-cache", `orphan-cache: last error: no such resource: Registry "nowhere" does not exist`} {
		if !strings.Contains(st, want) {
			t.Errorf("replication status lacks %q:\n%s", want, st)
		}
	}

	// First pull: fetched, verified, stored and committed, then served;
	// crane pull checks every blob against its digest.
	if got := craneDigest(t, b.addr+"/hub/library/alpine:3"); got != v1 {
		t.Fatalf("digest through Berth %s, upstream %s", got, v1)
	}
	harness.Run(t, nil, harness.Tool(t, "crane"), "pull", "--insecure", b.addr+"/hub/library/alpine:3", filepath.Join(dir, "alpine.tar"))
	harness.Run(t, nil, harness.Tool(t, "crane"), "validate", "--insecure", "--remote", b.addr+"/hub/library/alpine:3")
	// It is ordinary content now: listed like a push.
	if tags := harness.Run(t, nil, harness.Tool(t, "crane"), "ls", "--insecure", b.addr+"/hub/library/alpine"); strings.TrimSpace(tags) != "3" {
		t.Errorf("cached tags: %q, want 3", tags)
	}

	// Concurrent pulls of something not cached yet fetch it once.
	var wg sync.WaitGroup
	digests := make([]string, 8)
	for i := range digests {
		wg.Go(func() {
			out, err := runCmd(harness.Tool(t, "crane"), "digest", "--insecure", b.addr+"/hub/library/busybox:1")
			if err != nil {
				digests[i] = "error: " + out
				return
			}
			digests[i] = strings.TrimSpace(out)
		})
	}
	wg.Wait()
	for i, d := range digests {
		if d != other {
			t.Errorf("concurrent pull %d: %s, want %s", i, d, other)
		}
	}
	if n := strings.Count(b.p.Out.String(), "repo=hub/library/busybox ref=1"); n != 1 {
		t.Errorf("busybox:1 was fetched from the upstream %d times, want once", n)
	}

	// Something the upstream does not have is unknown, not an error.
	ctx, cancel := harness.Ctx(30 * time.Second)
	defer cancel()
	if code, err := harness.ManifestStatus(ctx, "http://"+b.addr, "hub/library/alpine", "nope"); err != nil || code != http.StatusNotFound {
		t.Errorf("manifest missing upstream: %d %v, want 404", code, err)
	}

	// The upstream stops: past the TTL the revalidation fails and the
	// cached copy is served.
	up.P.Stop(t)
	time.Sleep(2500 * time.Millisecond)
	if got := craneDigest(t, b.addr+"/hub/library/alpine:3"); got != v1 {
		t.Errorf("with the upstream stopped: %s, want the cached %s", got, v1)
	}
	harness.Run(t, nil, harness.Tool(t, "crane"), "pull", "--insecure", b.addr+"/hub/library/alpine:3", filepath.Join(dir, "alpine-offline.tar"))
	// Not cached and the upstream down: 503, never a 500.
	code, err := harness.ManifestStatus(ctx, "http://"+b.addr, "hub/library/alpine", "never-pulled")
	if err != nil || code != http.StatusServiceUnavailable {
		t.Errorf("uncached with the upstream down: %d %v, want 503", code, err)
	}

	// The upstream comes back and the tag moves there: after the TTL,
	// Berth serves the new digest.
	up.Start(t)
	v2 := up.Push(t, dir, "library/alpine:3", "alpine three, patched")
	if v2 == v1 {
		t.Fatal("the retagged image has the old digest")
	}
	harness.WaitFor(t, "the moved tag to be served", 30*time.Second, func() error {
		if got := craneDigest(t, b.addr+"/hub/library/alpine:3"); got != v2 {
			return fmt.Errorf("served %s, upstream now %s", got, v2)
		}
		return nil
	})
	harness.Run(t, nil, harness.Tool(t, "crane"), "validate", "--insecure", "--remote", b.addr+"/hub/library/alpine:3")
	// The old image stays pullable by digest: it is cached content.
	if got := craneDigest(t, b.addr+"/hub/library/alpine@"+v1); got != v1 {
		t.Errorf("old digest: %s", got)
	}

	// Pushes to Berth's own repositories still work; the cache itself is
	// read-only, as its upstream's copy.
	own := pushCrane(t, dir, b.addr+"/team/app:v1", "our own")
	if got := craneDigest(t, b.addr+"/team/app:v1"); got != own {
		t.Errorf("own push: %s, want %s", got, own)
	}
	layer := filepath.Join(dir, "mine.tar")
	os.WriteFile(layer, harness.TarWithFile("f", []byte("mine")), 0o644)
	denied := harness.RunFail(t, nil, harness.Tool(t, "crane"), "append", "--insecure", "-f", layer, "-t", b.addr+"/hub/library/alpine:mine")
	if !strings.Contains(denied, "DENIED") || !strings.Contains(denied, "pull-through cache") {
		t.Errorf("push into the cache: %s", denied)
	}
	// The password never reaches the logs.
	if strings.Contains(b.p.Out.String(), password) {
		t.Error("the upstream password is in Berth's log")
	}
}

func runCmd(bin string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, bin, args...).CombinedOutput()
	return string(out), err
}

const fallbackYAML = `apiVersion: berth.dev/v1
kind: Registry
metadata: {name: origin}
spec:
  type: berth
  url: http://%s
  insecure: true
  events:
    urls: ["nats://%s"]
    stream: BERTH_EVENTS
---
apiVersion: berth.dev/v1
kind: ReplicationPolicy
metadata: {name: team-a}
spec:
  mode: mirror
  registry: origin
  repositories: ["team-a/**"]
  fallback: origin
---
apiVersion: berth.dev/v1
kind: ReplicationPolicy
metadata: {name: team-b}
spec:
  mode: mirror
  registry: origin
  repositories: ["team-b/**"]
  writable: true
`

// A mirror whose stream is not flowing (its origin's NATS is unreachable,
// so nothing replicates) answers a pull of a repository with fallback:
// origin from the origin, verified, without storing it; a repository
// without fallback stays 404; with the origin down, a pull is 503, never a
// 500 or a wrong answer. A mirror's repositories refuse pushes unless the
// policy says writable.
func TestMirrorFallbackOrigin(t *testing.T) {
	origin := start(t, "origin", fmt.Sprintf("127.0.0.1:%d", harness.FreePort(t)), t.TempDir(), nil)
	mirror := start(t, "mirror", fmt.Sprintf("127.0.0.1:%d", harness.FreePort(t)), t.TempDir(), nil)
	dir := t.TempDir()
	a := pushCrane(t, dir, origin.addr+"/team-a/app:v1", "team a")
	pushCrane(t, dir, origin.addr+"/team-b/app:v1", "team b")
	deadNATS := fmt.Sprintf("127.0.0.1:%d", harness.FreePort(t))
	mirror.applyYAML(t, fmt.Sprintf(fallbackYAML, origin.addr, deadNATS))

	// By tag, then the whole image (crane checks every blob), then by digest.
	if got := craneDigest(t, mirror.addr+"/team-a/app:v1"); got != a {
		t.Fatalf("through the fallback: %s, origin %s", got, a)
	}
	harness.Run(t, nil, harness.Tool(t, "crane"), "pull", "--insecure", mirror.addr+"/team-a/app:v1", filepath.Join(dir, "a.tar"))
	harness.Run(t, nil, harness.Tool(t, "crane"), "validate", "--insecure", "--remote", mirror.addr+"/team-a/app@"+a)

	ctx, cancel := harness.Ctx(30 * time.Second)
	defer cancel()
	for _, c := range []struct {
		what, repo, ref string
		want            int
	}{
		{"no fallback", "team-b/app", "v1", http.StatusNotFound},
		{"not at the origin either", "team-a/app", "nope", http.StatusNotFound},
	} {
		if code, err := harness.ManifestStatus(ctx, "http://"+mirror.addr, c.repo, c.ref); err != nil || code != c.want {
			t.Errorf("%s: %s:%s is %d %v, want %d", c.what, c.repo, c.ref, code, err, c.want)
		}
	}
	// Served, not stored: the mirror's content comes from the stream alone.
	var cat struct {
		Repositories []string `json:"repositories"`
	}
	getJSON(t, ctx, "http://"+mirror.addr+"/v2/_catalog", &cat)
	if len(cat.Repositories) != 0 {
		t.Errorf("the fallback stored repositories: %v", cat.Repositories)
	}
	pushCrane(t, dir, mirror.addr+"/team-b/app:local", "pushed at the mirror")
	layer := filepath.Join(dir, "local.tar")
	if err := os.WriteFile(layer, harness.TarWithFile("f", []byte("refused")), 0o644); err != nil {
		t.Fatal(err)
	}
	denied := harness.RunFail(t, nil, harness.Tool(t, "crane"), "append", "--insecure", "-f", layer, "-t", mirror.addr+"/team-a/app:local")
	if !strings.Contains(denied, "DENIED") || !strings.Contains(denied, "read-only mirror") {
		t.Errorf("a push to the read-only mirrored team-a/app: %s", denied)
	}

	origin.p.Stop(t)
	if code, err := harness.ManifestStatus(ctx, "http://"+mirror.addr, "team-a/app", "v1"); err != nil || code != http.StatusServiceUnavailable {
		t.Errorf("with the origin down: %d %v, want 503", code, err)
	}
}
