package single

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/berth-registry/berth/e2e/harness"
)

// stalledPatch is a client that announced a huge chunk, sent 1 KiB of it
// and went quiet, with its connection left open.
type stalledPatch struct {
	up   *harness.Upload
	conn net.Conn
	sent time.Time
}

// TestStalledUploadsBlockNobody: clients that start a PATCH, claim 10 GiB
// and stop after 1 KiB used to hold the filesystem driver's striped upload
// locks for as long as they kept the connection open, and enough of them
// stopped every chunked upload and `crane push`. Now they hold only their
// own sessions, other pushes complete promptly beside them, and each
// stalled request ends after limits.bodyreadtimeout with a 408 and a
// closed connection, its session still usable at its last good offset.
func TestStalledUploadsBlockNobody(t *testing.T) {
	const (
		timeout = 10 * time.Second
		stalls  = 192 // three times the 64 lock stripes there were
	)
	addr := fmt.Sprintf("127.0.0.1:%d", harness.FreePort(t))
	reg := harness.StartProc(t, "registryd", harness.Tool(t, "registryd"),
		[]string{"serve", "--addr", addr, "--data-dir", t.TempDir()},
		[]string{"BERTH_LIMITS_BODYREADTIMEOUT=" + timeout.String()})
	harness.WaitFor(t, "registryd ready", 60*time.Second, func() error {
		if reg.Exited() {
			t.Fatalf("registryd exited: %v\n%s", reg.Err, harness.Tail(reg.Out.String(), 4000))
		}
		return harness.GetOK("http://" + addr + "/readyz")
	})
	crane, env := harness.Tool(t, "crane"), clientEnv(t)
	dir := t.TempDir()
	layer := writeFile(t, filepath.Join(dir, "layer.tar"), harness.TarWithFile("hello.txt", []byte("pushed beside stalled uploads\n")))
	tarball := filepath.Join(dir, "image.tar")
	harness.Run(t, env, crane, "append", "-f", layer, "-t", addr+"/e2e/beside:1", "-o", tarball)

	ctx, cancel := harness.Ctx(3 * time.Minute)
	defer cancel()
	var stalled []stalledPatch
	for i := range stalls {
		up, err := harness.StartUpload(ctx, addr, fmt.Sprintf("stall/s%d", i%8))
		if err != nil {
			t.Fatal(err)
		}
		conn, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		head := fmt.Sprintf("PATCH %s HTTP/1.1\r\nHost: %s\r\nContent-Type: application/octet-stream\r\nContent-Length: %d\r\n\r\n", up.Location, addr, int64(10<<30))
		if _, err := conn.Write(append([]byte(head), make([]byte, 1024)...)); err != nil {
			t.Fatal(err)
		}
		stalled = append(stalled, stalledPatch{up: up, conn: conn, sent: time.Now()})
	}
	time.Sleep(time.Second) // for the server to be inside every stalled body

	// Everything below must be done before the first stalled request can
	// have timed out: it must not have waited for them.
	budget := stalled[0].sent.Add(timeout * 9 / 10)
	begin := time.Now()
	wctx, wcancel := context.WithDeadline(ctx, budget)
	defer wcancel()
	if err := harness.NewImage("e2e/chunked", "v1").PushChunked(wctx, addr); err != nil {
		t.Fatalf("chunked push beside %d stalled uploads (after %s): %v", stalls, time.Since(begin), err)
	}
	cmd := exec.CommandContext(wctx, crane, "--insecure", "push", tarball, addr+"/e2e/beside:1")
	cmd.Env = append(os.Environ(), env...)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("crane push beside %d stalled uploads (after %s): %v\n%s", stalls, time.Since(begin), err, out)
	}
	t.Logf("a chunked push and a crane push took %s beside %d stalled uploads", time.Since(begin), stalls)

	for i, s := range stalled {
		s.conn.SetReadDeadline(s.sent.Add(timeout + 20*time.Second))
		br := bufio.NewReader(s.conn)
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatalf("stalled PATCH %d: no answer %s after its last byte: %v", i, time.Since(s.sent), err)
		}
		body, _ := io.ReadAll(resp.Body)
		if _, err := br.ReadByte(); err != io.EOF {
			t.Fatalf("stalled PATCH %d: connection still open after the answer: %v", i, err)
		}
		if took := time.Since(s.sent); took < timeout*9/10 {
			t.Fatalf("stalled PATCH %d ended %s after its last byte, before the %s deadline", i, took, timeout)
		}
		if resp.StatusCode != http.StatusRequestTimeout || !strings.Contains(string(body), "BLOB_UPLOAD_INVALID") {
			t.Fatalf("stalled PATCH %d: %d %s, want 408 BLOB_UPLOAD_INVALID", i, resp.StatusCode, body)
		}
	}
	// The stalled sessions kept nothing of the partial chunk and go on.
	for _, s := range stalled[:3] {
		if code, size, err := s.up.Status(ctx); err != nil || code != http.StatusNoContent || size != 0 {
			t.Fatalf("stalled session afterwards: %d, %d bytes, %v; want 204 and 0 bytes", code, size, err)
		}
		data := []byte("the rest of a stalled upload, sent after all")
		if err := s.up.Patch(ctx, data); err != nil {
			t.Fatal(err)
		}
		if err := s.up.Finish(ctx, harness.Sha(data)); err != nil {
			t.Fatal(err)
		}
	}
}
