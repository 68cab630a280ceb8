package blob

import (
	"io"
	"sync"
)

var streamBufs = sync.Pool{New: func() any { b := make([]byte, 1<<20); return &b }}

// CopyStream copies r to w in blocks of 1 MiB from a pooled buffer, for
// Streamer implementations. It hides w's ReadFrom (net/http's falls back to
// a 32 KiB loop for anything but a file) and r's WriteTo, so the copy uses
// the large buffer.
func CopyStream(w io.Writer, r io.Reader) (int64, error) {
	bp := streamBufs.Get().(*[]byte)
	defer streamBufs.Put(bp)
	return io.CopyBuffer(struct{ io.Writer }{w}, struct{ io.Reader }{r}, *bp)
}
