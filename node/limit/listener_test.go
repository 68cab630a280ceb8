package limit

import (
	"io"
	"net"
	"strings"
	"testing"
)

// recordingConn is a net.Conn whose ReadFrom says it was used.
type recordingConn struct {
	net.Conn
	readFrom bool
}

func (c *recordingConn) ReadFrom(r io.Reader) (int64, error) {
	c.readFrom = true
	return io.Copy(io.Discard, r)
}

// TestConnKeepsReadFrom: net/http sends files with sendfile (and splices
// sockets) only when the connection is an io.ReaderFrom; the bounded
// listener's wrapper must pass that through, or every blob pull is copied
// through user space.
func TestConnKeepsReadFrom(t *testing.T) {
	inner := &recordingConn{}
	var c net.Conn = &conn{Conn: inner, release: func() {}}
	rf, ok := c.(io.ReaderFrom)
	if !ok {
		t.Fatal("the wrapped connection is not an io.ReaderFrom")
	}
	if n, err := rf.ReadFrom(strings.NewReader("blob bytes")); err != nil || n != 10 || !inner.readFrom {
		t.Errorf("ReadFrom = %d, %v; used the connection's own: %v", n, err, inner.readFrom)
	}
}
