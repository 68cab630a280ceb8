package harness

import (
	"fmt"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

// MinIO credentials the tests start MinIO with.
const (
	MinIOUser   = "berth-test"
	MinIOSecret = "berth-test-secret-key"
)

// MinIO is a MinIO server process on a fixed loopback address and data dir,
// so a test can stop, kill and restart it as it was.
type MinIO struct {
	Addr string // host:port
	Dir  string
	P    *Proc
}

// StartMinIO runs bin/minio on dir and waits until it is ready. An empty
// addr picks a free port.
func StartMinIO(t testing.TB, dir, addr string) *MinIO {
	t.Helper()
	if addr == "" {
		addr = fmt.Sprintf("127.0.0.1:%d", FreePort(t))
	}
	m := &MinIO{Addr: addr, Dir: dir}
	m.Start(t)
	return m
}

// Start (re)starts the server on its address and dir.
func (m *MinIO) Start(t testing.TB) {
	t.Helper()
	console := fmt.Sprintf("127.0.0.1:%d", FreePort(t))
	m.P = StartProc(t, "minio", Tool(t, "minio"),
		[]string{"server", filepath.Join(m.Dir, "minio"), "--address", m.Addr, "--console-address", console, "--quiet"},
		[]string{"MINIO_ROOT_USER=" + MinIOUser, "MINIO_ROOT_PASSWORD=" + MinIOSecret, "MINIO_BROWSER=off"})
	WaitFor(t, "minio ready", 60*time.Second, func() error {
		if m.P.Exited() {
			t.Fatalf("minio exited: %v\n%s", m.P.Err, Tail(m.P.Out.String(), 4000))
		}
		return GetOK("http://" + m.Addr + "/minio/health/ready")
	})
}

// Signal sends sig to the server's process group (SIGSTOP freezes it with
// its sockets open: connections are accepted by the kernel, never answered).
func (m *MinIO) Signal(t testing.TB, sig syscall.Signal) {
	t.Helper()
	if err := syscall.Kill(-m.P.Cmd.Process.Pid, sig); err != nil {
		t.Fatalf("signal %v to minio: %v", sig, err)
	}
}

// Env is the registryd environment that stores blobs in this MinIO.
func (m *MinIO) Env(bucket string) []string {
	return []string{
		"BERTH_STORAGE_DRIVER=s3", "BERTH_STORAGE_S3_ENDPOINT=" + m.Addr, "BERTH_STORAGE_S3_BUCKET=" + bucket,
		"BERTH_STORAGE_S3_ACCESSKEY=" + MinIOUser, "BERTH_STORAGE_S3_SECRETKEY=" + MinIOSecret,
		"BERTH_STORAGE_S3_PATHSTYLE=true",
	}
}
