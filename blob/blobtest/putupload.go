package blobtest

import (
	"bytes"
	"context"
	"errors"
	"testing"

	"github.com/opencontainers/go-digest"

	"github.com/berth-registry/berth/blob"
)

// unread fails the test if anything reads it: PutUpload must refuse a
// session that holds bytes before it touches the body.
type unread struct{ t *testing.T }

func (u unread) Read([]byte) (int, error) {
	u.t.Error("PutUpload read the body of a session it refused")
	return 0, errors.New("must not be read")
}

func testPutUpload(t *testing.T, open Open, data []byte) {
	ctx := context.Background()
	for _, tc := range []struct {
		name string
		n    int
		size func(n int) int64 // what the client declares
		want error
	}{
		{"small", 1024, func(n int) int64 { return int64(n) }, nil},
		{"unknown length", 70_000, func(int) int64 { return -1 }, nil},
		{"past the in-memory limit", big, func(n int) int64 { return int64(n) }, nil},
		{"short of the declared size", 1024, func(n int) int64 { return int64(n) + 1 }, blob.ErrSizeMismatch},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a, _ := open(t)
			st, err := a.StartUpload(ctx, repo, digest.SHA256)
			if err != nil {
				t.Fatal(err)
			}
			want := data[:tc.n]
			d := digest.FromBytes(want)
			info, err := a.PutUpload(ctx, repo, st.ID, d, tc.size(tc.n), unsized{bytes.NewReader(want)})
			if tc.want != nil {
				if !errors.Is(err, tc.want) {
					t.Fatalf("PutUpload: %v, want %v", err, tc.want)
				}
				absent(t, a, d)
				return
			}
			if err != nil || info.Size != int64(tc.n) || info.Digest != d {
				t.Fatalf("PutUpload: %+v, %v", info, err)
			}
			readBack(t, a, d, want)
		})
	}

	t.Run("wrong digest stores nothing", func(t *testing.T) {
		a, _ := open(t)
		st, _ := a.StartUpload(ctx, repo, digest.SHA256)
		wrong := digest.FromString("something else")
		if _, err := a.PutUpload(ctx, repo, st.ID, wrong, 100, bytes.NewReader(data[:100])); !errors.Is(err, blob.ErrDigestMismatch) {
			t.Fatalf("PutUpload with a wrong digest: %v, want ErrDigestMismatch", err)
		}
		absent(t, a, wrong)
		absent(t, a, digest.FromBytes(data[:100]))
	})

	t.Run("session with bytes is refused unread", func(t *testing.T) {
		a, b := open(t)
		st, _ := a.StartUpload(ctx, repo, digest.SHA256)
		upload(t, []blob.Store{a}, st.ID, data, []int{1000})
		if _, err := b.PutUpload(ctx, repo, st.ID, digest.FromBytes(data[:1000]), 1000, unread{t}); !errors.Is(err, blob.ErrUploadNotEmpty) {
			t.Fatalf("PutUpload on a session with bytes: %v, want ErrUploadNotEmpty", err)
		}
		// The session is untouched and can still be finished the long way.
		upload(t, []blob.Store{b}, st.ID, data, []int{500})
		d := digest.FromBytes(data[:1500])
		if _, err := a.Commit(ctx, repo, st.ID, d); err != nil {
			t.Fatal(err)
		}
		readBack(t, b, d, data[:1500])
	})

	t.Run("unknown and cancelled sessions", func(t *testing.T) {
		a, b := open(t)
		st, _ := a.StartUpload(ctx, repo, digest.SHA256)
		if err := a.CancelUpload(ctx, repo, st.ID); err != nil {
			t.Fatal(err)
		}
		for _, id := range []string{st.ID, "", "../x", "0123456789abcdef0123456789abcdef"} {
			if _, err := b.PutUpload(ctx, repo, id, digest.FromBytes(data[:10]), 10, unread{t}); !errors.Is(err, blob.ErrUploadUnknown) {
				t.Errorf("PutUpload on %q: %v, want ErrUploadUnknown", id, err)
			}
		}
	})
}
