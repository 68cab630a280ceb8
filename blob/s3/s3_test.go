package s3_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/berth-registry/berth/blob"
	"github.com/berth-registry/berth/blob/blobtest"
	"github.com/berth-registry/berth/blob/s3"
)

// startMinIO runs a real MinIO server for the test. A missing binary is a
// failure, not a skip: run `make tools`.
func startMinIO(t *testing.T) string {
	bin := os.Getenv("BERTH_MINIO")
	if bin == "" {
		bin, _ = filepath.Abs("../../bin/minio")
	}
	if _, err := os.Stat(bin); err != nil {
		t.Fatalf("MinIO binary not found at %s: run `make tools`", bin)
	}
	port := func() int {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		return l.Addr().(*net.TCPAddr).Port
	}
	addr := fmt.Sprintf("127.0.0.1:%d", port())
	cmd := exec.Command(bin, "server", t.TempDir(), "--address", addr, "--console-address", fmt.Sprintf("127.0.0.1:%d", port()), "--quiet")
	cmd.Env = append(os.Environ(), "MINIO_ROOT_USER=berth", "MINIO_ROOT_PASSWORD=berth-secret", "MINIO_BROWSER=off")
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL); cmd.Wait() })
	deadline := time.Now().Add(60 * time.Second)
	for {
		resp, err := http.Get("http://" + addr + "/minio/health/live")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return addr
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("MinIO did not come up on %s: %v", addr, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func TestS3Conformance(t *testing.T) {
	addr := startMinIO(t)
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	blobtest.Run(t, func(t *testing.T) (blob.Store, blob.Store) {
		b := make([]byte, 4)
		rand.Read(b)
		cfg := s3.Config{Endpoint: addr, Bucket: "test-" + hex.EncodeToString(b), AccessKey: "berth", SecretKey: "berth-secret", PathStyle: true}
		a, err := s3.New(context.Background(), cfg, logger)
		if err != nil {
			t.Fatal(err)
		}
		c, err := s3.New(context.Background(), cfg, logger)
		if err != nil {
			t.Fatal(err)
		}
		return a, c
	})
}
