package raftnet

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"os"
	"time"
)

// tlsAuth is mutual TLS where both sides present a certificate issued by
// the cluster CA. Host names are not checked: peers dial each other by the
// addresses Raft stores, and what makes a peer trustworthy is a
// certificate from the cluster's own CA, which only members hold.
type tlsAuth struct {
	cfg *tls.Config
}

// NewTLS loads the cluster CA and this node's certificate and key (PEM
// files) and returns an Authenticator for mutual TLS 1.3.
func NewTLS(caFile, certFile, keyFile string) (Authenticator, error) {
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
	// Catch a certificate from the wrong CA at start, not at the first
	// connection a peer refuses.
	if err := verifyChain(pool, cert.Certificate, time.Now()); err != nil {
		return nil, fmt.Errorf("cluster.tls.certfile %s is not issued by cluster.tls.cafile %s: %w", certFile, caFile, err)
	}
	cfg := &tls.Config{
		MinVersion:   tls.VersionTLS13,
		Certificates: []tls.Certificate{cert},
		// Both sides demand a certificate; VerifyConnection checks it
		// against the cluster CA in place of the default host-name check.
		ClientAuth:         tls.RequireAnyClientCert,
		InsecureSkipVerify: true,
		VerifyConnection: func(cs tls.ConnectionState) error {
			if len(cs.PeerCertificates) == 0 {
				return errors.New("peer presented no certificate")
			}
			raw := make([][]byte, len(cs.PeerCertificates))
			for i, c := range cs.PeerCertificates {
				raw[i] = c.Raw
			}
			if err := verifyChain(pool, raw, time.Now()); err != nil {
				return fmt.Errorf("peer certificate is not from the cluster CA: %w", err)
			}
			return nil
		},
	}
	return &tlsAuth{cfg: cfg}, nil
}

func verifyChain(roots *x509.CertPool, chain [][]byte, now time.Time) error {
	if len(chain) == 0 {
		return errors.New("no certificate")
	}
	leaf, err := x509.ParseCertificate(chain[0])
	if err != nil {
		return err
	}
	inter := x509.NewCertPool()
	for _, der := range chain[1:] {
		c, err := x509.ParseCertificate(der)
		if err != nil {
			return err
		}
		inter.AddCert(c)
	}
	_, err = leaf.Verify(x509.VerifyOptions{
		Roots:         roots,
		Intermediates: inter,
		CurrentTime:   now,
		// One certificate serves a node as both client and server.
		KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny},
	})
	return err
}

func (a *tlsAuth) Mode() string { return "tls" }

func (a *tlsAuth) Server(ctx context.Context, conn net.Conn) (net.Conn, error) {
	c := tls.Server(conn, a.cfg)
	if err := c.HandshakeContext(ctx); err != nil {
		return nil, err
	}
	return c, nil
}

func (a *tlsAuth) Client(ctx context.Context, conn net.Conn) (net.Conn, error) {
	c := tls.Client(conn, a.cfg)
	if err := c.HandshakeContext(ctx); err != nil {
		return nil, err
	}
	return c, nil
}
