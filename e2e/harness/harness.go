// Package harness runs the built binaries that the end-to-end tests drive:
// registryd, clusterctl, MinIO, HAProxy, crane and regctl. Nothing here
// imports Berth's own packages.
package harness

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// BinDir is where `make tools build` puts every binary the tests run:
// $BERTH_BIN, or bin/ at the module root.
func BinDir() string {
	if d := os.Getenv("BERTH_BIN"); d != "" {
		return d
	}
	abs, _ := filepath.Abs(filepath.Join(moduleRoot(), "bin"))
	return abs
}

// Tool finds a required binary in BinDir, then on PATH. A missing one
// fails the test: CI must not go green by skipping what it cannot run.
func Tool(t testing.TB, name string) string {
	t.Helper()
	p := filepath.Join(BinDir(), name)
	if _, err := os.Stat(p); err == nil {
		return p
	}
	if p, err := exec.LookPath(name); err == nil {
		return p
	}
	t.Fatalf("%s not found in %s or PATH: run `make tools build` first", name, BinDir())
	return ""
}

// Proc is one child process with its output captured for failure reports.
type Proc struct {
	Name string
	Cmd  *exec.Cmd
	Out  *syncBuffer
	done chan struct{}
	Err  error
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func StartProc(t testing.TB, name, bin string, args, env []string) *Proc {
	t.Helper()
	p := &Proc{Name: name, Out: &syncBuffer{}, done: make(chan struct{})}
	p.Cmd = exec.Command(bin, args...)
	p.Cmd.Env = append(os.Environ(), env...)
	p.Cmd.Stdout = p.Out
	p.Cmd.Stderr = p.Out
	p.Cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := p.Cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	go func() { p.Err = p.Cmd.Wait(); close(p.done) }()
	t.Cleanup(func() {
		p.Kill()
		if t.Failed() {
			t.Logf("---- %s output (last 6000 bytes) ----\n%s", name, Tail(p.Out.String(), 6000))
		}
	})
	return p
}

func Tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}

// Kill sends SIGKILL to the process group: no chance to flush, snapshot or say goodbye.
func (p *Proc) Kill() {
	select {
	case <-p.done:
		return
	default:
	}
	syscall.Kill(-p.Cmd.Process.Pid, syscall.SIGKILL)
	<-p.done
}

// Stop sends SIGTERM and waits for a clean exit.
func (p *Proc) Stop(t testing.TB) {
	t.Helper()
	p.Cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(60 * time.Second):
		t.Errorf("%s did not exit within 60s of SIGTERM", p.Name)
		p.Kill()
	}
}

func (p *Proc) Exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

func FreePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// WaitFor polls cond until it holds or the timeout passes.
func WaitFor(t testing.TB, what string, timeout time.Duration, cond func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	var err error
	for time.Now().Before(deadline) {
		if err = cond(); err == nil {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("timed out after %s waiting for %s: %v", timeout, what, err)
}

// HTTPStatus sends one request through the http.Client of the Client in
// ctx (http.DefaultClient without one) and returns the status, headers and
// body.
func HTTPStatus(ctx context.Context, method, url string, hdr map[string]string, body io.Reader) (int, http.Header, []byte, error) {
	return HTTPStatusWith(ctx, ClientFrom(ctx).http(), method, url, hdr, body)
}

// HTTPStatusWith is HTTPStatus through client, e.g. one that trusts a
// test CA for https:// URLs.
func HTTPStatusWith(ctx context.Context, client *http.Client, method, url string, hdr map[string]string, body io.Reader) (int, http.Header, []byte, error) {
	req, err := http.NewRequestWithContext(ctx, method, url, body)
	if err != nil {
		return 0, nil, nil, err
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := client.Do(req)
	if err != nil {
		return 0, nil, nil, err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, b, nil
}

func GetOK(url string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	code, _, body, err := HTTPStatus(ctx, "GET", url, nil, nil)
	if err != nil {
		return err
	}
	if code != http.StatusOK {
		return fmt.Errorf("GET %s: %d %s", url, code, strings.TrimSpace(string(body)))
	}
	return nil
}

// Run runs a client command to completion (at most 3 minutes) and returns
// what it wrote to stdout, which is what users script against; progress
// logs on stderr are shown only when the command fails.
func Run(t testing.TB, env []string, bin string, args ...string) string {
	t.Helper()
	return RunInput(t, env, "", bin, args...)
}

// RunInput is Run with stdin (a password for --password-stdin).
func RunInput(t testing.TB, env []string, stdin, bin string, args ...string) string {
	t.Helper()
	return RunDir(t, "", env, stdin, bin, args...)
}

// RunDir is RunInput in the working directory dir (for clients that
// take relative file names, as oras does).
func RunDir(t testing.TB, dir string, env []string, stdin, bin string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Dir = dir
	if stdin != "" {
		cmd.Stdin = strings.NewReader(stdin)
	}
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("%s %s: %v\nstdout:\n%s\nstderr:\n%s", filepath.Base(bin), strings.Join(args, " "), err, Tail(stdout.String(), 4000), Tail(stderr.String(), 4000))
	}
	return stdout.String()
}

// moduleRoot finds the repository root (the directory holding go.mod).
func moduleRoot() string {
	dir, _ := os.Getwd()
	for d := dir; d != "/"; d = filepath.Dir(d) {
		if _, err := os.Stat(filepath.Join(d, "go.mod")); err == nil {
			return d
		}
	}
	return dir
}

// RunFail runs a client command that must fail (a refused push, a pull
// without credentials) and returns its stdout and stderr together, for
// the test to check that it failed for the right reason.
func RunFail(t testing.TB, env []string, bin string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Env = append(os.Environ(), env...)
	out, err := cmd.CombinedOutput()
	if err == nil {
		t.Fatalf("%s %s succeeded, want it refused:\n%s", filepath.Base(bin), strings.Join(args, " "), Tail(string(out), 4000))
	}
	return string(out)
}

// RunErr runs a client command that is expected to fail and returns its
// combined output and error, for checking what the user is told.
func RunErr(env []string, bin string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Env = append(os.Environ(), env...)
	out, err := cmd.CombinedOutput()
	return string(out), err
}
