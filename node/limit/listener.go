package limit

import (
	"io"
	"net"
	"sync"
)

// Listener returns a listener that holds at most n accepted connections
// open at once: Accept waits for one to close before taking the next from
// the kernel's backlog. Every open connection costs a goroutine, buffers
// and a file descriptor, and a client that sends its headers slowly holds
// them until the server's ReadHeaderTimeout; this caps the total however
// many such clients there are.
func Listener(l net.Listener, n int) net.Listener {
	return &listener{Listener: l, sem: make(chan struct{}, max(n, 1)), done: make(chan struct{})}
}

type listener struct {
	net.Listener
	sem       chan struct{}
	done      chan struct{}
	closeOnce sync.Once
}

func (l *listener) Accept() (net.Conn, error) {
	select {
	case l.sem <- struct{}{}:
	case <-l.done:
		return nil, net.ErrClosed
	}
	c, err := l.Listener.Accept()
	if err != nil {
		<-l.sem
		return nil, err
	}
	return &conn{Conn: c, release: func() { <-l.sem }}, nil
}

func (l *listener) Close() error {
	l.closeOnce.Do(func() { close(l.done) })
	return l.Listener.Close()
}

// conn gives its slot back on the first Close.
type conn struct {
	net.Conn
	once    sync.Once
	release func()
}

// ReadFrom lets net/http hand a response body to the kernel (sendfile
// from a blob file, splice from a socket): http.response.ReadFrom looks
// for io.ReaderFrom on the connection, and a wrapper that hid
// *net.TCPConn's would copy every pulled byte through user space.
func (c *conn) ReadFrom(r io.Reader) (int64, error) {
	if rf, ok := c.Conn.(io.ReaderFrom); ok {
		return rf.ReadFrom(r)
	}
	return io.Copy(onlyWriter{c.Conn}, r)
}

// CloseWrite keeps net/http's half-close of a TCP connection working.
func (c *conn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return nil
}

// onlyWriter hides a writer's ReadFrom, so io.Copy cannot call back into
// the wrapper that is already copying.
type onlyWriter struct{ io.Writer }

func (c *conn) Close() error {
	err := c.Conn.Close()
	c.once.Do(c.release)
	return err
}
