package single

import (
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/berth-registry/berth/e2e/harness"
)

// waitExit waits up to within for p to exit and returns its exit code.
func waitExit(t *testing.T, p *harness.Proc, within time.Duration) int {
	t.Helper()
	start := time.Now()
	for !p.Exited() {
		if time.Since(start) > within {
			t.Fatalf("%s still running %s after start (it must fail at once); output:\n%s", p.Name, within, harness.Tail(p.Out.String(), 2000))
		}
		time.Sleep(20 * time.Millisecond)
	}
	var ee *exec.ExitError
	if !errors.As(p.Err, &ee) {
		t.Fatalf("%s exited with %v, want a non-zero exit; output:\n%s", p.Name, p.Err, p.Out.String())
	}
	return ee.ExitCode()
}

// A second registryd on a data dir in use must not hang in bbolt's flock:
// it exits non-zero within 2 s and says which file is locked and why.
func TestSecondRegistrydOnSameDataDirFails(t *testing.T) {
	data := t.TempDir()
	first := startRegistry(t, data, "")
	// Stands for a blob the first registryd is writing right now.
	inFlight := writeFile(t, filepath.Join(data, "tmp", "upload-in-progress"), []byte("partial blob"))
	addr := fmt.Sprintf("127.0.0.1:%d", harness.FreePort(t))
	start := time.Now()
	second := harness.StartProc(t, "second registryd", harness.Tool(t, "registryd"),
		[]string{"serve", "--addr", addr, "--data-dir", data}, nil)
	code := waitExit(t, second, 2*time.Second)
	out := second.Out.String()
	t.Logf("second registryd exited %d after %s: %s", code, time.Since(start).Round(time.Millisecond), strings.TrimSpace(out))
	for _, want := range []string{filepath.Join(data, "raft", "raft.db"), "locked by another registryd"} {
		if !strings.Contains(out, want) {
			t.Errorf("message does not name %q:\n%s", want, out)
		}
	}
	if _, err := os.Stat(inFlight); err != nil {
		t.Errorf("the second registryd touched the first one's files before failing: %v", err)
	}
	if err := harness.GetOK("http://" + first.addr + "/readyz"); err != nil {
		t.Errorf("the first registryd suffered: %v", err)
	}
}

// A taken HTTP port is reported at once, and a new data dir is not even
// created.
func TestHTTPPortInUseFails(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	data := filepath.Join(t.TempDir(), "new-data")
	p := harness.StartProc(t, "registryd", harness.Tool(t, "registryd"),
		[]string{"serve", "--addr", ln.Addr().String(), "--data-dir", data}, nil)
	waitExit(t, p, 2*time.Second)
	out := p.Out.String()
	if !strings.Contains(out, "listen on "+ln.Addr().String()) || !strings.Contains(out, "address already in use") {
		t.Errorf("message does not say the port is taken:\n%s", out)
	}
	if _, err := os.Stat(data); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the data dir %s was created (stat: %v) by a start that could not bind its port", data, err)
	}
}
