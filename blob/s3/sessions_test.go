package s3_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/opencontainers/go-digest"

	"github.com/berth-registry/berth/blob"
)

// gated yields its data only once released, after telling that the first
// Read began, i.e. the Append that reads it has loaded the session.
type gated struct {
	r        io.Reader
	started  chan struct{}
	release  chan struct{}
	didStart bool
}

func (g *gated) Read(p []byte) (int, error) {
	if !g.didStart {
		g.didStart = true
		close(g.started)
		<-g.release
	}
	return g.r.Read(p)
}

func TestSessions(t *testing.T) {
	srv := startMinIO(t)
	ctx := context.Background()
	twoNodes := func(t *testing.T) (blob.Store, blob.Store, string) {
		bucket := newBucket()
		return srv.store(t, srv.addr, bucket, ""), srv.store(t, srv.addr, bucket, ""), bucket
	}

	// Node a reads the session and starts a chunk; meanwhile node b appends
	// at the same offset and wins. a's state write must be refused by the
	// conditional write (If-Match), not overwrite b's.
	t.Run("append that loses a race is refused", func(t *testing.T) {
		a, b, _ := twoNodes(t)
		st, err := a.StartUpload(ctx, repo, digest.SHA256)
		if err != nil {
			t.Fatal(err)
		}
		slow := &gated{r: strings.NewReader("aaaaaaaaaa"), started: make(chan struct{}), release: make(chan struct{})}
		errc := make(chan error, 1)
		go func() {
			_, err := a.Append(ctx, repo, st.ID, 0, slow)
			errc <- err
		}()
		<-slow.started
		if n, err := b.Append(ctx, repo, st.ID, 0, strings.NewReader("bbbb")); err != nil || n != 4 {
			t.Fatalf("b's append: %d, %v", n, err)
		}
		close(slow.release)
		var oe *blob.OffsetError
		if err := <-errc; !errors.As(err, &oe) || oe.Current != 4 {
			t.Fatalf("a's late append: %v; want OffsetError{Current: 4}", err)
		}
		if got, err := a.UploadStatus(ctx, repo, st.ID); err != nil || got.Offset != 4 {
			t.Fatalf("status: %+v, %v; want offset 4", got, err)
		}
		d := digest.FromString("bbbb")
		if _, err := a.Commit(ctx, repo, st.ID, d); err != nil {
			t.Fatalf("commit of b's bytes: %v", err)
		}
		f, _, err := b.Open(ctx, d)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		if got, _ := io.ReadAll(f); string(got) != "bbbb" {
			t.Fatalf("blob holds %q", got)
		}
	})

	// The push path that matters most (POST, then one PUT with the whole
	// blob) writes the blob and nothing else, and works across nodes,
	// including one started after the session was.
	t.Run("empty session costs no object and any node finishes it", func(t *testing.T) {
		a, _, bucket := twoNodes(t)
		st, err := a.StartUpload(ctx, repo, digest.SHA256)
		if err != nil {
			t.Fatal(err)
		}
		if keys := srv.keys(t, bucket); !slices.Equal(keys, []string{"meta/upload-id-key"}) {
			t.Fatalf("after StartUpload the bucket holds %v", keys)
		}
		late := srv.store(t, srv.addr, bucket, "")
		if got, err := late.UploadStatus(ctx, repo, st.ID); err != nil || got.Offset != 0 || got.Algorithm != digest.SHA256 {
			t.Fatalf("status on a node started later: %+v, %v", got, err)
		}
		d := digest.FromString("whole blob")
		if _, err := late.PutUpload(ctx, repo, st.ID, d, 10, strings.NewReader("whole blob")); err != nil {
			t.Fatal(err)
		}
		want := []string{"blobs/sha256/" + d.Encoded()[:2] + "/" + d.Encoded(), "meta/upload-id-key"}
		if keys := srv.keys(t, bucket); !slices.Equal(keys, want) {
			t.Fatalf("after PutUpload the bucket holds %v, want %v", keys, want)
		}
		// Another bucket has another key: its nodes do not know this ID.
		if _, err := srv.store(t, srv.addr, newBucket(), "").UploadStatus(ctx, repo, st.ID); !errors.Is(err, blob.ErrUploadUnknown) {
			t.Fatalf("ID from another bucket: %v, want ErrUploadUnknown", err)
		}
	})

	t.Run("of many appends at one offset exactly one wins", func(t *testing.T) {
		a, b, _ := twoNodes(t)
		st, _ := a.StartUpload(ctx, repo, digest.SHA256)
		const n = 8
		var wg sync.WaitGroup
		errs := make([]error, n)
		for i := range n {
			wg.Go(func() {
				_, errs[i] = []blob.Store{a, b}[i%2].Append(ctx, repo, st.ID, 0, bytes.NewReader(bytes.Repeat([]byte{byte('a' + i)}, 1000)))
			})
		}
		wg.Wait()
		winner := -1
		for i, err := range errs {
			var oe *blob.OffsetError
			switch {
			case err == nil && winner < 0:
				winner = i
			case err == nil:
				t.Fatalf("appends %d and %d both succeeded", winner, i)
			case !errors.As(err, &oe) || oe.Current != 1000:
				t.Fatalf("append %d: %v; want OffsetError{Current: 1000}", i, err)
			}
		}
		if winner < 0 {
			t.Fatal("no append succeeded")
		}
		want := bytes.Repeat([]byte{byte('a' + winner)}, 1000)
		if _, err := b.Commit(ctx, repo, st.ID, digest.FromBytes(want)); err != nil {
			t.Fatalf("commit of the winner's bytes: %v", err)
		}
	})

	// The common push: POST on one node, then a PUT with the whole body on
	// another (rule 7), including an empty blob.
	t.Run("session started on one node, finished on another", func(t *testing.T) {
		a, b, _ := twoNodes(t)
		for _, body := range []string{"whole blob in the closing PUT", ""} {
			st, err := a.StartUpload(ctx, repo, digest.SHA256)
			if err != nil {
				t.Fatal(err)
			}
			if got, err := b.UploadStatus(ctx, repo, st.ID); err != nil || got.Offset != 0 || got.Algorithm != digest.SHA256 || !got.Started.Equal(st.Started) {
				t.Fatalf("status on b: %+v, %v; want %+v", got, err, st)
			}
			if _, err := b.Append(ctx, repo, st.ID, 0, strings.NewReader(body)); err != nil {
				t.Fatal(err)
			}
			if info, err := b.Commit(ctx, repo, st.ID, digest.FromString(body)); err != nil || info.Size != int64(len(body)) {
				t.Fatalf("commit on b: %+v, %v", info, err)
			}
			if _, err := a.Stat(ctx, digest.FromString(body)); err != nil {
				t.Fatal(err)
			}
		}
	})

	// Sessions written before sessions were bound to a repository have no
	// repository in their state: they are refused, not usable from any
	// repository (sessionid.go says why).
	t.Run("sessions from before the repository binding are refused", func(t *testing.T) {
		a, _, bucket := twoNodes(t)
		signed, _ := a.StartUpload(ctx, repo, digest.SHA256)
		unbound := `{"offset":0,"algorithm":"sha256","started":"` + time.Now().UTC().Format(time.RFC3339) + `","chunks":[]}`
		for _, id := range []string{strings.Repeat("ab", 16), signed.ID} {
			if _, err := srv.raw.PutObject(ctx, bucket, "uploads/"+id+"/state", strings.NewReader(unbound), int64(len(unbound)), minio.PutObjectOptions{}); err != nil {
				t.Fatal(err)
			}
			for _, r := range []string{repo, ""} {
				if _, err := a.UploadStatus(ctx, r, id); !errors.Is(err, blob.ErrUploadUnknown) {
					t.Errorf("status of unbound session %s as %q: %v, want ErrUploadUnknown", id, r, err)
				}
				if _, err := a.Append(ctx, r, id, 0, strings.NewReader("x")); !errors.Is(err, blob.ErrUploadUnknown) {
					t.Errorf("append to unbound session %s as %q: %v, want ErrUploadUnknown", id, r, err)
				}
				if _, err := a.Commit(ctx, r, id, digest.FromString("")); !errors.Is(err, blob.ErrUploadUnknown) {
					t.Errorf("commit of unbound session %s as %q: %v, want ErrUploadUnknown", id, r, err)
				}
			}
		}
	})

	// A damaged state cannot say whose session it was; its signed ID can.
	t.Run("a damaged state is cancelled only from its own repository", func(t *testing.T) {
		a, _, bucket := twoNodes(t)
		st, _ := a.StartUpload(ctx, repo, digest.SHA256)
		if _, err := srv.raw.PutObject(ctx, bucket, "uploads/"+st.ID+"/state", strings.NewReader("{torn"), 5, minio.PutObjectOptions{}); err != nil {
			t.Fatal(err)
		}
		if err := a.CancelUpload(ctx, "team-b/app", st.ID); !errors.Is(err, blob.ErrUploadUnknown) {
			t.Fatalf("cancel from another repository: %v, want ErrUploadUnknown", err)
		}
		if err := a.CancelUpload(ctx, repo, st.ID); err != nil {
			t.Fatalf("cancel from its own repository: %v", err)
		}
	})

	t.Run("damaged state can be cancelled", func(t *testing.T) {
		a, _, bucket := twoNodes(t)
		st, _ := a.StartUpload(ctx, repo, digest.SHA256)
		if _, err := srv.raw.PutObject(ctx, bucket, "uploads/"+st.ID+"/state", strings.NewReader("{torn"), 5, minio.PutObjectOptions{}); err != nil {
			t.Fatal(err)
		}
		if _, err := a.UploadStatus(ctx, repo, st.ID); err == nil || !strings.Contains(err.Error(), "cancel it") {
			t.Fatalf("status of a damaged session: %v; want advice to cancel", err)
		}
		if _, err := a.Append(ctx, repo, st.ID, 0, strings.NewReader("x")); err == nil {
			t.Fatal("append to a damaged session succeeded")
		}
		if err := a.CancelUpload(ctx, repo, st.ID); err != nil {
			t.Fatalf("cancel: %v", err)
		}
		if _, err := a.UploadStatus(ctx, repo, st.ID); !errors.Is(err, blob.ErrUploadUnknown) {
			t.Fatalf("status after cancel: %v", err)
		}
		if ended, rest := srv.tombstones(t, bucket, srv.keys(t, bucket)); len(ended) != 1 || !slices.Equal(rest, []string{"meta/upload-id-key"}) {
			t.Fatalf("left behind: tombstones %v and %v; want one tombstone and the key", ended, rest)
		}
	})

	t.Run("purge removes abandoned sessions and debris, nothing newer", func(t *testing.T) {
		a, b, bucket := twoNodes(t)
		s := a.(interface {
			PurgeUploads(context.Context, time.Time) (int, error)
		})
		old, _ := a.StartUpload(ctx, repo, digest.SHA256)
		if _, err := b.Append(ctx, repo, old.ID, 0, strings.NewReader("abandoned")); err != nil {
			t.Fatal(err)
		}
		oldEmpty, _ := b.StartUpload(ctx, repo, digest.SHA512)
		debris := []string{"tmp/0123", "uploads/" + strings.Repeat("e", 32) + "/chunk-00000000000000000000-deadbeef"}
		for _, k := range debris {
			if _, err := srv.raw.PutObject(ctx, bucket, k, strings.NewReader("x"), 1, minio.PutObjectOptions{}); err != nil {
				t.Fatal(err)
			}
		}
		time.Sleep(20 * time.Millisecond)
		cutoff := time.Now()
		time.Sleep(20 * time.Millisecond)
		fresh, _ := a.StartUpload(ctx, repo, digest.SHA256)
		if _, err := a.Append(ctx, repo, fresh.ID, 0, strings.NewReader("in progress")); err != nil {
			t.Fatal(err)
		}
		if _, err := srv.raw.PutObject(ctx, bucket, "tmp/4567", strings.NewReader("x"), 1, minio.PutObjectOptions{}); err != nil {
			t.Fatal(err)
		}

		n, err := s.PurgeUploads(ctx, cutoff)
		if err != nil || n != 1 {
			t.Fatalf("purge: %d, %v; want 1 session", n, err)
		}
		if _, err := b.UploadStatus(ctx, repo, old.ID); !errors.Is(err, blob.ErrUploadUnknown) {
			t.Fatalf("abandoned session %s: %v", old.ID, err)
		}
		// An empty session holds nothing to purge: it has no object, and
		// its signed ID expires on its own (TestEmptySessionExpiry).
		if st, err := b.UploadStatus(ctx, repo, oldEmpty.ID); err != nil || st.Offset != 0 {
			t.Fatalf("empty session %s after purge: %+v, %v", oldEmpty.ID, st, err)
		}
		if _, err := b.Append(ctx, repo, fresh.ID, 11, strings.NewReader(", still")); err != nil {
			t.Fatalf("the fresh session did not survive: %v", err)
		}
		keys := srv.keys(t, bucket)
		for _, k := range debris {
			if slices.Contains(keys, k) {
				t.Errorf("debris %s survived", k)
			}
		}
		if !slices.Contains(keys, "tmp/4567") {
			t.Error("a tmp object newer than the cutoff was removed")
		}
		for _, k := range keys {
			// The abandoned session's tombstone stays until its ID expires.
			if k != "tmp/4567" && k != "meta/upload-id-key" && k != "uploads/"+old.ID+"/state" && !strings.HasPrefix(k, "uploads/"+fresh.ID+"/") {
				t.Errorf("unexpected object left: %s", k)
			}
		}
	})
}
