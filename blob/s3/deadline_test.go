package s3

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
	"github.com/opencontainers/go-digest"

	"github.com/berth-registry/berth/blob"
)

const testTimeout = 300 * time.Millisecond

// TestDeadlineTransport checks the idle deadline one request at a time: a
// server that stops answering fails the request soon after the timeout
// with blob.ErrUnavailable, while a slow but steady transfer, or a caller
// that reads slowly, is not cut off.
func TestDeadlineTransport(t *testing.T) {
	for _, tc := range []struct {
		name    string
		handler http.HandlerFunc
		// readPause is how long the caller waits between body reads.
		readPause   time.Duration
		unavailable bool
	}{
		{"no answer", func(w http.ResponseWriter, r *http.Request) {
			<-r.Context().Done()
		}, 0, true},
		{"body stalls", func(w http.ResponseWriter, r *http.Request) {
			w.Write([]byte("first"))
			w.(http.Flusher).Flush()
			<-r.Context().Done()
		}, 0, true},
		{"slow but steady", func(w http.ResponseWriter, r *http.Request) {
			for range 12 { // 12 x 100ms: four times the timeout in all
				w.Write([]byte("x"))
				w.(http.Flusher).Flush()
				time.Sleep(testTimeout / 3)
			}
		}, 0, false},
		{"slow reader", func(w http.ResponseWriter, r *http.Request) {
			w.Write(make([]byte, 64<<10))
		}, 2 * testTimeout, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := httptest.NewServer(tc.handler)
			defer srv.Close()
			c := &http.Client{Transport: &deadlineTransport{base: http.DefaultTransport.(*http.Transport).Clone(), timeout: testTimeout}}
			start := time.Now()
			err := get(c, srv.URL, tc.readPause)
			took := time.Since(start)
			if tc.unavailable {
				if !errors.Is(err, blob.ErrUnavailable) || !strings.Contains(err.Error(), "storage.s3.timeout") {
					t.Fatalf("got %v, want an error matching blob.ErrUnavailable that names storage.s3.timeout", err)
				}
				if took > 3*testTimeout {
					t.Errorf("failed after %s with a %s timeout", took, testTimeout)
				}
				return
			}
			if err != nil {
				t.Fatalf("a transfer that kept moving failed: %v", err)
			}
		})
	}
}

func get(c *http.Client, url string, pause time.Duration) error {
	resp, err := c.Get(url)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	buf := make([]byte, 32<<10)
	for {
		time.Sleep(pause)
		if _, err := resp.Body.Read(buf); err == io.EOF {
			return nil
		} else if err != nil {
			return err
		}
	}
}

// TestDeadlineThroughMinioClient checks what the driver sees through
// minio-go, retries included: a refused connection and a server that
// never answers both come back as blob.ErrUnavailable, in bounded time,
// while a caller's own cancellation does not.
func TestDeadlineThroughMinioClient(t *testing.T) {
	hang := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { <-r.Context().Done() }))
	defer hang.Close()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	refused := l.Addr().String()
	l.Close()

	for _, tc := range []struct {
		name, endpoint string
		cancelAfter    time.Duration
		unavailable    bool
	}{
		{"stopped server", strings.TrimPrefix(hang.URL, "http://"), 0, true},
		{"nothing listening", refused, 0, true},
		{"caller gave up", strings.TrimPrefix(hang.URL, "http://"), testTimeout / 3, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tr, err := minio.DefaultTransport(false)
			if err != nil {
				t.Fatal(err)
			}
			c, err := minio.New(tc.endpoint, &minio.Options{
				Creds:      credentials.NewStaticV4("k", "s", ""),
				Transport:  &deadlineTransport{base: tr, timeout: testTimeout},
				MaxRetries: maxRetries,
				Region:     "us-east-1",
			})
			if err != nil {
				t.Fatal(err)
			}
			s := &Store{c: c, bucket: "berth"}
			ctx := context.Background()
			if tc.cancelAfter > 0 {
				var cancel context.CancelFunc
				ctx, cancel = context.WithTimeout(ctx, tc.cancelAfter)
				defer cancel()
			}
			start := time.Now()
			_, err = s.Stat(ctx, digest.Digest("sha256:"+strings.Repeat("a", 64)))
			took := time.Since(start)
			if got := errors.Is(err, blob.ErrUnavailable); got != tc.unavailable {
				t.Fatalf("Stat: %v; matches blob.ErrUnavailable: %v, want %v", err, got, tc.unavailable)
			}
			if limit := maxRetries*testTimeout + 2*time.Second; took > limit {
				t.Errorf("Stat took %s, more than %s", took, limit)
			}
		})
	}
}
