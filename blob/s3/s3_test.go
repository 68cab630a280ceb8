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
	"slices"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"

	"github.com/berth-registry/berth/blob"
	"github.com/berth-registry/berth/blob/blobtest"
	"github.com/berth-registry/berth/blob/s3"
)

const (
	// repo is the repository the tests start upload sessions in.
	repo         = "team-a/app"
	rootUser     = "berth"
	rootPassword = "berth-secret"
)

// server is a real MinIO process for one test, plus a plain client to look
// into the bucket the way an operator would.
type server struct {
	addr string
	raw  *minio.Client
}

// startMinIO runs ../../bin/minio (or $BERTH_MINIO) on a free loopback
// port with a temp dir. A missing binary is a failure, not a skip.
func startMinIO(t *testing.T) *server {
	t.Helper()
	bin := os.Getenv("BERTH_MINIO")
	if bin == "" {
		bin, _ = filepath.Abs("../../bin/minio")
	}
	if _, err := os.Stat(bin); err != nil {
		t.Fatalf("MinIO binary not found at %s (%v): run `make tools` (or set BERTH_MINIO)", bin, err)
	}
	addr, console := freeAddr(t), freeAddr(t)
	cmd := exec.Command(bin, "server", t.TempDir(), "--address", addr, "--console-address", console, "--quiet")
	cmd.Env = append(os.Environ(), "MINIO_ROOT_USER="+rootUser, "MINIO_ROOT_PASSWORD="+rootPassword, "MINIO_BROWSER=off")
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	logs := &strings.Builder{}
	cmd.Stdout, cmd.Stderr = logs, logs
	if err := cmd.Start(); err != nil {
		t.Fatalf("start MinIO: %v", err)
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		<-exited
	})
	deadline := time.Now().Add(60 * time.Second)
	for {
		resp, err := http.Get("http://" + addr + "/minio/health/live")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				break
			}
		}
		select {
		case <-exited:
			t.Fatalf("MinIO exited: %s", logs)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("MinIO did not come up on %s: %v\n%s", addr, err, logs)
		}
		time.Sleep(100 * time.Millisecond)
	}
	raw, err := minio.New(addr, &minio.Options{Creds: credentials.NewStaticV4(rootUser, rootPassword, "")})
	if err != nil {
		t.Fatal(err)
	}
	// Live is not ready: S3 calls fail with "Server not initialized yet"
	// for a moment after the health endpoint answers.
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		_, err := raw.ListBuckets(ctx)
		cancel()
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("MinIO on %s does not answer S3 requests: %v\n%s", addr, err, logs)
		}
		time.Sleep(100 * time.Millisecond)
	}
	return &server{addr: addr, raw: raw}
}

func freeAddr(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

func newBucket() string {
	b := make([]byte, 6)
	rand.Read(b)
	return "test-" + hex.EncodeToString(b)
}

func logger() *slog.Logger { return slog.New(slog.DiscardHandler) }

// store opens a Store on bucket through endpoint (the server, or a proxy
// in front of it).
func (srv *server) store(t *testing.T, endpoint, bucket, prefix string) *s3.Store {
	t.Helper()
	s, err := s3.New(context.Background(), s3.Config{
		Endpoint: endpoint, Bucket: bucket, Prefix: prefix,
		AccessKey: rootUser, SecretKey: rootPassword, PathStyle: true,
	}, logger())
	if err != nil {
		t.Fatalf("s3.New: %v", err)
	}
	return s
}

// tombstones returns the keys of ended sessions' state objects (which
// PurgeUploads removes once old) and the rest of keys.
func (srv *server) tombstones(t *testing.T, bucket string, keys []string) (ended, rest []string) {
	t.Helper()
	for _, k := range keys {
		if strings.HasPrefix(k, "uploads/") && strings.HasSuffix(k, "/state") {
			obj, err := srv.raw.GetObject(context.Background(), bucket, k, minio.GetObjectOptions{})
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(obj)
			obj.Close()
			if strings.Contains(string(b), `"cancelled":true`) {
				ended = append(ended, k)
				continue
			}
		}
		rest = append(rest, k)
	}
	return ended, rest
}

// keys lists every object in the bucket.
func (srv *server) keys(t *testing.T, bucket string) []string {
	t.Helper()
	var keys []string
	for o := range srv.raw.ListObjectsIter(context.Background(), bucket, minio.ListObjectsOptions{Recursive: true}) {
		if o.Err != nil {
			t.Fatalf("list %s: %v", bucket, o.Err)
		}
		keys = append(keys, o.Key)
	}
	slices.Sort(keys)
	return keys
}

func TestS3Conformance(t *testing.T) {
	srv := startMinIO(t)
	blobtest.Run(t, func(t *testing.T) (blob.Store, blob.Store) {
		bucket := newBucket()
		// Two nodes of one cluster; the prefix shows shared buckets work.
		return srv.store(t, srv.addr, bucket, "registry"), srv.store(t, "http://"+srv.addr, bucket, "/registry/")
	})
}

func TestNew(t *testing.T) {
	srv := startMinIO(t)
	ctx := context.Background()
	t.Run("creates the bucket, and finds it the next time", func(t *testing.T) {
		bucket := newBucket()
		srv.store(t, srv.addr, bucket, "")
		if ok, err := srv.raw.BucketExists(ctx, bucket); !ok || err != nil {
			t.Fatalf("bucket %s after New: %v, %v", bucket, ok, err)
		}
		srv.store(t, srv.addr, bucket, "")
	})
	closed := freeAddr(t)
	for _, tc := range []struct {
		name string
		cfg  s3.Config
		want string // in the error: what to fix
	}{
		{"no endpoint", s3.Config{Bucket: "b"}, "storage.s3.endpoint"},
		{"bad endpoint", s3.Config{Endpoint: "ftp://x", Bucket: "b"}, "http or https"},
		{"no bucket", s3.Config{Endpoint: srv.addr}, "storage.s3.bucket"},
		{"bad bucket name", s3.Config{Endpoint: srv.addr, Bucket: "No_Such"}, "storage.s3.bucket"},
		{"wrong secret", s3.Config{Endpoint: srv.addr, Bucket: newBucket(), AccessKey: rootUser, SecretKey: "nope", PathStyle: true}, "credentials"},
		{"nothing listening", s3.Config{Endpoint: closed, Bucket: newBucket(), PathStyle: true}, "storage.s3.endpoint"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			defer cancel()
			if tc.cfg.AccessKey == "" && tc.cfg.Endpoint == srv.addr {
				tc.cfg.AccessKey, tc.cfg.SecretKey = rootUser, rootPassword
			}
			_, err := s3.New(ctx, tc.cfg, logger())
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("New: %v; want an error that mentions %q", err, tc.want)
			}
		})
	}
}

// proxy is a TCP relay in front of MinIO that counts the bytes it carries,
// to see what a node really moves.
type proxy struct {
	addr     string
	up, down atomic.Int64 // to and from MinIO
}

func startProxy(t *testing.T, target string) *proxy {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	p := &proxy{addr: l.Addr().String()}
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go p.relay(c, target)
		}
	}()
	return p
}

func (p *proxy) relay(c net.Conn, target string) {
	defer c.Close()
	s, err := net.Dial("tcp", target)
	if err != nil {
		return
	}
	defer s.Close()
	done := make(chan struct{}, 2)
	pump := func(dst, src net.Conn, n *atomic.Int64) {
		io.Copy(countingWriter{dst, n}, src)
		dst.Close()
		src.Close()
		done <- struct{}{}
	}
	go pump(s, c, &p.up)
	go pump(c, s, &p.down)
	<-done
	<-done
}

type countingWriter struct {
	w io.Writer
	n *atomic.Int64
}

func (c countingWriter) Write(b []byte) (int, error) {
	n, err := c.w.Write(b)
	c.n.Add(int64(n))
	return n, err
}

// settle waits until the proxy's counters stop moving.
func (p *proxy) settle() (up, down int64) {
	up, down = p.up.Load(), p.down.Load()
	for {
		time.Sleep(200 * time.Millisecond)
		u, d := p.up.Load(), p.down.Load()
		if u == up && d == down {
			return up, down
		}
		up, down = u, d
	}
}

func (p *proxy) String() string {
	return fmt.Sprintf("%d bytes up, %d down", p.up.Load(), p.down.Load())
}
