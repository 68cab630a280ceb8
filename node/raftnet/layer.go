// Package raftnet is the authenticated stream layer under hashicorp/raft's
// NetworkTransport. Raft's own TCP transport accepts any connection and
// applies whatever AppendEntries it reads, so anyone who can reach the Raft
// port could rewrite the cluster's state. Here every connection, in both
// directions, first proves that the peer belongs to the cluster (mutual TLS
// from a cluster CA, or a handshake proven with the cluster secret); a peer
// that fails is closed before Raft reads a single byte from it.
package raftnet

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/raft"
)

// Authenticator runs one side of a connection's handshake. On success it
// returns the connection Raft should use (the TLS connection, or the same
// TCP connection); on failure the caller closes the raw connection.
type Authenticator interface {
	// Server authenticates a peer that dialed us.
	Server(ctx context.Context, conn net.Conn) (net.Conn, error)
	// Client authenticates the peer we dialed, and proves ourselves to it.
	Client(ctx context.Context, conn net.Conn) (net.Conn, error)
	// Mode names the scheme for logs ("tls" or "secret").
	Mode() string
}

// Defaults for Options.
const (
	DefaultHandshakeTimeout = 5 * time.Second
	DefaultMaxHandshakes    = 64
)

// Options tunes a Layer. Zero values take the defaults.
type Options struct {
	// HandshakeTimeout bounds how long a peer may take to authenticate, so
	// a silent or slow peer cannot hold a handshake slot.
	HandshakeTimeout time.Duration
	// MaxHandshakes bounds the handshakes in progress at once; further
	// connections wait in the kernel's backlog until a slot frees.
	MaxHandshakes int
	Logger        *slog.Logger
}

// Layer is a raft.StreamLayer whose connections are all authenticated.
// Handshakes of accepted connections run concurrently (bounded by
// MaxHandshakes), so Accept hands Raft only peers that have proven
// themselves and one slow peer never delays another.
type Layer struct {
	ln        net.Listener
	advertise net.Addr
	auth      Authenticator
	opts      Options

	ctx    context.Context // cancelled by Close; aborts handshakes
	cancel context.CancelFunc
	conns  chan net.Conn // authenticated, waiting for Accept
	slots  chan struct{} // one per handshake in progress
	wg     sync.WaitGroup
	once   sync.Once

	rejected    atomic.Int64 // since the last warning
	lastWarning atomic.Int64 // unix nanoseconds
}

var _ raft.StreamLayer = (*Layer)(nil)

// Listen binds addr and starts accepting. advertise is the address peers
// dial (Addr reports it); nil means the bound address.
func Listen(addr string, advertise net.Addr, auth Authenticator, opts Options) (*Layer, error) {
	if auth == nil {
		return nil, errors.New("raftnet: no authenticator")
	}
	if opts.HandshakeTimeout <= 0 {
		opts.HandshakeTimeout = DefaultHandshakeTimeout
	}
	if opts.MaxHandshakes <= 0 {
		opts.MaxHandshakes = DefaultMaxHandshakes
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	if advertise == nil {
		advertise = ln.Addr()
	}
	ctx, cancel := context.WithCancel(context.Background())
	l := &Layer{
		ln: ln, advertise: advertise, auth: auth, opts: opts,
		ctx: ctx, cancel: cancel,
		conns: make(chan net.Conn),
		slots: make(chan struct{}, opts.MaxHandshakes),
	}
	l.wg.Add(1)
	go l.acceptLoop()
	return l, nil
}

// Accept returns the next authenticated inbound connection.
func (l *Layer) Accept() (net.Conn, error) {
	select {
	case c := <-l.conns:
		return c, nil
	case <-l.ctx.Done():
		return nil, net.ErrClosed
	}
}

// Close stops accepting, aborts handshakes in progress and waits for them.
func (l *Layer) Close() error {
	var err error
	l.once.Do(func() {
		l.cancel()
		err = l.ln.Close()
		l.wg.Wait()
	})
	return err
}

// Addr is the advertised address, which Raft records in its configuration.
func (l *Layer) Addr() net.Addr { return l.advertise }

// Dial connects to a peer and runs the client side of the handshake within
// timeout (at most HandshakeTimeout for the handshake itself).
func (l *Layer) Dial(address raft.ServerAddress, timeout time.Duration) (net.Conn, error) {
	if timeout <= 0 {
		timeout = l.opts.HandshakeTimeout
	}
	ctx, cancel := context.WithTimeout(l.ctx, timeout)
	defer cancel()
	d := net.Dialer{}
	raw, err := d.DialContext(ctx, "tcp", string(address))
	if err != nil {
		return nil, err
	}
	hctx, hcancel := context.WithTimeout(ctx, l.opts.HandshakeTimeout)
	defer hcancel()
	conn, err := handshake(hctx, raw, l.auth.Client)
	if err != nil {
		raw.Close()
		return nil, fmt.Errorf("raft peer %s: %s handshake: %w", address, l.auth.Mode(), err)
	}
	return conn, nil
}

func (l *Layer) acceptLoop() {
	defer l.wg.Done()
	var delay time.Duration
	for {
		select {
		case l.slots <- struct{}{}:
		case <-l.ctx.Done():
			return
		}
		raw, err := l.ln.Accept()
		if err != nil {
			<-l.slots
			if l.ctx.Err() != nil || errors.Is(err, net.ErrClosed) {
				return
			}
			// Out of file descriptors and the like: back off, as net/http does.
			delay = min(max(2*delay, 5*time.Millisecond), time.Second)
			l.opts.Logger.Warn("raft transport: accept failed; retrying", "err", err, "in", delay)
			select {
			case <-time.After(delay):
			case <-l.ctx.Done():
				return
			}
			continue
		}
		delay = 0
		l.wg.Add(1)
		go l.serve(raw)
	}
}

// serve authenticates one inbound connection and hands it to Accept.
func (l *Layer) serve(raw net.Conn) {
	defer l.wg.Done()
	defer func() { <-l.slots }()
	ctx, cancel := context.WithTimeout(l.ctx, l.opts.HandshakeTimeout)
	conn, err := handshake(ctx, raw, l.auth.Server)
	cancel()
	if err != nil {
		raw.Close()
		l.reject(raw.RemoteAddr(), err)
		return
	}
	select {
	case l.conns <- conn:
	case <-l.ctx.Done():
		conn.Close()
	}
}

// handshake runs one side of the authenticator with the connection's
// deadline tied to ctx, and clears the deadline afterwards so Raft sets
// its own.
func handshake(ctx context.Context, raw net.Conn, side func(context.Context, net.Conn) (net.Conn, error)) (net.Conn, error) {
	if dl, ok := ctx.Deadline(); ok {
		if err := raw.SetDeadline(dl); err != nil {
			return nil, err
		}
	}
	// Close (not only the deadline) aborts a handshake when the layer closes.
	stop := context.AfterFunc(ctx, func() { raw.SetDeadline(time.Unix(1, 0)) })
	conn, err := side(ctx, raw)
	if !stop() && err == nil {
		// The deadline fired as the handshake finished; the connection
		// may already carry a past deadline, so treat it as timed out.
		err = ctx.Err()
	}
	if err != nil {
		if cerr := ctx.Err(); cerr != nil && !errors.Is(err, cerr) {
			err = fmt.Errorf("%w (%w)", cerr, err)
		}
		return nil, err
	}
	if err := conn.SetDeadline(time.Time{}); err != nil {
		return nil, err
	}
	return conn, nil
}

// reject logs a refused peer, at most once a second with a count, so a
// port scanner cannot flood the log.
func (l *Layer) reject(from net.Addr, err error) {
	l.rejected.Add(1)
	now := time.Now().UnixNano()
	last := l.lastWarning.Load()
	if now-last < int64(time.Second) || !l.lastWarning.CompareAndSwap(last, now) {
		return
	}
	n := l.rejected.Swap(0)
	l.opts.Logger.Warn("raft transport: rejected an unauthenticated peer",
		"remote", from.String(), "mode", l.auth.Mode(), "err", err, "rejected", n)
}
