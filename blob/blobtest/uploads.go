package blobtest

import (
	"bytes"
	"context"
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"

	"github.com/berth-registry/berth/blob"
)

// upload appends the next chunks of data, of the given sizes, from where
// the session stands, alternating between the stores, and checks every
// returned offset.
func upload(t *testing.T, stores []blob.Store, id string, data []byte, sizes []int) {
	t.Helper()
	ctx := context.Background()
	st, err := stores[0].UploadStatus(ctx, repo, id)
	if err != nil {
		t.Fatalf("status: %v", err)
	}
	off := st.Offset
	for i, size := range sizes {
		s := stores[i%len(stores)]
		n, err := s.Append(ctx, repo, id, off, unsized{bytes.NewReader(data[off : off+int64(size)])})
		if err != nil {
			t.Fatalf("chunk %d (%d bytes at %d): %v", i, size, off, err)
		}
		if n != off+int64(size) {
			t.Fatalf("chunk %d: offset %d, want %d", i, n, off+int64(size))
		}
		off = n
		st, err := stores[(i+1)%len(stores)].UploadStatus(ctx, repo, id)
		if err != nil || st.Offset != off {
			t.Fatalf("status after chunk %d: %+v, %v; want offset %d", i, st, err, off)
		}
	}
}

func sum(sizes []int) int {
	n := 0
	for _, s := range sizes {
		n += s
	}
	return n
}

// committer picks the store that commits a session started on a. A session
// that never received a byte may live only in the instance that started it
// (the single-node filesystem driver keeps it in memory), so the suite
// commits those on a; the S3 driver's own tests cover them across nodes.
func committer(a, b blob.Store, sizes []int) blob.Store {
	if sum(sizes) == 0 {
		return a
	}
	return b
}

func testChunked(t *testing.T, open Open, data []byte) {
	ctx := context.Background()
	for _, tc := range []struct {
		name  string
		sizes []int
	}{
		{"small chunks", []int{1_000_000, 1, 999_999, 1_000_000}},
		{"chunks of 5 MiB and more", []int{5 * mib, 5*mib + 3, 1000}},
		{"big chunk then small", []int{big, 5}},
		{"small chunk then big", []int{1000, big - 1000}},
		{"one chunk", []int{70_000}},
		{"empty chunks", []int{1000, 0, 1000, 0}},
		{"no chunks", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a, b := open(t)
			want := data[:sum(tc.sizes)]
			st, err := a.StartUpload(ctx, repo, digest.SHA256)
			if err != nil {
				t.Fatal(err)
			}
			if st.ID == "" || st.Offset != 0 || st.Algorithm != digest.SHA256 || st.Started.IsZero() {
				t.Fatalf("new session: %+v", st)
			}
			upload(t, []blob.Store{a, b}, st.ID, want, tc.sizes)
			d := digest.FromBytes(want)
			absent(t, a, d) // nothing is visible before the commit
			info, err := committer(a, b, tc.sizes).Commit(ctx, repo, st.ID, d)
			if err != nil || info.Size != int64(len(want)) || info.Digest != d {
				t.Fatalf("commit: %+v, %v", info, err)
			}
			readBack(t, a, d, want)
			for _, s := range []blob.Store{a, b} {
				if _, err := s.UploadStatus(ctx, repo, st.ID); !errors.Is(err, blob.ErrUploadUnknown) {
					t.Fatalf("session still there after commit: %v", err)
				}
			}
		})
	}
}

func testOutOfOrder(t *testing.T, open Open) {
	ctx := context.Background()
	a, b := open(t)
	data := random(3000)
	st, _ := a.StartUpload(ctx, repo, digest.SHA256)
	upload(t, []blob.Store{a, b}, st.ID, data, []int{1000, 1000})
	for _, off := range []int64{0, 5, 1999, 2001, 1 << 40} {
		var oe *blob.OffsetError
		if _, err := b.Append(ctx, repo, st.ID, off, strings.NewReader("x")); !errors.As(err, &oe) || oe.Current != 2000 {
			t.Fatalf("chunk at %d: %v, want OffsetError{2000}", off, err)
		}
	}
	// Refused chunks changed nothing.
	if _, err := a.Append(ctx, repo, st.ID, 2000, bytes.NewReader(data[2000:])); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Commit(ctx, repo, st.ID, digest.FromBytes(data)); err != nil {
		t.Fatal(err)
	}
	readBack(t, a, digest.FromBytes(data), data)
}

// failing yields n bytes of r, then fails as a dropped connection would.
type failing struct {
	r io.Reader
	n int
}

var errDropped = errors.New("connection dropped")

func (f *failing) Read(p []byte) (int, error) {
	if f.n == 0 {
		return 0, errDropped
	}
	p = p[:min(len(p), f.n)]
	n, err := f.r.Read(p)
	f.n -= n
	return n, err
}

func testFailedAppend(t *testing.T, open Open) {
	ctx := context.Background()
	a, b := open(t)
	data := random(2 * big)
	st, _ := a.StartUpload(ctx, repo, digest.SHA256)
	upload(t, []blob.Store{a}, st.ID, data, []int{1000})
	for _, n := range []int{0, 500, big + 10} {
		if _, err := b.Append(ctx, repo, st.ID, 1000, &failing{bytes.NewReader(data[1000:]), n}); !errors.Is(err, errDropped) {
			t.Fatalf("append failing after %d bytes: %v, want the reader's error", n, err)
		}
		if got, err := a.UploadStatus(ctx, repo, st.ID); err != nil || got.Offset != 1000 {
			t.Fatalf("after a failed append of %d bytes: %+v, %v; want offset 1000", n, got, err)
		}
	}
	upload(t, []blob.Store{b, a}, st.ID, data, []int{1000, 2000})
	d := digest.FromBytes(data[:4000])
	if _, err := a.Commit(ctx, repo, st.ID, d); err != nil {
		t.Fatal(err)
	}
	readBack(t, b, d, data[:4000])
}

func testAlgorithms(t *testing.T, open Open) {
	ctx := context.Background()
	a, b := open(t)
	for _, tc := range []struct {
		start, commit digest.Algorithm
		sizes         []int
	}{
		{digest.SHA512, digest.SHA512, []int{70_000, 3}},
		{digest.SHA256, digest.SHA512, []int{70_000, 3}},
		{digest.SHA512, digest.SHA256, []int{70_000}},
		{digest.SHA256, digest.SHA512, []int{5 * mib, 10}},
		{digest.SHA512, digest.SHA256, nil},
	} {
		t.Run(string(tc.start)+" then "+string(tc.commit), func(t *testing.T) {
			data := random(sum(tc.sizes))
			st, err := a.StartUpload(ctx, repo, tc.start)
			if err != nil {
				t.Fatal(err)
			}
			upload(t, []blob.Store{a, b}, st.ID, data, tc.sizes)
			d := tc.commit.FromBytes(data)
			if _, err := committer(a, b, tc.sizes).Commit(ctx, repo, st.ID, d); err != nil {
				t.Fatalf("commit: %v", err)
			}
			readBack(t, a, d, data)
			if tc.start != tc.commit {
				absent(t, a, tc.start.FromBytes(data))
			}
		})
	}
	t.Run("sha512 put", func(t *testing.T) {
		data := random(1000)
		d := digest.SHA512.FromBytes(data)
		if _, err := a.Put(ctx, d, -1, bytes.NewReader(data)); err != nil {
			t.Fatal(err)
		}
		readBack(t, b, d, data)
	})
}

func testCommitWrongDigest(t *testing.T, open Open) {
	ctx := context.Background()
	for _, tc := range []struct {
		name  string
		alg   digest.Algorithm
		sizes []int
	}{
		{"same algorithm", digest.SHA256, []int{10_000}},
		{"other algorithm", digest.SHA512, []int{10_000}},
		{"other algorithm, composable chunks", digest.SHA512, []int{5 * mib, 1}},
		{"other algorithm, many chunks", digest.SHA512, []int{1000, 1000, 1000}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a, b := open(t)
			data := random(sum(tc.sizes))
			st, _ := a.StartUpload(ctx, repo, tc.alg)
			upload(t, []blob.Store{a, b}, st.ID, data, tc.sizes)
			wrong := digest.FromBytes(random(10))
			if _, err := b.Commit(ctx, repo, st.ID, wrong); !errors.Is(err, blob.ErrDigestMismatch) {
				t.Fatalf("commit with a wrong digest: %v", err)
			}
			absent(t, a, wrong)
			absent(t, a, digest.FromBytes(data))
			if _, err := a.UploadStatus(ctx, repo, st.ID); !errors.Is(err, blob.ErrUploadUnknown) {
				t.Fatalf("session after a mismatch: %v, want ErrUploadUnknown", err)
			}
		})
	}
}

func testCommitExisting(t *testing.T, open Open) {
	ctx := context.Background()
	a, b := open(t)
	data := random(5000)
	d := digest.FromBytes(data)
	if _, err := a.Put(ctx, d, -1, bytes.NewReader(data)); err != nil {
		t.Fatal(err)
	}
	st, _ := b.StartUpload(ctx, repo, digest.SHA256)
	upload(t, []blob.Store{b}, st.ID, data, []int{5000})
	if info, err := b.Commit(ctx, repo, st.ID, d); err != nil || info.Size != 5000 {
		t.Fatalf("commit of stored content: %+v, %v", info, err)
	}
	readBack(t, a, d, data)
	if _, err := a.UploadStatus(ctx, repo, st.ID); !errors.Is(err, blob.ErrUploadUnknown) {
		t.Fatalf("session after commit: %v", err)
	}
}

func testCancel(t *testing.T, open Open) {
	ctx := context.Background()
	a, b := open(t)
	st, _ := a.StartUpload(ctx, repo, digest.SHA256)
	upload(t, []blob.Store{a}, st.ID, random(100), []int{100})
	if err := b.CancelUpload(ctx, repo, st.ID); err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{st.ID, "../../etc/passwd", "", strings.Repeat("f", 32), st.ID + "/../x"} {
		if _, err := a.UploadStatus(ctx, repo, id); !errors.Is(err, blob.ErrUploadUnknown) {
			t.Errorf("status of %q: %v", id, err)
		}
		if _, err := a.Append(ctx, repo, id, 0, strings.NewReader("x")); !errors.Is(err, blob.ErrUploadUnknown) {
			t.Errorf("append to %q: %v", id, err)
		}
		if _, err := a.Commit(ctx, repo, id, digest.FromString("x")); !errors.Is(err, blob.ErrUploadUnknown) {
			t.Errorf("commit of %q: %v", id, err)
		}
		if err := a.CancelUpload(ctx, repo, id); !errors.Is(err, blob.ErrUploadUnknown) {
			t.Errorf("cancel of %q: %v", id, err)
		}
	}
	for _, alg := range []digest.Algorithm{"md5", "sha384", ""} {
		if _, err := a.StartUpload(ctx, repo, alg); !errors.Is(err, blob.ErrUnsupported) {
			t.Errorf("%q upload: %v, want ErrUnsupported", alg, err)
		}
	}
}
