package node

import (
	"crypto/tls"
	"crypto/x509"
	"log"
	"log/slog"
	"net"
	"strings"

	"github.com/berth-registry/berth/node/peertls"
	"github.com/berth-registry/berth/node/tlsreload"
)

// apiTLS is what the API listener and the peer client need of http.tls
// and cluster.tls.
type apiTLS struct {
	// server is the listener's configuration; nil serves plain HTTP.
	server *tls.Config
	// cluster is the cluster CA and this node's certificate; nil without
	// cluster.tls.
	cluster *peertls.CA
}

// loadAPITLS reads the certificates at start, so a missing or wrong file
// stops the node with an error naming its key rather than failing the
// first handshake.
//
//   - http.tls alone: HTTPS for everyone with that (reloaded) pair.
//   - cluster.tls alone: HTTPS with the cluster certificate, which registry
//     clients then need the cluster CA to trust.
//   - both: clients get http.tls's pair, peers (by SNI) the cluster
//     certificate; the internal API wants a client certificate from the
//     cluster CA in both cluster.tls cases.
func loadAPITLS(cfg Config, logger *slog.Logger) (apiTLS, error) {
	var out apiTLS
	var clientCert func(*tls.ClientHelloInfo) (*tls.Certificate, error)
	if t := cfg.HTTP.TLS; t.Enabled() {
		r, err := tlsreload.New(t.Certificate, t.Key, tlsreload.Options{Logger: logger, Key: "http.tls"})
		if err != nil {
			return out, err
		}
		clientCert = r.GetCertificate
		out.server = &tls.Config{MinVersion: tls.VersionTLS12, GetCertificate: clientCert}
	}
	if t := cfg.Cluster.TLS; t.Enabled() {
		ca, err := peertls.Load(t.CAFile, t.CertFile, t.KeyFile)
		if err != nil {
			return out, err
		}
		out.cluster = ca
		out.server = ca.ServerConfig(clientCert)
	}
	return out, nil
}

// scheme is how peers reach this node's API, and how this node reaches
// theirs: every node of a cluster has the same TLS settings (cluster.tls
// must match anyway for Raft), so the local configuration decides.
func (t apiTLS) scheme() string {
	if t.server != nil {
		return "https"
	}
	return "http"
}

// warnUntrustedPeers tells the operator, at start, about a cluster that
// has http.tls but not cluster.tls and whose certificate the peers will
// not accept: they verify it like any HTTPS client, against the system
// roots and the advertised address, and every forwarded write and read
// index would then fail.
func (t apiTLS) warnUntrustedPeers(advertise string, logger *slog.Logger) {
	if t.server == nil || t.cluster != nil || t.server.GetCertificate == nil {
		return
	}
	cert, err := t.server.GetCertificate(&tls.ClientHelloInfo{})
	if err != nil || cert.Leaf == nil {
		return
	}
	host, _, err := net.SplitHostPort(advertise)
	if err != nil {
		return
	}
	inter := x509.NewCertPool()
	for _, der := range cert.Certificate[1:] {
		if c, err := x509.ParseCertificate(der); err == nil {
			inter.AddCert(c)
		}
	}
	if _, err := cert.Leaf.Verify(x509.VerifyOptions{DNSName: host, Intermediates: inter}); err != nil {
		logger.Warn("peers will not trust this node's http.tls certificate for its advertised address, so forwarding between nodes will fail: set cluster.tls (recommended), or give http.tls a certificate for that address from a CA in the system roots (SSL_CERT_FILE)",
			"advertise", advertise, "err", err)
	}
}

// serverLog is net/http's error log for the API listener. Failed TLS
// handshakes (port scanners, TCP health checks, clients that do not trust
// the certificate) are the client's to see and say nothing about the
// node, so they go to debug rather than fill the log at warn.
func serverLog(logger *slog.Logger) *log.Logger {
	return log.New(serverLogWriter{logger}, "", 0)
}

type serverLogWriter struct{ logger *slog.Logger }

func (w serverLogWriter) Write(p []byte) (int, error) {
	msg := strings.TrimSpace(string(p))
	if strings.HasPrefix(msg, "http: TLS handshake error") {
		w.logger.Debug(msg)
	} else {
		w.logger.Warn(msg)
	}
	return len(p), nil
}
