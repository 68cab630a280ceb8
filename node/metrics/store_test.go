package metrics

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"testing"

	"github.com/opencontainers/go-digest"

	"github.com/berth-registry/berth/blob"
	"github.com/berth-registry/berth/blob/blobtest"
)

func newFS(t *testing.T, root string) *blob.FS {
	t.Helper()
	fs, err := blob.NewFS(root, nil, blob.FSLimits{})
	if err != nil {
		t.Fatal(err)
	}
	return fs
}

// The instrumented store is still a conforming store.
func TestStoreConformance(t *testing.T) {
	m := New("test")
	blobtest.Run(t, func(t *testing.T) (blob.Store, blob.Store) {
		root := t.TempDir()
		return m.Store(newFS(t, root), "filesystem"), m.Store(newFS(t, root), "filesystem")
	})
	// Both "nodes" fed the same series; every action was timed.
	for _, a := range actionNames {
		if n, ok := sample(t, m, "registry_storage_action_seconds", "driver", "filesystem", "action", a); !ok || n == 0 {
			t.Errorf("action %s: %v observations", a, n)
		}
	}
}

// failing is a driver whose every call fails with err.
type failing struct {
	blob.Store
	err error
}

func (f failing) Stat(context.Context, digest.Digest) (blob.Info, error) { return blob.Info{}, f.err }
func (f failing) Put(_ context.Context, _ digest.Digest, _ int64, r io.Reader) (blob.Info, error) {
	if _, err := io.ReadAll(r); err != nil {
		return blob.Info{}, err
	}
	return blob.Info{}, f.err
}

type brokenBody struct{}

func (brokenBody) Read([]byte) (int, error) { return 0, errors.New("connection reset by client") }

// Only the driver's own failures count as errors, not answers about the
// request or a failing client.
func TestStoreErrors(t *testing.T) {
	ctx := context.Background()
	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	d := digest.FromString("x")
	for _, tc := range []struct {
		name   string
		err    error
		call   func(s blob.Store) error
		action string
		count  bool
	}{
		{"stat not found", blob.ErrNotFound, func(s blob.Store) error { _, err := s.Stat(ctx, d); return err }, "stat", false},
		{"stat io error", errors.New("disk on fire"), func(s blob.Store) error { _, err := s.Stat(ctx, d); return err }, "stat", true},
		{"stat of a cancelled request", errors.New("disk on fire"), func(s blob.Store) error { _, err := s.Stat(cancelled, d); return err }, "stat", false},
		{"put digest mismatch", blob.ErrDigestMismatch, func(s blob.Store) error {
			_, err := s.Put(ctx, d, 1, bytes.NewReader([]byte("y")))
			return err
		}, "put", false},
		{"put s3 down", errors.New("503 slow down"), func(s blob.Store) error {
			_, err := s.Put(ctx, d, 1, bytes.NewReader([]byte("x")))
			return err
		}, "put", true},
		{"put with a broken body", errors.New("unused"), func(s blob.Store) error {
			_, err := s.Put(ctx, d, 1, brokenBody{})
			return err
		}, "put", false},
		{"offset error", &blob.OffsetError{Current: 3}, func(s blob.Store) error { _, err := s.Stat(ctx, d); return err }, "stat", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := New("test")
			s := m.Store(failing{err: tc.err}, "s3")
			if err := tc.call(s); err == nil {
				t.Fatal("the call succeeded")
			}
			n, _ := sample(t, m, "berth_storage_action_errors_total", "driver", "s3", "action", tc.action)
			if want := map[bool]float64{true: 1, false: 0}[tc.count]; n != want {
				t.Errorf("errors{action=%s} = %v, want %v", tc.action, n, want)
			}
			if obs, _ := sample(t, m, "registry_storage_action_seconds", "driver", "s3", "action", tc.action); obs != 1 {
				t.Errorf("%v observations, want 1", obs)
			}
		})
	}
}

// Open hands back the driver's own reader, so the filesystem's *os.File
// keeps sendfile and S3's Streamer its block copy.
func TestStoreOpenKeepsReader(t *testing.T) {
	m := New("test")
	s := m.Store(newFS(t, t.TempDir()), "filesystem")
	ctx := context.Background()
	d := digest.FromString("hello")
	if _, err := s.Put(ctx, d, 5, bytes.NewReader([]byte("hello"))); err != nil {
		t.Fatal(err)
	}
	r, _, err := s.Open(ctx, d)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if _, ok := r.(*os.File); !ok {
		t.Fatalf("Open returned %T, want the driver's *os.File", r)
	}
}
