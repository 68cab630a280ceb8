package blobtest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/berth-registry/berth/blob"
)

// stalled yields head, then blocks until release is closed, then fails
// like a connection whose read deadline passed.
type stalled struct {
	head    []byte
	sent    chan struct{} // closed once head has been read
	release chan struct{}
	done    bool
}

var errStalled = errors.New("client stopped sending")

func (s *stalled) Read(p []byte) (int, error) {
	if len(s.head) > 0 {
		n := copy(p, s.head)
		s.head = s.head[n:]
		return n, nil
	}
	if !s.done {
		s.done = true
		close(s.sent)
	}
	<-s.release
	return 0, errStalled
}

// testStalledAppend: an Append whose body stops arriving holds up no other
// session, however many there are; when it fails, its session is still at
// its old offset, with none of the partial chunk visible, and continues.
func testStalledAppend(t *testing.T, open Open, data []byte) {
	ctx := context.Background()
	a, b := open(t)
	st, err := a.StartUpload(ctx, repo, digest.SHA256)
	if err != nil {
		t.Fatal(err)
	}
	upload(t, []blob.Store{a}, st.ID, data, []int{100})
	body := &stalled{head: bytes.Repeat([]byte("x"), 1024), sent: make(chan struct{}), release: make(chan struct{})}
	appended := make(chan error, 1)
	go func() {
		_, err := b.Append(ctx, repo, st.ID, 100, body)
		appended <- err
	}()
	defer close(body.release)
	<-body.sent

	// Many more sessions than the filesystem driver once had lock
	// stripes (64): with one stripe held, some of them would wait.
	start := time.Now()
	for i := range 128 {
		s := []blob.Store{a, b}[i%2]
		other, err := s.StartUpload(ctx, repo, digest.SHA256)
		if err != nil {
			t.Fatal(err)
		}
		chunk := []byte(fmt.Sprintf("blob %d beside a stalled upload", i))
		done := make(chan error, 1)
		go func() {
			if _, err := s.Append(ctx, repo, other.ID, 0, bytes.NewReader(chunk)); err != nil {
				done <- err
				return
			}
			_, err := s.Commit(ctx, repo, other.ID, digest.FromBytes(chunk))
			done <- err
		}()
		select {
		case err := <-done:
			if err != nil {
				t.Fatalf("upload %d beside a stalled one: %v", i, err)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("upload %d waited for the stalled one (%s since the first)", i, time.Since(start))
		}
	}

	body.release <- struct{}{}
	if err := <-appended; !errors.Is(err, errStalled) {
		t.Fatalf("stalled Append: %v, want the body's error", err)
	}
	for _, s := range []blob.Store{a, b} {
		if got, err := s.UploadStatus(ctx, repo, st.ID); err != nil || got.Offset != 100 {
			t.Fatalf("after the stalled chunk failed: %+v, %v; want offset 100", got, err)
		}
	}
	upload(t, []blob.Store{a, b}, st.ID, data, []int{400})
	if _, err := b.Commit(ctx, repo, st.ID, digest.FromBytes(data[:500])); err != nil {
		t.Fatalf("commit after the stall: %v", err)
	}
	readBack(t, a, digest.FromBytes(data[:500]), data[:500])
}
