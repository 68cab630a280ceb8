package blob_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/berth-registry/berth/blob"
)

func newLimitedFS(t *testing.T, l blob.FSLimits) *blob.FS {
	t.Helper()
	s, err := blob.NewFS(t.TempDir(), slog.New(slog.NewTextHandler(io.Discard, nil)), l)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// Empty sessions cost memory only, so they are bounded: past the bound
// StartUpload says when to retry; sessions that end, get bytes or expire
// make room.
func TestFSEmptySessionBound(t *testing.T) {
	ctx := context.Background()
	const ttl = 2 * time.Second
	s := newLimitedFS(t, blob.FSLimits{MaxEmptyUploads: 3, EmptyUploadTTL: ttl})
	var ids []string
	for range 3 {
		st, err := s.StartUpload(ctx, repo, digest.SHA256)
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, st.ID)
	}
	full := func(when string) {
		t.Helper()
		_, err := s.StartUpload(ctx, repo, digest.SHA256)
		var tm *blob.TooManyUploadsError
		if !errors.As(err, &tm) || tm.Limit != 3 || tm.RetryAfter < time.Second || tm.RetryAfter > ttl {
			t.Fatalf("%s: StartUpload = %v, want *TooManyUploadsError{Limit: 3, RetryAfter in [1s, %s]}", when, err, ttl)
		}
		if !strings.Contains(err.Error(), "retry in") {
			t.Errorf("error %q does not say when to retry", err)
		}
	}
	full("at the bound")

	// A session that receives bytes is on disk and no longer counts; one
	// that is cancelled or finished with PutUpload is gone.
	if _, err := s.Append(ctx, repo, ids[0], 0, strings.NewReader("some")); err != nil {
		t.Fatal(err)
	}
	if err := s.CancelUpload(ctx, repo, ids[1]); err != nil {
		t.Fatal(err)
	}
	if _, err := s.PutUpload(ctx, repo, ids[2], digest.FromString("whole"), 5, strings.NewReader("whole")); err != nil {
		t.Fatal(err)
	}
	if n := blob.EmptySessions(s); n != 0 {
		t.Fatalf("%d empty sessions kept, want 0", n)
	}
	ids = ids[:0]
	for range 3 {
		st, err := s.StartUpload(ctx, repo, digest.SHA256)
		if err != nil {
			t.Fatalf("after making room: %v", err)
		}
		ids = append(ids, st.ID)
	}
	full("at the bound again")

	// Expired sessions are unknown and make room; the one with bytes is
	// not an empty session and does not expire with them.
	time.Sleep(ttl + 100*time.Millisecond)
	for _, id := range ids {
		if _, err := s.UploadStatus(ctx, repo, id); !errors.Is(err, blob.ErrUploadUnknown) {
			t.Errorf("expired session: %v, want ErrUploadUnknown", err)
		}
		if _, err := s.Append(ctx, repo, id, 0, strings.NewReader("late")); !errors.Is(err, blob.ErrUploadUnknown) {
			t.Errorf("append to an expired session: %v, want ErrUploadUnknown", err)
		}
	}
	for range 3 {
		if _, err := s.StartUpload(ctx, repo, digest.SHA256); err != nil {
			t.Fatalf("after expiry: %v", err)
		}
	}
	if n := blob.EmptySessions(s); n != 3 {
		t.Fatalf("%d empty sessions kept, want 3 (the expired ones dropped)", n)
	}
}

// An expired empty session never comes back, even if nothing has swept
// the table since.
func TestFSEmptySessionExpiresUnswept(t *testing.T) {
	ctx := context.Background()
	s := newLimitedFS(t, blob.FSLimits{EmptyUploadTTL: 200 * time.Millisecond})
	st, err := s.StartUpload(ctx, repo, digest.SHA256)
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond)
	if _, err := s.PutUpload(ctx, repo, st.ID, digest.FromString("x"), 1, strings.NewReader("x")); !errors.Is(err, blob.ErrUploadUnknown) {
		t.Fatalf("PutUpload to an expired session: %v, want ErrUploadUnknown", err)
	}
	if _, err := s.Commit(ctx, repo, st.ID, digest.FromString("")); !errors.Is(err, blob.ErrUploadUnknown) {
		t.Fatalf("Commit of an expired session: %v, want ErrUploadUnknown", err)
	}
}

// blockingReader says when it is first read, then blocks until its
// context ends.
type blockingReader struct {
	ctx     context.Context
	reading chan struct{}
}

func (b blockingReader) Read([]byte) (int, error) {
	select {
	case <-b.reading:
	default:
		close(b.reading)
	}
	<-b.ctx.Done()
	return 0, b.ctx.Err()
}

// A request that waits for a session held by a stalled one gives up when
// its own client does; the lock table keeps nothing once requests end.
func TestFSSessionLockWaitEndsWithContext(t *testing.T) {
	ctx := context.Background()
	s := newLimitedFS(t, blob.FSLimits{})
	st, _ := s.StartUpload(ctx, repo, digest.SHA256)
	stallCtx, unstall := context.WithCancel(ctx)
	stalled := make(chan error, 1)
	body := blockingReader{stallCtx, make(chan struct{})}
	go func() {
		_, err := s.Append(stallCtx, repo, st.ID, 0, body)
		stalled <- err
	}()
	<-body.reading
	waitCtx, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
	defer cancel()
	_, err := s.Append(waitCtx, repo, st.ID, 0, bytes.NewReader([]byte("second")))
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("append waiting for a held session: %v, want its context's error", err)
	}
	unstall()
	if err := <-stalled; err == nil {
		t.Fatal("stalled append succeeded")
	}
	if n := blob.LockedSessions(s); n != 0 {
		t.Fatalf("%d session locks left after every request ended", n)
	}
	if _, err := s.Append(ctx, repo, st.ID, 0, strings.NewReader("resumed")); err != nil {
		t.Fatalf("append after the stall: %v", err)
	}
	if _, err := s.Commit(ctx, repo, st.ID, digest.FromString("resumed")); err != nil {
		t.Fatal(err)
	}
}
