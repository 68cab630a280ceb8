package node

import (
	"crypto/tls"
	"log/slog"

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
