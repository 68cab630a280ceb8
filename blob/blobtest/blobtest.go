// Package blobtest is a conformance suite every blob.Store driver runs, so
// the filesystem and S3 drivers behave the same to the registry.
package blobtest

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"

	"github.com/berth-registry/berth/blob"
)

// Open returns two Store instances over the same backend (two "nodes").
type Open func(t *testing.T) (a, b blob.Store)

func random(n int) []byte {
	b := make([]byte, n)
	rand.Read(b)
	return b
}

// Run runs the suite.
func Run(t *testing.T, open Open) {
	ctx := context.Background()
	t.Run("PutStatOpenRangeDelete", func(t *testing.T) {
		s, _ := open(t)
		data := random(100_000)
		d := digest.FromBytes(data)
		if _, err := s.Stat(ctx, d); !errors.Is(err, blob.ErrNotFound) {
			t.Fatalf("stat before put: %v", err)
		}
		info, err := s.Put(ctx, d, int64(len(data)), bytes.NewReader(data))
		if err != nil || info.Size != int64(len(data)) {
			t.Fatalf("put: %v %+v", err, info)
		}
		if info, err := s.Stat(ctx, d); err != nil || info.Size != int64(len(data)) {
			t.Fatalf("stat: %v %+v", err, info)
		}
		f, _, err := s.Open(ctx, d)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := f.Seek(500, io.SeekStart); err != nil {
			t.Fatal(err)
		}
		part := make([]byte, 100)
		if _, err := io.ReadFull(f, part); err != nil || !bytes.Equal(part, data[500:600]) {
			t.Fatalf("ranged read: %v", err)
		}
		f.Close()
		// Putting the same content again is fine and idempotent.
		if _, err := s.Put(ctx, d, -1, bytes.NewReader(data)); err != nil {
			t.Fatalf("re-put: %v", err)
		}
		if err := s.Delete(ctx, d); err != nil {
			t.Fatal(err)
		}
		if _, _, err := s.Open(ctx, d); !errors.Is(err, blob.ErrNotFound) {
			t.Fatalf("open after delete: %v", err)
		}
	})
	t.Run("PutRejectsWrongContent", func(t *testing.T) {
		s, _ := open(t)
		data := random(5000)
		d := digest.FromBytes(data)
		if _, err := s.Put(ctx, d, int64(len(data)), bytes.NewReader(random(5000))); !errors.Is(err, blob.ErrDigestMismatch) {
			t.Fatalf("wrong content: %v", err)
		}
		if _, err := s.Put(ctx, d, 10, bytes.NewReader(data)); !errors.Is(err, blob.ErrSizeMismatch) {
			t.Fatalf("wrong size: %v", err)
		}
		if _, err := s.Stat(ctx, d); !errors.Is(err, blob.ErrNotFound) {
			t.Fatalf("a failed put left a blob behind: %v", err)
		}
	})
	t.Run("ChunkedUploadAcrossInstances", func(t *testing.T) {
		a, b := open(t)
		data := random(3_000_000)
		st, err := a.StartUpload(ctx, digest.SHA256)
		if err != nil {
			t.Fatal(err)
		}
		stores := []blob.Store{a, b}
		off := int64(0)
		for i, size := range []int{1_000_000, 1, 999_999, 1_000_000} {
			s := stores[i%2]
			n, err := s.Append(ctx, st.ID, off, bytes.NewReader(data[off:off+int64(size)]))
			if err != nil {
				t.Fatalf("chunk %d: %v", i, err)
			}
			off = n
		}
		if got, _ := b.UploadStatus(ctx, st.ID); got.Offset != int64(len(data)) {
			t.Fatalf("offset %d, want %d", got.Offset, len(data))
		}
		var oe *blob.OffsetError
		if _, err := a.Append(ctx, st.ID, 5, strings.NewReader("x")); !errors.As(err, &oe) || oe.Current != int64(len(data)) {
			t.Fatalf("out of order chunk: %v", err)
		}
		d := digest.FromBytes(data)
		info, err := b.Commit(ctx, st.ID, d)
		if err != nil || info.Size != int64(len(data)) {
			t.Fatalf("commit: %v %+v", err, info)
		}
		f, _, err := a.Open(ctx, d)
		if err != nil {
			t.Fatal(err)
		}
		got, _ := io.ReadAll(f)
		f.Close()
		if !bytes.Equal(got, data) {
			t.Fatal("committed bytes differ")
		}
		if _, err := a.UploadStatus(ctx, st.ID); !errors.Is(err, blob.ErrUploadUnknown) {
			t.Fatalf("session still there after commit: %v", err)
		}
	})
	t.Run("Sha512AndOtherAlgorithmAtCommit", func(t *testing.T) {
		s, _ := open(t)
		for _, tc := range []struct{ start, commit digest.Algorithm }{
			{digest.SHA512, digest.SHA512}, {digest.SHA256, digest.SHA512}, {digest.SHA512, digest.SHA256},
		} {
			data := random(70_000)
			st, err := s.StartUpload(ctx, tc.start)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := s.Append(ctx, st.ID, 0, bytes.NewReader(data)); err != nil {
				t.Fatal(err)
			}
			d := tc.commit.FromBytes(data)
			if _, err := s.Commit(ctx, st.ID, d); err != nil {
				t.Fatalf("%s then %s: %v", tc.start, tc.commit, err)
			}
			if _, err := s.Stat(ctx, d); err != nil {
				t.Fatalf("%s blob missing: %v", tc.commit, err)
			}
		}
	})
	t.Run("CommitWrongDigestLeavesNothing", func(t *testing.T) {
		s, _ := open(t)
		data := random(10_000)
		st, _ := s.StartUpload(ctx, digest.SHA256)
		s.Append(ctx, st.ID, 0, bytes.NewReader(data))
		wrong := digest.FromBytes(random(10))
		if _, err := s.Commit(ctx, st.ID, wrong); !errors.Is(err, blob.ErrDigestMismatch) {
			t.Fatalf("commit with wrong digest: %v", err)
		}
		if _, err := s.Stat(ctx, wrong); !errors.Is(err, blob.ErrNotFound) {
			t.Fatal("wrong digest became visible")
		}
		if _, err := s.Stat(ctx, digest.FromBytes(data)); !errors.Is(err, blob.ErrNotFound) {
			t.Fatal("uncommitted content became visible")
		}
	})
	t.Run("CancelAndUnknownSessions", func(t *testing.T) {
		s, _ := open(t)
		st, _ := s.StartUpload(ctx, digest.SHA256)
		if err := s.CancelUpload(ctx, st.ID); err != nil {
			t.Fatal(err)
		}
		for _, id := range []string{st.ID, "../../etc/passwd", "", strings.Repeat("f", 32)} {
			if _, err := s.UploadStatus(ctx, id); !errors.Is(err, blob.ErrUploadUnknown) {
				t.Errorf("status of %q: %v", id, err)
			}
			if _, err := s.Append(ctx, id, 0, strings.NewReader("x")); !errors.Is(err, blob.ErrUploadUnknown) {
				t.Errorf("append to %q: %v", id, err)
			}
		}
		if _, err := s.StartUpload(ctx, "md5"); !errors.Is(err, blob.ErrUnsupported) {
			t.Errorf("md5 upload: %v", err)
		}
	})
}
