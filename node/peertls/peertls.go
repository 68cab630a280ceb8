// Package peertls is mutual TLS for the internal node-to-node HTTP API,
// with the cluster CA of cluster.tls (the same files that secure Raft in
// node/raftnet).
//
// The API listener is shared with registry clients, who have no cluster
// certificate. So the listener only requests a client certificate, and
// Guard, in front of the internal API alone, refuses any request whose
// connection did not present one issued by the cluster CA. Checking in the
// handler rather than in the handshake is deliberate: a peer with a
// certificate from another CA gets a 403 that says so, instead of a TLS
// alert, and a registry client that happens to send an unrelated client
// certificate still reaches /v2/.
//
// A peer asks for the cluster certificate by sending ServerName as SNI;
// the listener then presents it whatever http.tls serves to clients, so
// peers verify each other against the cluster CA alone. As in raftnet, host
// names are not checked against the cluster CA: peers dial the addresses
// gossip gave them, and what makes a peer trustworthy is a certificate that
// only members hold.
package peertls

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"sync"
	"time"

	"github.com/berth-registry/berth/node/httperr"
)

// ServerName is the SNI with which a peer asks for the cluster certificate.
// ".invalid" (RFC 2606) cannot collide with a real host name.
const ServerName = "internal.berth.invalid"

// CA is the cluster CA and this node's certificate from it.
type CA struct {
	pool *x509.CertPool
	cert tls.Certificate
}

// Load reads the cluster CA and this node's certificate and key (PEM) and
// checks that the certificate is the CA's, so a wrong file fails at start
// and not at the first call a peer refuses.
func Load(caFile, certFile, keyFile string) (*CA, error) {
	caPEM, err := os.ReadFile(caFile)
	if err != nil {
		return nil, fmt.Errorf("cluster.tls.cafile: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(caPEM) {
		return nil, fmt.Errorf("cluster.tls.cafile: %s holds no PEM certificate", caFile)
	}
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return nil, fmt.Errorf("cluster.tls.certfile/keyfile: %w", err)
	}
	ca := &CA{pool: pool, cert: cert}
	if _, err := ca.verify(cert.Leaf, chainOf(cert), time.Now()); err != nil {
		return nil, fmt.Errorf("cluster.tls.certfile %s is not issued by cluster.tls.cafile %s: %w", certFile, caFile, err)
	}
	return ca, nil
}

func chainOf(cert tls.Certificate) []*x509.Certificate {
	var out []*x509.Certificate
	for _, der := range cert.Certificate[1:] {
		if c, err := x509.ParseCertificate(der); err == nil {
			out = append(out, c)
		}
	}
	return out
}

// verify checks leaf (with intermediates) against the cluster CA and
// returns when the verified chain expires.
func (c *CA) verify(leaf *x509.Certificate, intermediates []*x509.Certificate, now time.Time) (time.Time, error) {
	if leaf == nil {
		return time.Time{}, errors.New("no certificate")
	}
	inter := x509.NewCertPool()
	for _, ic := range intermediates {
		inter.AddCert(ic)
	}
	chains, err := leaf.Verify(x509.VerifyOptions{
		Roots:         c.pool,
		Intermediates: inter,
		CurrentTime:   now,
		// One certificate serves a node as both client and server.
		KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny},
	})
	if err != nil {
		return time.Time{}, err
	}
	until := leaf.NotAfter
	for _, ch := range chains[0] {
		if ch.NotAfter.Before(until) {
			until = ch.NotAfter
		}
	}
	return until, nil
}

// ServerConfig is the API listener's TLS configuration: the cluster
// certificate for peers (SNI ServerName), clientCert for everyone else (nil
// means the cluster certificate for everyone: cluster.tls without
// http.tls), and a client certificate requested but left to Guard.
func (c *CA) ServerConfig(clientCert func(*tls.ClientHelloInfo) (*tls.Certificate, error)) *tls.Config {
	return &tls.Config{
		MinVersion: tls.VersionTLS12,
		GetCertificate: func(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
			if hello.ServerName == ServerName || clientCert == nil {
				return &c.cert, nil
			}
			return clientCert(hello)
		},
		ClientAuth: tls.RequestClientCert,
	}
}

// ClientConfig is for a peer's side: it presents this node's certificate,
// asks for the peer's cluster certificate, and accepts the server if the
// cluster CA issued it, or, failing that, if the system roots vouch for it
// under host (a peer whose API presents a public certificate).
func (c *CA) ClientConfig(host string) *tls.Config {
	return &tls.Config{
		MinVersion:   tls.VersionTLS13,
		Certificates: []tls.Certificate{c.cert},
		ServerName:   ServerName,
		// VerifyConnection does the checking: the default would match
		// ServerName against the certificate, which no peer's holds.
		InsecureSkipVerify: true,
		VerifyConnection: func(cs tls.ConnectionState) error {
			if len(cs.PeerCertificates) == 0 {
				return fmt.Errorf("peer %s presented no certificate", host)
			}
			leaf, inter := cs.PeerCertificates[0], cs.PeerCertificates[1:]
			_, err := c.verify(leaf, inter, time.Now())
			if err == nil {
				return nil
			}
			pool := x509.NewCertPool()
			for _, ic := range inter {
				pool.AddCert(ic)
			}
			if _, serr := leaf.Verify(x509.VerifyOptions{DNSName: host, Intermediates: pool}); serr == nil {
				return nil
			}
			return fmt.Errorf("peer %s presented a certificate (%s) not from the cluster CA: %w", host, leaf.Subject, err)
		},
	}
}

// DialTLSContext is for http.Transport.DialTLSContext: it dials a peer
// with ClientConfig for the host being dialled.
func (c *CA) DialTLSContext(ctx context.Context, network, addr string) (net.Conn, error) {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, err
	}
	d := &tls.Dialer{Config: c.ClientConfig(host)}
	return d.DialContext(ctx, network, addr)
}

// connKey finds a connection's check in a request's context.
type connKey struct{}

// connCheck is the verdict on one connection's client certificate, made
// at its first request: every request on a connection shares its
// certificate, and a chain verification per request would cost a
// signature check on every forwarded write and read index.
type connCheck struct {
	once  sync.Once
	until time.Time
	err   error
}

// ConnContext is for http.Server.ConnContext: it gives each connection a
// place for Guard's verdict.
func ConnContext(ctx context.Context, _ net.Conn) context.Context {
	return context.WithValue(ctx, connKey{}, &connCheck{})
}

// Guard lets a request through to next only if its connection presented a
// certificate from the cluster CA; anything else gets 403 and a message
// that says what is missing (never a 500).
func (c *CA) Guard(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := c.check(r); err != nil {
			httperr.Write(w, http.StatusForbidden, err.Error())
			return
		}
		next.ServeHTTP(w, r)
	})
}

func (c *CA) check(r *http.Request) error {
	if r.TLS == nil {
		return errors.New("the internal API takes only HTTPS with a client certificate from the cluster CA (cluster.tls)")
	}
	if len(r.TLS.PeerCertificates) == 0 {
		return errors.New("no client certificate: the internal API needs the calling node's cluster.tls certificate")
	}
	chk, ok := r.Context().Value(connKey{}).(*connCheck)
	if !ok {
		chk = &connCheck{}
	}
	certs := r.TLS.PeerCertificates
	chk.once.Do(func() {
		chk.until, chk.err = c.verify(certs[0], certs[1:], time.Now())
		if chk.err != nil {
			chk.err = fmt.Errorf("client certificate %q is not issued by the cluster CA (%v): give every node a certificate from the same cluster.tls.cafile", certs[0].Subject.String(), chk.err)
		}
	})
	if chk.err != nil {
		return chk.err
	}
	if time.Now().After(chk.until) {
		return fmt.Errorf("client certificate %q expired at %s: renew this node's cluster.tls certificate", certs[0].Subject.String(), chk.until.UTC().Format(time.RFC3339))
	}
	return nil
}
