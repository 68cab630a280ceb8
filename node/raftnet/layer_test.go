package raftnet

import (
	"bytes"
	"crypto/rand"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/raft"
)

const testSecret = "raftnet-test-secret-0123456789"

func newSecretAuth(t *testing.T, secret string) Authenticator {
	t.Helper()
	a, err := NewSecret(secret)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func tlsAuthFor(t *testing.T, ca *testCA, name string) Authenticator {
	t.Helper()
	cert, key := ca.issue(t, name)
	a, err := NewTLS(ca.file, cert, key)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// listen starts a layer on loopback and collects what Accept returns.
func listen(t *testing.T, auth Authenticator, opts Options) (*Layer, <-chan net.Conn) {
	t.Helper()
	l, err := Listen("127.0.0.1:0", nil, auth, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	accepted := make(chan net.Conn, 16)
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			accepted <- c
		}
	}()
	return l, accepted
}

// dialer is a layer used only to dial out.
func dialer(t *testing.T, auth Authenticator) *Layer {
	t.Helper()
	l, err := Listen("127.0.0.1:0", nil, auth, Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	return l
}

// mustConnect proves the layer still admits a good peer, and that data
// flows both ways over what Dial and Accept return.
func mustConnect(t *testing.T, server *Layer, accepted <-chan net.Conn, client *Layer) {
	t.Helper()
	c, err := client.Dial(raft.ServerAddress(server.Addr().String()), 5*time.Second)
	if err != nil {
		t.Fatalf("good peer: dial: %v", err)
	}
	defer c.Close()
	var s net.Conn
	select {
	case s = <-accepted:
	case <-time.After(5 * time.Second):
		t.Fatal("good peer: not accepted within 5s")
	}
	defer s.Close()
	if _, err := c.Write([]byte("ping")); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 4)
	if _, err := io.ReadFull(s, buf); err != nil || string(buf) != "ping" {
		t.Fatalf("server read %q, %v", buf, err)
	}
	if _, err := s.Write([]byte("pong")); err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadFull(c, buf); err != nil || string(buf) != "pong" {
		t.Fatalf("client read %q, %v", buf, err)
	}
}

// assertDropped checks that the server closed c without a byte of Raft
// traffic reaching Accept.
func assertDropped(t *testing.T, c net.Conn, accepted <-chan net.Conn, within time.Duration) {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(within))
	_, err := io.Copy(io.Discard, c)
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		t.Fatalf("connection still open after %s", within)
	}
	select {
	case s := <-accepted:
		s.Close()
		t.Fatal("an unauthenticated peer reached Accept")
	default:
	}
}

func TestSecretPeerConnects(t *testing.T) {
	server, accepted := listen(t, newSecretAuth(t, testSecret), Options{})
	client, clientAccepted := listen(t, newSecretAuth(t, testSecret), Options{})
	mustConnect(t, server, accepted, client)
	mustConnect(t, client, clientAccepted, server)
}

func TestBadPeersAreDropped(t *testing.T) {
	raftRPC := []byte{0x00, 0x85, 0xa4, 'T', 'e', 'r', 'm', 0xcd, 0x03, 0xe8} // rpcAppendEntries, then msgpack
	garbage := make([]byte, 64<<10)
	rand.Read(garbage)
	tests := []struct {
		name string
		// send does what the bad peer does on its raw connection.
		send func(t *testing.T, c net.Conn)
	}{
		{"raft client without handshake", func(t *testing.T, c net.Conn) { c.Write(raftRPC) }},
		{"garbage", func(t *testing.T, c net.Conn) { c.Write(garbage) }},
		{"right magic, then garbage proof", func(t *testing.T, c net.Conn) {
			hello := append([]byte(magic), make([]byte, nonceSize)...)
			c.Write(hello)
			io.ReadFull(c, make([]byte, len(magic)+nonceSize+proofSize))
			c.Write(bytes.Repeat([]byte{7}, proofSize))
		}},
		{"replayed server proof as client proof", func(t *testing.T, c net.Conn) {
			c.Write(append([]byte(magic), make([]byte, nonceSize)...))
			reply := make([]byte, len(magic)+nonceSize+proofSize)
			io.ReadFull(c, reply)
			c.Write(reply[len(magic)+nonceSize:])
		}},
		{"TLS client", func(t *testing.T, c net.Conn) {
			tc := tls.Client(c, &tls.Config{InsecureSkipVerify: true})
			tc.SetDeadline(time.Now().Add(2 * time.Second))
			tc.Handshake()
		}},
		{"silent", func(t *testing.T, c net.Conn) {}},
		{"slow hello", func(t *testing.T, c net.Conn) {
			for i := range 5 {
				if _, err := c.Write([]byte{magic[i]}); err != nil {
					return
				}
				time.Sleep(100 * time.Millisecond)
			}
		}},
	}
	// One layer for every case: Accept must keep working after each.
	server, accepted := listen(t, newSecretAuth(t, testSecret), Options{HandshakeTimeout: time.Second})
	good := dialer(t, newSecretAuth(t, testSecret))
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, err := net.Dial("tcp", server.Addr().String())
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			tc.send(t, c)
			assertDropped(t, c, accepted, 5*time.Second)
			mustConnect(t, server, accepted, good)
		})
	}
	t.Run("wrong secret", func(t *testing.T) {
		bad := dialer(t, newSecretAuth(t, "another-cluster-secret"))
		_, err := bad.Dial(raft.ServerAddress(server.Addr().String()), 5*time.Second)
		if !errors.Is(err, errBadProof) {
			t.Fatalf("dial with the wrong secret: %v, want %v", err, errBadProof)
		}
		select {
		case <-accepted:
			t.Fatal("a peer with the wrong secret reached Accept")
		case <-time.After(200 * time.Millisecond):
		}
		mustConnect(t, server, accepted, good)
	})
}

// A silent peer must not hold up others: the good peer connects while the
// silent one is still in its handshake, which is then cut at the timeout.
func TestSilentPeerDoesNotBlockAccept(t *testing.T) {
	server, accepted := listen(t, newSecretAuth(t, testSecret), Options{HandshakeTimeout: 3 * time.Second})
	silent, err := net.Dial("tcp", server.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	start := time.Now()
	mustConnect(t, server, accepted, dialer(t, newSecretAuth(t, testSecret)))
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("good peer waited %s behind a silent one", d)
	}
	silent.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
	if _, err := silent.Read(make([]byte, 1)); !isTimeout(err) {
		t.Fatalf("silent peer closed before its handshake timeout: %v", err)
	}
	assertDropped(t, silent, accepted, 10*time.Second)
	if d := time.Since(start); d < 2*time.Second {
		t.Fatalf("silent peer dropped after %s, before the 3s handshake timeout", d)
	}
}

// With every handshake slot taken by silent peers, a good peer still gets
// in once they time out; nothing grows without bound meanwhile.
func TestHandshakeSlotsAreBounded(t *testing.T) {
	server, accepted := listen(t, newSecretAuth(t, testSecret), Options{HandshakeTimeout: 500 * time.Millisecond, MaxHandshakes: 2})
	for range 4 {
		c, err := net.Dial("tcp", server.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
	}
	mustConnect(t, server, accepted, dialer(t, newSecretAuth(t, testSecret)))
}

func TestCloseAbortsHandshakes(t *testing.T) {
	l, err := Listen("127.0.0.1:0", nil, newSecretAuth(t, testSecret), Options{HandshakeTimeout: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	c, err := net.Dial("tcp", l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	time.Sleep(50 * time.Millisecond) // let the handshake start
	start := time.Now()
	l.Close()
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("Close took %s with a handshake in progress", d)
	}
	if _, err := l.Accept(); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("Accept after Close: %v, want net.ErrClosed", err)
	}
}

// recorder keeps everything written to a connection.
type recorder struct {
	net.Conn
	sent bytes.Buffer
}

func (r *recorder) Write(p []byte) (int, error) { r.sent.Write(p); return r.Conn.Write(p) }

func TestSecretNeverCrossesTheWire(t *testing.T) {
	server, accepted := listen(t, newSecretAuth(t, testSecret), Options{})
	raw, err := net.Dial("tcp", server.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	rec := &recorder{Conn: raw}
	a := newSecretAuth(t, testSecret)
	if _, err := a.Client(t.Context(), rec); err != nil {
		t.Fatalf("handshake: %v", err)
	}
	(<-accepted).Close()
	if bytes.Contains(rec.sent.Bytes(), []byte(testSecret)) || bytes.Contains(rec.sent.Bytes(), a.(*secretAuth).key) {
		t.Fatal("the secret or the derived key was sent")
	}
}

func TestTLS(t *testing.T) {
	ca := newTestCA(t, "cluster-ca")
	other := newTestCA(t, "other-ca")
	server, accepted := listen(t, tlsAuthFor(t, ca, "node1"), Options{HandshakeTimeout: 2 * time.Second})
	good := dialer(t, tlsAuthFor(t, ca, "node2"))
	mustConnect(t, server, accepted, good)

	selfCert, selfKey := (*testCA)(nil).issue(t, "self-signed")
	otherCert, otherKey := other.issue(t, "other-node")
	keyPair := func(cert, key string) []tls.Certificate {
		kp, err := tls.LoadX509KeyPair(cert, key)
		if err != nil {
			t.Fatal(err)
		}
		return []tls.Certificate{kp}
	}
	tests := []struct {
		name  string
		certs []tls.Certificate
	}{
		{"no client certificate", nil},
		{"self-signed certificate", keyPair(selfCert, selfKey)},
		{"certificate from another CA", keyPair(otherCert, otherKey)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			raw, err := net.Dial("tcp", server.Addr().String())
			if err != nil {
				t.Fatal(err)
			}
			defer raw.Close()
			c := tls.Client(raw, &tls.Config{InsecureSkipVerify: true, Certificates: tc.certs, MinVersion: tls.VersionTLS13})
			c.SetDeadline(time.Now().Add(5 * time.Second))
			// TLS 1.3 finishes the client's side before the server has
			// judged its certificate; the refusal arrives on the first read.
			if err := c.Handshake(); err == nil {
				c.Write([]byte{0}) // rpcAppendEntries
				if _, err := c.Read(make([]byte, 1)); err == nil || isTimeout(err) {
					t.Fatalf("server did not refuse the client: %v", err)
				}
			}
			assertDropped(t, raw, accepted, 5*time.Second)
			mustConnect(t, server, accepted, good)
		})
	}
	t.Run("secret handshake client", func(t *testing.T) {
		_, err := dialer(t, newSecretAuth(t, testSecret)).Dial(raft.ServerAddress(server.Addr().String()), 5*time.Second)
		if err == nil {
			t.Fatal("a secret-handshake client got through a TLS layer")
		}
		mustConnect(t, server, accepted, good)
	})
	t.Run("server from another CA", func(t *testing.T) {
		impostor, _ := listen(t, tlsAuthFor(t, other, "impostor"), Options{})
		if _, err := good.Dial(raft.ServerAddress(impostor.Addr().String()), 5*time.Second); err == nil {
			t.Fatal("dialed a server whose certificate is not from the cluster CA")
		}
	})
}

func TestNewTLSErrors(t *testing.T) {
	ca := newTestCA(t, "cluster-ca")
	other := newTestCA(t, "other-ca")
	cert, key := ca.issue(t, "node")
	otherCert, otherKey := other.issue(t, "node")
	notPEM := t.TempDir() + "/not.pem"
	if err := os.WriteFile(notPEM, []byte("hello"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, ca, cert, key, want string
	}{
		{"missing CA file", "/nonexistent/ca.pem", cert, key, "cluster.tls.cafile"},
		{"CA file without PEM", notPEM, cert, key, "holds no PEM certificate"},
		{"missing key", ca.file, cert, "/nonexistent/key.pem", "cluster.tls.certfile/keyfile"},
		{"key of another certificate", ca.file, cert, otherKey, "cluster.tls.certfile/keyfile"},
		{"certificate from another CA", ca.file, otherCert, otherKey, "is not issued by cluster.tls.cafile"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := NewTLS(tc.ca, tc.cert, tc.key)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("NewTLS: %v, want an error mentioning %q", err, tc.want)
			}
		})
	}
	if _, err := NewSecret(""); err == nil {
		t.Fatal("NewSecret accepted an empty secret")
	}
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}
