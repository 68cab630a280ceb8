package single

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// `clusterctl events --follow` prints a push as it is published, and
// Ctrl-C ends it cleanly.
func TestClusterctlEventsFollow(t *testing.T) {
	data := t.TempDir()
	reg := startRegistry(t, data, "")
	c := newCtl(t, reg)
	pushIndexed(t, reg.addr, "warm/up", "w")
	clusterID := c.clusterID()

	cmd := exec.Command(c.bin, "--token-file", c.tok, "events", "--follow", "--repo", "live/**", "-o", "json")
	cmd.Env = append(os.Environ(), c.env...)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	lines := make(chan string, 16)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	time.Sleep(300 * time.Millisecond) // following before the push
	want := fmt.Sprintf(`"id":"%s:%d"`, clusterID, pushIndexed(t, reg.addr, "live/app", "1"))
	select {
	case l := <-lines:
		if !strings.Contains(l, want) || !strings.Contains(l, `"repository":"live/app"`) {
			t.Errorf("followed event %s, want %s", l, want)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("events --follow printed nothing within 15 s of the push")
	}
	cmd.Process.Signal(os.Interrupt)
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("events --follow after Ctrl-C: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Error("events --follow did not stop on Ctrl-C")
	}
}
