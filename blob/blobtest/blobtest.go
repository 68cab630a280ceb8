// Package blobtest is a conformance suite every blob.Store driver runs, so
// the filesystem and S3 drivers behave the same to the registry.
//
// Sizes straddle the S3 driver's thresholds (16 MiB in-memory/multipart,
// 5 MiB compose parts); for other drivers they are just sizes.
package blobtest

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"io"
	"testing"

	"github.com/opencontainers/go-digest"

	"github.com/berth-registry/berth/blob"
)

// Open returns two Store instances over the same, fresh backend: two
// "nodes" of one cluster.
type Open func(t *testing.T) (a, b blob.Store)

const (
	// repo is the repository the suite's sessions are started in.
	repo = "team-a/app"
	mib  = 1 << 20
	// big is past the S3 driver's 16 MiB in-memory limit.
	big = 16*mib + 7
)

// Run runs the suite.
func Run(t *testing.T, open Open) {
	data := random(big + mib)
	t.Run("Put", func(t *testing.T) { testPut(t, open, data) })
	t.Run("PutRejects", func(t *testing.T) { testPutRejects(t, open, data) })
	t.Run("RangeRead", func(t *testing.T) { testRangeRead(t, open) })
	t.Run("Delete", func(t *testing.T) { testDelete(t, open) })
	t.Run("Digests", func(t *testing.T) { testDigests(t, open) })
	t.Run("ChunkedUpload", func(t *testing.T) { testChunked(t, open, data) })
	t.Run("ChunkOutOfOrder", func(t *testing.T) { testOutOfOrder(t, open) })
	t.Run("FailedAppendDoesNotCount", func(t *testing.T) { testFailedAppend(t, open) })
	t.Run("Algorithms", func(t *testing.T) { testAlgorithms(t, open) })
	t.Run("CommitWrongDigest", func(t *testing.T) { testCommitWrongDigest(t, open) })
	t.Run("CommitExistingBlob", func(t *testing.T) { testCommitExisting(t, open) })
	t.Run("CancelAndUnknownSessions", func(t *testing.T) { testCancel(t, open) })
	t.Run("PutUpload", func(t *testing.T) { testPutUpload(t, open, data) })
	t.Run("Stream", func(t *testing.T) { testStream(t, open, data) })
	t.Run("SessionsBoundToRepository", func(t *testing.T) { testRepositoryBinding(t, open, data) })
	t.Run("StalledAppendBlocksNoOtherSession", func(t *testing.T) { testStalledAppend(t, open, data) })
}

func random(n int) []byte {
	b := make([]byte, n)
	rand.Read(b)
	return b
}

// readBack asserts that the store holds exactly want under d.
func readBack(t *testing.T, s blob.Store, d digest.Digest, want []byte) {
	t.Helper()
	ctx := context.Background()
	info, err := s.Stat(ctx, d)
	if err != nil || info.Size != int64(len(want)) || info.Digest != d {
		t.Fatalf("stat %s: %+v, %v; want size %d", d, info, err, len(want))
	}
	f, info, err := s.Open(ctx, d)
	if err != nil {
		t.Fatalf("open %s: %v", d, err)
	}
	defer f.Close()
	if info.Size != int64(len(want)) {
		t.Fatalf("open %s: size %d, want %d", d, info.Size, len(want))
	}
	got, err := io.ReadAll(f)
	if err != nil {
		t.Fatalf("read %s: %v", d, err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("%s: read %d bytes that differ from the %d stored", d, len(got), len(want))
	}
}

// absent asserts that nothing is visible under d.
func absent(t *testing.T, s blob.Store, d digest.Digest) {
	t.Helper()
	if _, err := s.Stat(context.Background(), d); !errors.Is(err, blob.ErrNotFound) {
		t.Fatalf("stat %s: %v, want ErrNotFound", d, err)
	}
	if _, _, err := s.Open(context.Background(), d); !errors.Is(err, blob.ErrNotFound) {
		t.Fatalf("open %s: %v, want ErrNotFound", d, err)
	}
}

// unsized hides a reader's type, so a driver cannot learn its length.
type unsized struct{ r io.Reader }

func (u unsized) Read(p []byte) (int, error) { return u.r.Read(p) }

func testPut(t *testing.T, open Open, data []byte) {
	ctx := context.Background()
	s, other := open(t)
	for _, tc := range []struct {
		name  string
		size  int
		known bool
	}{
		{"empty", 0, true},
		{"empty unknown size", 0, false},
		{"one byte", 1, true},
		{"small", 100_000, true},
		{"small unknown size", 100_001, false},
		{"big", big, true},
		{"big unknown size", big + 1, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := data[:tc.size]
			d := digest.FromBytes(b)
			size := int64(-1)
			if tc.known {
				size = int64(len(b))
			}
			info, err := s.Put(ctx, d, size, unsized{bytes.NewReader(b)})
			if err != nil || info.Size != int64(len(b)) || info.Digest != d {
				t.Fatalf("put: %+v, %v", info, err)
			}
			readBack(t, s, d, b)
			readBack(t, other, d, b)
			// Putting the same content again is fine and idempotent.
			if info, err := other.Put(ctx, d, size, unsized{bytes.NewReader(b)}); err != nil || info.Size != int64(len(b)) {
				t.Fatalf("re-put: %+v, %v", info, err)
			}
			readBack(t, s, d, b)
		})
	}
}

func testPutRejects(t *testing.T, open Open, data []byte) {
	s, _ := open(t)
	for _, tc := range []struct {
		name    string
		content []byte // what the client sends
		meant   []byte // what its digest names
		size    int64
		want    error
	}{
		{"wrong content", data[1:5001], data[:5000], 5000, blob.ErrDigestMismatch},
		{"wrong content unknown size", data[1:5001], data[:5000], -1, blob.ErrDigestMismatch},
		{"big wrong content", data[1 : big+1], data[:big], big, blob.ErrDigestMismatch},
		{"big wrong content unknown size", data[1 : big+1], data[:big], -1, blob.ErrDigestMismatch},
		{"one byte too many", data[:5001], data[:5000], 5000, blob.ErrSizeMismatch},
		{"one byte short", data[:4999], data[:5000], 5000, blob.ErrSizeMismatch},
		{"big one byte too many", data[:big+1], data[:big], big, blob.ErrSizeMismatch},
		{"big one byte short", data[:big-1], data[:big], big, blob.ErrSizeMismatch},
		{"declared far too small", data[:big], data[:big], 10, blob.ErrSizeMismatch},
		{"empty but declared", nil, data[:0], 1, blob.ErrSizeMismatch},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := digest.FromBytes(tc.meant)
			_, err := s.Put(context.Background(), d, tc.size, unsized{bytes.NewReader(tc.content)})
			if !errors.Is(err, tc.want) {
				t.Fatalf("put: %v, want %v", err, tc.want)
			}
			absent(t, s, d)
			absent(t, s, digest.FromBytes(tc.content))
		})
	}
	t.Run("cancelled context", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		b := data[:big]
		d := digest.FromBytes(b)
		if _, err := s.Put(ctx, d, big, bytes.NewReader(b)); err == nil {
			t.Fatal("put with a cancelled context succeeded")
		}
		absent(t, s, d)
	})
}

func testRangeRead(t *testing.T, open Open) {
	ctx := context.Background()
	s, other := open(t)
	data := random(3*mib + 5)
	d := digest.FromBytes(data)
	if _, err := s.Put(ctx, d, int64(len(data)), bytes.NewReader(data)); err != nil {
		t.Fatal(err)
	}
	f, info, err := other.Open(ctx, d)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if info.Size != int64(len(data)) {
		t.Fatalf("size %d", info.Size)
	}
	n := int64(len(data))
	// The sequence http.ServeContent uses, and then some.
	for _, tc := range []struct {
		offset int64
		whence int
		at     int64 // resulting position
		length int
	}{
		{0, io.SeekEnd, n, 0},
		{0, io.SeekStart, 0, 100},
		{2 * mib, io.SeekStart, 2 * mib, 1000},
		{500, io.SeekStart, 500, 100},
		{-10, io.SeekEnd, n - 10, 10},
		{-(mib + 10), io.SeekCurrent, n - mib - 10, mib},
		{0, io.SeekStart, 0, int(n)},
	} {
		pos, err := f.Seek(tc.offset, tc.whence)
		if err != nil || pos != tc.at {
			t.Fatalf("seek(%d, %d) = %d, %v; want %d", tc.offset, tc.whence, pos, err, tc.at)
		}
		got := make([]byte, tc.length)
		if _, err := io.ReadFull(f, got); err != nil {
			t.Fatalf("read %d bytes at %d: %v", tc.length, tc.at, err)
		}
		if !bytes.Equal(got, data[tc.at:tc.at+int64(tc.length)]) {
			t.Fatalf("read %d bytes at %d: wrong bytes", tc.length, tc.at)
		}
	}
	if k, err := f.Read(make([]byte, 1)); k != 0 || err != io.EOF {
		t.Fatalf("read at end: %d, %v; want io.EOF", k, err)
	}
}

func testDelete(t *testing.T, open Open) {
	ctx := context.Background()
	a, b := open(t)
	keep, gone := random(1000), random(1000)
	for _, x := range [][]byte{keep, gone} {
		if _, err := a.Put(ctx, digest.FromBytes(x), int64(len(x)), bytes.NewReader(x)); err != nil {
			t.Fatal(err)
		}
	}
	if err := b.Delete(ctx, digest.FromBytes(gone)); err != nil {
		t.Fatalf("delete: %v", err)
	}
	absent(t, a, digest.FromBytes(gone))
	readBack(t, a, digest.FromBytes(keep), keep)
	if err := a.Delete(ctx, digest.FromBytes(gone)); !errors.Is(err, blob.ErrNotFound) {
		t.Fatalf("deleting a missing blob: %v, want ErrNotFound", err)
	}
	// Deleted content can come back.
	if _, err := a.Put(ctx, digest.FromBytes(gone), -1, bytes.NewReader(gone)); err != nil {
		t.Fatal(err)
	}
	readBack(t, b, digest.FromBytes(gone), gone)
}

func testDigests(t *testing.T, open Open) {
	ctx := context.Background()
	s, _ := open(t)
	for _, d := range []digest.Digest{"", "sha256", "sha256:xyz", digest.Digest("sha256:" + digest.FromString("x").Encoded()[:10]), "nope:abc"} {
		if _, err := s.Stat(ctx, d); !errors.Is(err, blob.ErrDigestInvalid) {
			t.Errorf("stat %q: %v, want ErrDigestInvalid", d, err)
		}
		if _, err := s.Put(ctx, d, 1, bytes.NewReader([]byte("x"))); !errors.Is(err, blob.ErrDigestInvalid) {
			t.Errorf("put %q: %v, want ErrDigestInvalid", d, err)
		}
	}
}

// testStream checks a reader's Stream, where the driver offers one: it
// copies from the current offset to the end.
func testStream(t *testing.T, open Open, data []byte) {
	ctx := context.Background()
	a, b := open(t)
	want := data[:3*mib+5]
	d := digest.FromBytes(want)
	if _, err := a.Put(ctx, d, int64(len(want)), bytes.NewReader(want)); err != nil {
		t.Fatal(err)
	}
	for _, off := range []int64{0, 1, mib + 3, int64(len(want)) - 1, int64(len(want))} {
		f, _, err := b.Open(ctx, d)
		if err != nil {
			t.Fatal(err)
		}
		st, ok := f.(blob.Streamer)
		if !ok {
			f.Close()
			t.Skip("this driver's reader has no Stream")
		}
		if _, err := f.Seek(off, io.SeekStart); err != nil {
			t.Fatal(err)
		}
		var got bytes.Buffer
		n, err := st.Stream(&got)
		f.Close()
		if err != nil || n != int64(len(want))-off || !bytes.Equal(got.Bytes(), want[off:]) {
			t.Fatalf("Stream from %d: %d bytes, %v; want the %d bytes from there", off, n, err, int64(len(want))-off)
		}
	}
}
