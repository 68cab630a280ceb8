package single

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/berth-registry/berth/e2e/harness"
)

// TestKill9DuringPushes kills registryd with SIGKILL while several clients
// push, restarts it on the same data dir, and checks what users would see:
// every push that got its 201 is fully pullable, and nothing half-written
// is visible. It does this for several kills in a row.
func TestKill9DuringPushes(t *testing.T) {
	data := t.TempDir()
	addr := fmt.Sprintf("127.0.0.1:%d", harness.FreePort(t))
	var acked, unacked []harness.Image
	for round := range 3 {
		reg := startRegistry(t, data, addr)
		// Everything acknowledged before this round is still there.
		verifyAll(t, reg.addr, acked, fmt.Sprintf("after restart %d", round))
		a, u := pushUntilKilled(t, reg, round)
		acked = append(acked, a...)
		unacked = append(unacked, u...)
	}
	reg := startRegistry(t, data, addr)
	pullable := verifyAll(t, reg.addr, acked, "after the last restart")
	t.Logf("ACKNOWLEDGED: %d pushes acknowledged across 3 kill -9s, %d pullable afterwards; %d were in flight", len(acked), pullable, len(unacked))
	if pullable != len(acked) {
		t.Errorf("%d of %d acknowledged pushes are pullable", pullable, len(acked))
	}
	if len(acked) < 30 {
		t.Errorf("only %d pushes were acknowledged: the test did not exercise enough", len(acked))
	}

	// In-flight pushes are all or nothing: a manifest that is visible has
	// every blob; a blob that is visible has the right bytes.
	ctx, cancel := harness.Ctx(2 * time.Minute)
	defer cancel()
	visible := 0
	for _, im := range unacked {
		code, _, _, err := harness.HTTPStatus(ctx, "GET", "http://"+reg.addr+"/v2/"+im.Repo+"/manifests/"+im.Tag, nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		if code == http.StatusOK {
			visible++
			if err := im.Verify(ctx, reg.addr); err != nil {
				t.Errorf("half-visible push: %v", err)
			}
		}
		for _, b := range [][]byte{im.Config, im.Layer} {
			code, _, got, _ := harness.HTTPStatus(ctx, "GET", "http://"+reg.addr+"/v2/"+im.Repo+"/blobs/"+harness.Sha(b), nil, nil)
			if code == http.StatusOK && string(got) != string(b) {
				t.Errorf("blob %s served with wrong bytes", harness.Sha(b))
			}
		}
	}
	t.Logf("of %d in-flight pushes, %d completed before the kill and are whole", len(unacked), visible)

	// No partial file under a content address, and tmp/ was cleaned.
	checkBlobFiles(t, data)
	entries, _ := os.ReadDir(filepath.Join(data, "tmp"))
	if len(entries) != 0 {
		t.Errorf("tmp/ holds %d leftovers after restart", len(entries))
	}
}

// pushUntilKilled runs 4 pushers, kills the registry after a moment, and
// returns the pushes that were acknowledged and those that were not.
func pushUntilKilled(t *testing.T, reg *registry, round int) (acked, unacked []harness.Image) {
	var mu sync.Mutex
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				im := harness.NewImage(fmt.Sprintf("crash/r%d-w%d", round, w), fmt.Sprintf("t%d", i))
				ctx, cancel := harness.Ctx(10 * time.Second)
				err := im.Push(ctx, reg.addr)
				cancel()
				mu.Lock()
				if err == nil {
					acked = append(acked, im)
				} else {
					unacked = append(unacked, im)
				}
				mu.Unlock()
				if err != nil {
					return // the registry is gone
				}
			}
		}()
	}
	time.Sleep(1500 * time.Millisecond)
	reg.p.Cmd.Process.Signal(syscall.SIGKILL)
	reg.p.Kill()
	close(stop)
	wg.Wait()
	return acked, unacked
}

// verifyAll pulls every image back and returns how many were whole.
func verifyAll(t *testing.T, addr string, ims []harness.Image, when string) int {
	t.Helper()
	ctx, cancel := harness.Ctx(3 * time.Minute)
	defer cancel()
	ok := 0
	for _, im := range ims {
		if err := im.Verify(ctx, addr); err != nil {
			t.Errorf("%s: acknowledged push lost: %v", when, err)
			continue
		}
		ok++
	}
	return ok
}

// checkBlobFiles hashes every file under blobs/ and compares it with its
// name: a half-written blob would not match.
func checkBlobFiles(t *testing.T, data string) {
	n := 0
	filepath.WalkDir(filepath.Join(data, "blobs", "sha256"), func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(path)
		if err != nil {
			t.Error(err)
			return nil
		}
		sum := sha256.Sum256(b)
		if hex.EncodeToString(sum[:]) != filepath.Base(path) {
			t.Errorf("blob file %s does not hash to its name", strings.TrimPrefix(path, data))
		}
		n++
		return nil
	})
	if n == 0 {
		t.Error("no blob files found")
	}
}

// TestSigtermShutsDownCleanly checks the graceful path: exit status 0, and
// a restart serves what was pushed.
func TestSigtermShutsDownCleanly(t *testing.T) {
	data := t.TempDir()
	reg := startRegistry(t, data, "")
	im := harness.NewImage("graceful/app", "v1")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := im.Push(ctx, reg.addr); err != nil {
		t.Fatal(err)
	}
	reg.p.Cmd.Process.Signal(syscall.SIGTERM)
	reg.p.Stop(t)
	if reg.p.Err != nil {
		t.Fatalf("exit after SIGTERM: %v\n%s", reg.p.Err, harness.Tail(reg.p.Out.String(), 3000))
	}
	if !strings.Contains(reg.p.Out.String(), "shutdown complete") {
		t.Errorf("no clean shutdown logged:\n%s", harness.Tail(reg.p.Out.String(), 2000))
	}
	// The final snapshot exists, so the restart replays from it.
	snaps, _ := filepath.Glob(filepath.Join(data, "raft", "snapshots", "*", "state.bin"))
	if len(snaps) == 0 {
		t.Error("no snapshot taken on shutdown")
	}
	reg = startRegistry(t, data, reg.addr)
	if err := im.Verify(ctx, reg.addr); err != nil {
		t.Errorf("after restart: %v", err)
	}
}
