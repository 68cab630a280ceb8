package s3

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"runtime"
	"testing"
)

// trickle yields n bytes a few at a time, then fails with err (io.EOF for
// a client that just stops early).
type trickle struct {
	n   int
	err error
}

func (t *trickle) Read(p []byte) (int, error) {
	if t.n == 0 {
		return 0, t.err
	}
	k := min(len(p), t.n, 10)
	clear(p[:k])
	t.n -= k
	return k, nil
}

// allocated is how many bytes f allocates on the heap.
func allocated(f func()) uint64 {
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	f()
	runtime.ReadMemStats(&after)
	return after.TotalAlloc - before.TotalAlloc
}

// TestReadHeadAllocatesForBytesNotClaims: a client that declares a blob of
// up to 16 MiB and sends 100 bytes must not make the registry allocate the
// declared size. It was allocated in full before the first byte was read,
// so a few hundred such requests in flight took gigabytes.
func TestReadHeadAllocatesForBytesNotClaims(t *testing.T) {
	const sent = 100
	for _, claimed := range []int64{partSize - 1, 10 << 20, 1 << 20, partSize, -1} {
		for _, end := range []error{io.EOF, io.ErrUnexpectedEOF} {
			t.Run(fmt.Sprintf("claims %d, then %v", claimed, end), func(t *testing.T) {
				var head []byte
				var err error
				got := allocated(func() {
					head, _, err = readHead(&trickle{n: sent, err: end}, partSize, claimed)
				})
				if end == io.EOF && (err != nil || len(head) != sent) {
					t.Fatalf("read %d bytes, %v; want %d", len(head), err, sent)
				}
				if end != io.EOF && !errors.Is(err, end) {
					t.Fatalf("err = %v, want %v", err, end)
				}
				if got > 2*firstRead {
					t.Errorf("allocated %d bytes for %d received (claimed %d); want at most %d", got, sent, claimed, 2*firstRead)
				}
			})
		}
	}
}

// TestReadHead: what comes back for each size around the buffer's steps
// and the limit, with the right, an unknown, and a wrong declared size,
// and memory stays within twice what arrived (plus the first buffer).
func TestReadHead(t *testing.T) {
	const limit = 1 << 20
	for _, size := range []int{0, 1, firstRead - 1, firstRead, firstRead + 1, 3*firstRead + 7, limit - 1, limit, limit + 1, 3 * limit} {
		data := bytes.Repeat([]byte{0xa5}, size)
		for _, want := range []int64{int64(size), -1, int64(size) / 2, int64(size)*2 + 1} {
			t.Run(fmt.Sprintf("size %d want %d", size, want), func(t *testing.T) {
				var head []byte
				var complete bool
				var err error
				got := allocated(func() { head, complete, err = readHead(bytes.NewReader(data), limit, want) })
				if err != nil {
					t.Fatal(err)
				}
				wantLen, wantComplete := size, true
				if size > limit {
					wantLen, wantComplete = limit+1, false
				}
				if len(head) != wantLen || complete != wantComplete || !bytes.Equal(head, data[:wantLen]) {
					t.Errorf("got %d bytes, complete %v; want %d, %v", len(head), complete, wantLen, wantComplete)
				}
				if bound := uint64(4*wantLen + 2*firstRead); got > bound {
					t.Errorf("allocated %d bytes for %d read; want at most %d", got, wantLen, bound)
				}
				if want == int64(size) && size < limit && cap(head) != size+1 && size >= firstRead {
					t.Errorf("cap %d for a declared and sent %d bytes: want %d (no overshoot)", cap(head), size, size+1)
				}
			})
		}
	}
}
