package replication

import (
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/berth-registry/berth/e2e/harness"
)

const faultsYAML = `apiVersion: berth.dev/v1
kind: Webhook
metadata: {name: replication}
spec:
  url: %s
  events: [replication.started, replication.artifact.copied, replication.failed, replication.caught-up]
  retry: {initialBackoff: 200ms, maxBackoff: 1s}
---
apiVersion: berth.dev/v1
kind: Registry
metadata: {name: origin}
spec:
  type: berth
  url: http://%s
  insecure: true
  events:
    urls: ["nats://%s"]
    credentials: {type: token, secretRef: {name: origin-nats, key: token}}
---
apiVersion: berth.dev/v1
kind: ReplicationPolicy
metadata: {name: exact}
spec: {mode: mirror, registry: origin, repositories: ["team/**"], deletion: true}
---
apiVersion: berth.dev/v1
kind: ReplicationPolicy
metadata: {name: keep}
spec: {mode: mirror, registry: origin, repositories: ["keep/**"], deletion: false}
`

// pusher pushes images at the origin until stopped, retrying each push
// until the origin acknowledges it (the origin restarts meanwhile), and
// records what was acknowledged.
type pusher struct {
	mu    sync.Mutex
	acked map[string]string // repo:tag -> manifest digest
	n     atomic.Int64
	stop  chan struct{}
	done  chan struct{}
}

func startPusher(t *testing.T, addr string) *pusher {
	p := &pusher{acked: map[string]string{}, stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(p.done)
		for i := 0; ; i++ {
			select {
			case <-p.stop:
				return
			case <-time.After(100 * time.Millisecond):
			}
			repo := fmt.Sprintf("team/app-%d", i%3)
			if i%4 == 3 {
				repo = "keep/app"
			}
			im := harness.NewImage(repo, fmt.Sprintf("t%d", i))
			deadline := time.Now().Add(90 * time.Second)
			for {
				ctx, cancel := harness.Ctx(10 * time.Second)
				err := im.Push(ctx, addr)
				cancel()
				if err == nil {
					p.mu.Lock()
					p.acked[repo+":"+im.Tag] = im.ManifestDigest
					p.mu.Unlock()
					p.n.Add(1)
					break
				}
				if time.Now().After(deadline) {
					t.Errorf("push %s:%s never acknowledged: %v", repo, im.Tag, err)
					return
				}
				time.Sleep(200 * time.Millisecond)
			}
		}
	}()
	return p
}

func (p *pusher) finish() map[string]string {
	close(p.stop)
	<-p.done
	p.mu.Lock()
	defer p.mu.Unlock()
	out := map[string]string{}
	for k, v := range p.acked {
		out[k] = v
	}
	return out
}

func deleteAt(t *testing.T, addr, repo, ref string) {
	t.Helper()
	ctx, cancel := harness.Ctx(10 * time.Second)
	defer cancel()
	code, _, body, err := harness.HTTPStatus(ctx, http.MethodDelete, "http://"+addr+"/v2/"+repo+"/manifests/"+ref, nil, nil)
	if err != nil || code != http.StatusAccepted {
		t.Fatalf("DELETE %s/%s at the origin: %d %v %s", repo, ref, code, err, body)
	}
}

// only keeps the listing's entries under prefix.
func only(l map[string]string, prefix string) map[string]string {
	out := map[string]string{}
	for k, v := range l {
		if strings.HasPrefix(k, prefix) {
			out[k] = v
		}
	}
	return out
}

// A mirror follows an origin through a push stream while: its connection
// to the origin's NATS is cut for 30 s (a TCP proxy drops and refuses
// it; pushes go on at the origin), it is killed with SIGKILL and
// restarted, and the origin's leader (its only node) restarts. Afterwards
// the mirror holds exactly the origin's tags and digests where deletion
// is on, and the origin's tags plus those deleted at the origin where it
// is off; every acknowledged push is there. A webhook on the mirror
// receives the replication events: started, artifact.copied for what was
// copied, failed for the partition (once, not per retry), caught-up.
func TestMirrorThroughPartitionKillAndOriginRestart(t *testing.T) {
	const token = "origin-nats-token-for-mirrors"
	natsAddr := fmt.Sprintf("127.0.0.1:%d", harness.FreePort(t))
	originEnv := []string{"BERTH_EVENTS_NATS_LISTEN=" + natsAddr, "BERTH_EVENTS_NATS_TOKEN=" + token}
	originData := t.TempDir()
	origin := start(t, "origin", fmt.Sprintf("127.0.0.1:%d", harness.FreePort(t)), originData, originEnv)
	proxy := newTCPProxy(t, natsAddr)

	mirrorData := t.TempDir()
	secret := filepath.Join(mirrorData, "secrets", "origin-nats")
	if err := os.MkdirAll(secret, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(secret, "token"), []byte(token), 0o600); err != nil {
		t.Fatal(err)
	}
	mirrorAddr := fmt.Sprintf("127.0.0.1:%d", harness.FreePort(t))
	mirror := start(t, "mirror", mirrorAddr, mirrorData, nil)

	ctx, cancel := harness.Ctx(10 * time.Second)
	for _, repo := range []string{"team/base", "keep/base"} {
		if err := harness.NewImage(repo, "v0").Push(ctx, origin.addr); err != nil {
			t.Fatal(err)
		}
	}
	cancel()
	hooks := newHookReceiver(t)
	mirror.applyYAML(t, fmt.Sprintf(faultsYAML, hooks.url, origin.addr, proxy.addr))
	harness.WaitFor(t, "the initial sync", 60*time.Second, func() error {
		if d := diff(listing(t, origin.addr), listing(t, mirror.addr)); d != "" {
			return fmt.Errorf("%s", d)
		}
		return nil
	})

	p := startPusher(t, origin.addr)
	time.Sleep(2 * time.Second)

	// 30 s cut off from the origin's NATS, pushes going on: the mirror
	// stays ready and its status says what is wrong.
	proxy.cut()
	cutAt := time.Now()
	before := p.n.Load()
	harness.WaitFor(t, "status to show the partition", 20*time.Second, func() error {
		if err := harness.GetOK("http://" + mirror.addr + "/readyz"); err != nil {
			return fmt.Errorf("mirror not ready while partitioned: %v", err)
		}
		for _, pol := range mirror.status(t).Policies {
			if !strings.Contains(pol.LastError, "origin's NATS") {
				return fmt.Errorf("status of %s: %+v", pol.Policy, pol)
			}
		}
		return nil
	})
	time.Sleep(time.Until(cutAt.Add(30 * time.Second)))
	during := p.n.Load() - before
	if during < 100 {
		t.Fatalf("only %d pushes at the origin during the partition", during)
	}
	proxy.heal()

	// Back in touch, catching up: killed in the middle of it, restarted.
	time.Sleep(2 * time.Second)
	mirror.p.Kill()
	time.Sleep(2 * time.Second)
	mirror = start(t, "mirror-restarted", mirrorAddr, mirrorData, nil)
	time.Sleep(3 * time.Second)

	// The origin restarts (its NATS with it); the pusher retries.
	origin.p.Stop(t)
	origin = start(t, "origin-restarted", origin.addr, originData, originEnv)
	time.Sleep(3 * time.Second)
	acked := p.finish()

	// Deletes at the origin: deletion true follows them, false keeps.
	origBefore := listing(t, origin.addr)
	deleteAt(t, origin.addr, "team/app-0", "t0")
	deleteAt(t, origin.addr, "team/app-1", origBefore["team/app-1:t1"])
	deleteAt(t, origin.addr, "keep/app", "t3")
	deleteAt(t, origin.addr, "keep/app", origBefore["keep/app:t7"])
	keptAtMirror := map[string]string{"keep/app:t3": origBefore["keep/app:t3"], "keep/app:t7": origBefore["keep/app:t7"]}

	harness.WaitFor(t, "the mirror to hold exactly what it should", 120*time.Second, func() error {
		o, m := listing(t, origin.addr), listing(t, mirror.addr)
		want := only(o, "team/")
		for k, v := range only(o, "keep/") {
			want[k] = v
		}
		for k, v := range keptAtMirror {
			want[k] = v
		}
		if d := diff(want, m); d != "" {
			return fmt.Errorf("mirror differs:\n%s", d)
		}
		return nil
	})
	got := listing(t, mirror.addr)
	for k, d := range acked {
		if k == "team/app-0:t0" || k == "team/app-1:t1" {
			if _, ok := got[k]; ok {
				t.Errorf("%s was deleted at the origin (deletion: true) but is on the mirror", k)
			}
			continue
		}
		if got[k] != d {
			t.Errorf("acknowledged push %s is %q on the mirror, pushed %s", k, got[k], d)
		}
	}
	t.Logf("%d pushes acknowledged, %d of them during the partition", len(acked), during)

	// The restarted mirror resumed from its cursors.
	if out := mirror.p.Out.String(); strings.Contains(out, "initial sync") {
		t.Errorf("the restarted mirror synced from a listing:\n%s", harness.Tail(out, 3000))
	}
	// Status: caught up, no error.
	harness.WaitFor(t, "status to show both policies caught up", 30*time.Second, func() error {
		ans := mirror.status(t)
		if len(ans.Policies) != 2 {
			return fmt.Errorf("policies: %+v", ans.Policies)
		}
		for _, pol := range ans.Policies {
			if !pol.Running || pol.LastError != "" || pol.LagEntries != 0 || pol.Cursor < pol.OriginHead {
				return fmt.Errorf("status: %+v", pol)
			}
		}
		return nil
	})

	// The replication events, through the webhook.
	harness.WaitFor(t, "the replication events at the webhook", 30*time.Second, func() error {
		for _, pol := range []string{"exact", "keep"} {
			for _, kind := range []string{"started", "artifact.copied", "failed", "caught-up"} {
				if len(hooks.of("dev.berth.replication."+kind, pol)) == 0 {
					return fmt.Errorf("no replication.%s for %s", kind, pol)
				}
			}
		}
		return nil
	})
	for _, pol := range []string{"exact", "keep"} {
		var partition int
		for _, ev := range hooks.of("dev.berth.replication.failed", pol) {
			if strings.Contains(ev.Data.Job.Error, "origin's NATS") {
				partition++
			}
		}
		// The partition, the origin's restart: one each, however many
		// reconnects were tried.
		if partition == 0 || partition > 4 {
			t.Errorf("%s: %d failed events naming the origin's NATS, want one per outage", pol, partition)
		}
		if n := len(hooks.of("dev.berth.replication.started", pol)); n < 2 {
			t.Errorf("%s: %d started events, want one per run (first start, initial sync, restart)", pol, n)
		}
	}
	copied := hooks.of("dev.berth.replication.artifact.copied", "exact")
	all := listing(t, origin.addr)
	for k, v := range origBefore {
		all[k] = v
	}
	fetched := 0
	for _, ev := range copied {
		// Bytes are those fetched for the artifact: none when an earlier
		// attempt (before the kill) had stored them already.
		if ev.Data.Job.Mode != "mirror" || ev.Data.Digest == "" || ev.Data.Job.Bytes < 0 || !strings.HasPrefix(ev.Data.Repository, "team/") {
			t.Errorf("artifact.copied: %+v", ev)
			continue
		}
		if ev.Data.Job.Bytes > 0 {
			fetched++
		}
		for _, tag := range ev.Data.Tags {
			if d := all[ev.Data.Repository+":"+tag]; d != ev.Data.Digest {
				t.Errorf("artifact.copied %s:%s %s, the origin had %s", ev.Data.Repository, tag, ev.Data.Digest, d)
			}
		}
	}
	if len(copied) < 10 || fetched < len(copied)/2 {
		t.Errorf("%d artifact.copied events for policy exact, %d with bytes", len(copied), fetched)
	}
}
