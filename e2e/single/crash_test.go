package single

import (
	"bytes"
	"context"
	"crypto/rand"
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
	var half []halfUpload
	resumed := 0
	for round := range 3 {
		reg := startRegistry(t, data, addr)
		// Everything acknowledged before this round is still there, and
		// the uploads left half done by the last kill are not blobs.
		verifyAll(t, reg.addr, acked, fmt.Sprintf("after restart %d", round))
		resumed += resumeHalfUploads(t, reg.addr, half)
		var a, u []harness.Image
		a, u, half = pushUntilKilled(t, reg, round)
		acked = append(acked, a...)
		unacked = append(unacked, u...)
	}
	reg := startRegistry(t, data, addr)
	pullable := verifyAll(t, reg.addr, acked, "after the last restart")
	resumed += resumeHalfUploads(t, reg.addr, half)
	t.Logf("%d uploads half done at a kill were not served as blobs and were resumed after the restart", resumed)
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
	entries, err := os.ReadDir(filepath.Join(data, "tmp"))
	if err != nil {
		t.Errorf("tmp/ after restart: %v", err)
	}
	if len(entries) != 0 {
		t.Errorf("tmp/ holds %d leftovers after restart", len(entries))
	}
}

// halfUpload is a chunked upload that had its first chunk acknowledged
// and was idle when the registry was killed.
type halfUpload struct {
	up      *harness.Upload
	repo    string
	content []byte
}

// startHalfUploads opens n sessions and sends the first half of a blob to
// each, so a kill finds bytes held for a blob that does not exist yet.
func startHalfUploads(t *testing.T, addr string, round, n int) []halfUpload {
	t.Helper()
	ctx, cancel := harness.Ctx(30 * time.Second)
	defer cancel()
	var out []halfUpload
	for i := range n {
		content := make([]byte, 64<<10)
		rand.Read(content)
		repo := fmt.Sprintf("crash/half-r%d", round)
		up, err := harness.StartUpload(ctx, addr, repo)
		if err == nil {
			err = up.Patch(ctx, content[:len(content)/2])
		}
		if err != nil {
			t.Fatalf("half upload %d: %v", i, err)
		}
		out = append(out, halfUpload{up: up, repo: repo, content: content})
	}
	return out
}

// resumeHalfUploads checks, after a restart, that half-uploaded blobs are
// not served anywhere, that each session still holds exactly the bytes
// that were acknowledged (the filesystem driver keeps sessions that hold
// data), and that the client can finish it into the right blob.
func resumeHalfUploads(t *testing.T, addr string, half []halfUpload) (resumed int) {
	t.Helper()
	ctx, cancel := harness.Ctx(time.Minute)
	defer cancel()
	for _, h := range half {
		d := harness.Sha(h.content)
		for _, method := range []string{"HEAD", "GET"} {
			code, _, _, err := harness.HTTPStatus(ctx, method, "http://"+addr+"/v2/"+h.repo+"/blobs/"+d, nil, nil)
			if err != nil {
				t.Fatal(err)
			}
			if code != http.StatusNotFound {
				t.Errorf("%s of a half-uploaded blob after kill -9: %d, want 404", method, code)
			}
		}
		h.up.Base = addr
		code, size, err := h.up.Status(ctx)
		if err != nil || code != http.StatusNoContent || size != h.up.Offset {
			t.Errorf("half upload after restart: status %d holding %d bytes (err %v), want 204 with %d", code, size, err, h.up.Offset)
			continue
		}
		if err := h.up.Patch(ctx, h.content[h.up.Offset:]); err != nil {
			t.Errorf("resume after restart: %v", err)
			continue
		}
		if err := h.up.Finish(ctx, d); err != nil {
			t.Errorf("finish after restart: %v", err)
			continue
		}
		code, _, got, err := harness.HTTPStatus(ctx, "GET", "http://"+addr+"/v2/"+h.repo+"/blobs/"+d, nil, nil)
		if err != nil || code != http.StatusOK || !bytes.Equal(got, h.content) {
			t.Errorf("resumed blob: %d (err %v), %d bytes back of %d", code, err, len(got), len(h.content))
			continue
		}
		resumed++
	}
	return resumed
}

// pushUntilKilled runs 4 pushers (two monolithic, two chunked), leaves a
// few uploads half done, kills the registry after a moment, and returns
// the pushes that were acknowledged, those that were not, and the half
// uploads.
func pushUntilKilled(t *testing.T, reg *registry, round int) (acked, unacked []harness.Image, half []halfUpload) {
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
				push := im.Push
				if w%2 == 1 {
					push = im.PushChunked
				}
				err := push(ctx, reg.addr)
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
	time.Sleep(1200 * time.Millisecond)
	half = startHalfUploads(t, reg.addr, round, 3)
	time.Sleep(300 * time.Millisecond)
	reg.p.Cmd.Process.Signal(syscall.SIGKILL)
	reg.p.Kill()
	close(stop)
	wg.Wait()
	return acked, unacked, half
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

// TestFirstReadAfterKill9 reads right after a restart: a registry killed
// with SIGKILL leaves no snapshot, so it must replay its whole log before
// its first answer. It polls /healthz (up, not necessarily ready) so the
// read lands as early as it can; it must see the acknowledged pushes, not
// a 404.
func TestFirstReadAfterKill9(t *testing.T) {
	data := t.TempDir()
	reg := startRegistry(t, data, "")
	ctx, cancel := harness.Ctx(2 * time.Minute)
	defer cancel()
	var ims []harness.Image
	for i := range 200 {
		im := harness.NewImage("replay/app", fmt.Sprintf("t%d", i))
		if err := im.Push(ctx, reg.addr); err != nil {
			t.Fatal(err)
		}
		ims = append(ims, im)
	}
	reg.p.Kill()

	p := harness.StartProc(t, "registryd", harness.Tool(t, "registryd"),
		[]string{"serve", "--addr", reg.addr, "--data-dir", data}, nil)
	deadline := time.Now().Add(time.Minute)
	for harness.GetOK("http://"+reg.addr+"/healthz") != nil {
		if p.Exited() || time.Now().After(deadline) {
			t.Fatalf("registryd did not come back: %v", p.Err)
		}
		time.Sleep(time.Millisecond)
	}
	for _, im := range []harness.Image{ims[0], ims[len(ims)-1]} {
		if err := im.Verify(ctx, reg.addr); err != nil {
			t.Errorf("first reads after the restart: %v", err)
		}
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
