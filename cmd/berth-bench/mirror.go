package main

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/spf13/cobra"
)

// MirrorResult is what `berth-bench mirror` measures: a single-node origin
// and a single-node mirror following it on one machine.
type MirrorResult struct {
	Pushes      int `json:"pushes"`
	Concurrency int `json:"concurrency"`
	// PushElapsed is how long the origin took to acknowledge every push;
	// PushesPerS the rate that makes.
	PushElapsed time.Duration `json:"pushElapsedNs"`
	PushesPerS  float64       `json:"pushesPerSec"`
	// Lag is from the origin's 201 for a manifest to the first HEAD on
	// the mirror that answers 200 with the same digest.
	LagP50 time.Duration `json:"lagP50Ns"`
	LagP99 time.Duration `json:"lagP99Ns"`
	LagMax time.Duration `json:"lagMaxNs"`
	// CaughtUp is from the first push to the last one pullable at the
	// mirror.
	CaughtUp time.Duration `json:"caughtUpNs"`
	// Verified counts the images pulled whole from the mirror (manifest
	// and blobs, each checked against its digest) after the run.
	Verified int `json:"verified"`
	Missing  int `json:"missing"`
}

const mirrorBenchToken = "berth-bench-mirror-token"

// mirrorCmd measures mirror lag: pushes at full speed at an origin, and
// how long each takes to become pullable at a mirror that follows it.
func mirrorCmd() *cobra.Command {
	var berthBin, jsonOut string
	var pushes, conc int
	var timeout time.Duration
	cmd := &cobra.Command{
		Use:   "mirror",
		Short: "Origin and mirror on one machine: lag from a push's 201 at the origin to its pullability at the mirror",
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			out := cmd.OutOrStdout()
			natsAddr, err := freeAddr()
			if err != nil {
				return err
			}
			origin, err := startServer(ctx, "origin", berthBin,
				[]string{"BERTH_EVENTS_NATS_LISTEN=" + natsAddr, "BERTH_EVENTS_NATS_TOKEN=" + mirrorBenchToken},
				func(addr, dir string) []string {
					return []string{"serve", "--addr", addr, "--data-dir", filepath.Join(dir, "data"), "--log-level", "warn"}
				})
			if err != nil {
				return err
			}
			defer origin.stop()
			var secretErr error
			mirror, err := startServer(ctx, "mirror", berthBin, []string{"BERTH_EVENTS_ENABLED=false"}, func(addr, dir string) []string {
				// The origin's NATS token, where the Registry's secretRef
				// finds it (<data-dir>/secrets/<name>/<key>), before the
				// mirror starts.
				secretErr = writeSecret(filepath.Join(dir, "data", "secrets", "origin-nats"), "token", mirrorBenchToken)
				return []string{"serve", "--addr", addr, "--data-dir", filepath.Join(dir, "data"), "--log-level", "warn"}
			})
			if err != nil {
				return err
			}
			defer mirror.stop()
			if secretErr != nil {
				return secretErr
			}
			tok, err := os.ReadFile(filepath.Join(mirror.dir, "data", "admin.token"))
			if err != nil {
				return fmt.Errorf("read the mirror's admin token: %w", err)
			}
			b := &eventsBench{url: mirror.url, token: strings.TrimSpace(string(tok)), c: newClient(mirror.url, 8)}
			doc := fmt.Sprintf(`apiVersion: berth.dev/v1
kind: Registry
metadata: {name: origin}
spec:
  type: berth
  url: %s
  insecure: true
  events: {urls: ["nats://%s"], credentials: {type: token, secretRef: {name: origin-nats, key: token}}}
---
apiVersion: berth.dev/v1
kind: ReplicationPolicy
metadata: {name: bench}
spec: {mode: mirror, registry: origin, deletion: true}
`, origin.url, natsAddr)
			if code, body, err := b.admin(ctx, "POST", "/admin/v1/apply", []byte(doc)); err != nil || code != 200 {
				return fmt.Errorf("apply the mirror policy: %d %s %v", code, body, err)
			}
			if err := waitMirrorFollowing(ctx, b); err != nil {
				return err
			}
			res, err := measureMirrorLag(ctx, newClient(origin.url, conc), newClient(mirror.url, 8), pushes, conc, timeout)
			if err != nil {
				return err
			}
			fmt.Fprintf(out, "mirror lag: %d pushes with %d clients in %v (%.0f/s) at the origin\n", res.Pushes, res.Concurrency, res.PushElapsed.Round(time.Millisecond), res.PushesPerS)
			fmt.Fprintf(out, "  origin 201 -> pullable at the mirror: p50 %s  p99 %s  max %s; all pullable %v after the first push\n",
				ms(res.LagP50), ms(res.LagP99), ms(res.LagMax), res.CaughtUp.Round(time.Millisecond))
			fmt.Fprintf(out, "  verified at the mirror (manifest and blobs by digest): %d, missing %d\n", res.Verified, res.Missing)
			if jsonOut != "" {
				j, _ := json.MarshalIndent(res, "", "  ")
				if err := os.WriteFile(jsonOut, j, 0o644); err != nil {
					return err
				}
			}
			if res.Missing > 0 {
				return fmt.Errorf("%d pushes never became pullable at the mirror within %v", res.Missing, timeout)
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&berthBin, "berth", "bin/registryd", "registryd binary, run as origin and as mirror")
	cmd.Flags().IntVar(&pushes, "pushes", 200, "images pushed at the origin")
	cmd.Flags().IntVar(&conc, "concurrency", 4, "clients pushing at once")
	cmd.Flags().DurationVar(&timeout, "timeout", time.Minute, "how long a push may take to reach the mirror before it counts as missing")
	cmd.Flags().StringVar(&jsonOut, "json", "", "also write the result as JSON to this file")
	return cmd
}

func writeSecret(dir, key, value string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, key), []byte(value), 0o600)
}

// waitMirrorFollowing waits until the mirror's policy runs and its initial
// sync (of an empty origin) committed a cursor, so the measurement does
// not include starting up.
func waitMirrorFollowing(ctx context.Context, b *eventsBench) error {
	deadline := time.Now().Add(60 * time.Second)
	for {
		code, body, err := b.admin(ctx, "GET", "/admin/v1/replication/status", nil)
		var ans struct {
			Policies []struct {
				Running   bool   `json:"running"`
				Syncing   bool   `json:"syncing"`
				Cursor    uint64 `json:"cursor"`
				LastError string `json:"lastError"`
			} `json:"policies"`
		}
		if err == nil && code == 200 && json.Unmarshal(body, &ans) == nil && len(ans.Policies) == 1 {
			p := ans.Policies[0]
			if p.Running && !p.Syncing && p.Cursor > 0 && p.LastError == "" {
				return nil
			}
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return fmt.Errorf("the mirror never followed the origin: %d %s %v", code, body, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// pendingPush is an acknowledged push not yet seen at the mirror.
type pendingPush struct {
	repo, tag, digest string
	index             uint64
	acked             time.Time
	im                smallImage
}

// measureMirrorLag pushes n small images with conc clients at the origin
// while one poller HEADs the mirror for the acknowledged push of lowest
// origin index: the mirror applies the origin's events in index order, so
// that is the next to become pullable, and a single poller measures it
// without loading the mirror (the machine has few cores).
func measureMirrorLag(ctx context.Context, origin, mirror *client, n, conc int, timeout time.Duration) (MirrorResult, error) {
	res := MirrorResult{Pushes: n, Concurrency: conc}
	var (
		mu       sync.Mutex
		pending  []*pendingPush
		done     []*pendingPush
		lags     []time.Duration
		firstErr error
		next     int
		seq      = time.Now().UnixNano()
		pushing  = true
	)
	images := make([]smallImage, n)
	for i := range images {
		images[i] = newSmallImage(seq + int64(i))
	}
	start := time.Now()
	var wg sync.WaitGroup
	for w := range conc {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				mu.Lock()
				i := next
				next++
				mu.Unlock()
				if i >= n || ctx.Err() != nil {
					return
				}
				im := images[i]
				repo, tag := fmt.Sprintf("bench/mirror-%d", w), fmt.Sprintf("t%d", i)
				err := origin.pushBlob(ctx, repo, im.config, im.cd)
				if err == nil {
					err = origin.pushBlob(ctx, repo, im.layer, im.ld)
				}
				var idx uint64
				if err == nil {
					var code int
					var hdr http.Header
					var body []byte
					code, hdr, body, _, err = origin.do(ctx, "PUT", "/v2/"+repo+"/manifests/"+tag,
						map[string]string{"Content-Type": mediaManifest}, bytes.NewReader(im.manifest), int64(len(im.manifest)), true)
					if err == nil {
						err = expect(code, 201, "put manifest", body)
					}
					if err == nil {
						idx, err = strconv.ParseUint(hdr.Get("Berth-Index"), 10, 64)
					}
				}
				at := time.Now()
				mu.Lock()
				if err != nil && firstErr == nil {
					firstErr = fmt.Errorf("push %d: %w", i, err)
				}
				if err == nil {
					pending = append(pending, &pendingPush{repo: repo, tag: tag, digest: sha(im.manifest), index: idx, acked: at, im: im})
				}
				mu.Unlock()
			}
		}()
	}
	go func() {
		wg.Wait()
		mu.Lock()
		pushing = false
		res.PushElapsed = time.Since(start)
		mu.Unlock()
	}()

	// The poller.
	var lastSeen time.Time
	for {
		mu.Lock()
		if !pushing && len(pending) == 0 {
			mu.Unlock()
			break
		}
		if len(pending) == 0 {
			mu.Unlock()
			time.Sleep(time.Millisecond)
			continue
		}
		slices.SortFunc(pending, func(a, b *pendingPush) int { return cmp.Compare(a.index, b.index) })
		p := pending[0]
		mu.Unlock()
		if time.Since(p.acked) > timeout || ctx.Err() != nil {
			break
		}
		code, hdr, _, _, err := mirror.do(ctx, "HEAD", "/v2/"+p.repo+"/manifests/"+p.tag, map[string]string{"Accept": mediaManifest}, nil, -1, false)
		if err == nil && code == 200 && hdr.Get("Docker-Content-Digest") == p.digest {
			now := time.Now()
			lastSeen = now
			mu.Lock()
			pending = pending[1:]
			done = append(done, p)
			lags = append(lags, max(0, now.Sub(p.acked)))
			mu.Unlock()
			continue
		}
		time.Sleep(2 * time.Millisecond)
	}
	mu.Lock()
	defer mu.Unlock()
	if firstErr != nil {
		return res, firstErr
	}
	res.Missing = len(pending)
	if res.PushElapsed > 0 {
		res.PushesPerS = float64(n) / res.PushElapsed.Seconds()
	}
	res.LagP50, res.LagP99 = percentile(lags, 50), percentile(lags, 99)
	res.LagMax = percentile(lags, 100)
	res.CaughtUp = lastSeen.Sub(start)
	// Every image whole at the mirror: the manifest's bytes and each
	// blob's, checked against their digests.
	for _, p := range done {
		if err := verifyAt(ctx, mirror, p); err != nil {
			return res, fmt.Errorf("at the mirror: %w", err)
		}
		res.Verified++
	}
	return res, nil
}

func verifyAt(ctx context.Context, c *client, p *pendingPush) error {
	for path, want := range map[string]string{
		"/v2/" + p.repo + "/manifests/" + p.tag: p.digest,
		"/v2/" + p.repo + "/blobs/" + p.im.cd:   p.im.cd,
		"/v2/" + p.repo + "/blobs/" + p.im.ld:   p.im.ld,
	} {
		code, _, body, _, err := c.do(ctx, "GET", path, map[string]string{"Accept": mediaManifest}, nil, -1, true)
		if err != nil || code != 200 {
			return fmt.Errorf("GET %s: %d %v", path, code, err)
		}
		if got := sha(body); got != want {
			return fmt.Errorf("GET %s: digest %s, want %s", path, got, want)
		}
	}
	return nil
}
