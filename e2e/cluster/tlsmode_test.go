package cluster

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/berth-registry/berth/e2e/harness"
)

// tlsSuiteEnv switches the whole suite to TLS: with BERTH_E2E_TLS=1 every
// cluster the harness starts serves clients HTTPS (http.tls) and its nodes
// talk to each other over mutual TLS (cluster.tls), so each test shows
// that what it checks also holds with TLS everywhere (issue 10). `make
// e2e` runs the suite both ways.
const tlsSuiteEnv = "BERTH_E2E_TLS"

func tlsSuite() bool { return os.Getenv(tlsSuiteEnv) == "1" }

// enableTLS gives the cluster its own two CAs, as an operator would have
// them: serverCA issues the certificates clients see (each node's
// http.tls and HAProxy's), clusterCA the nodes' cluster certificates.
// Clients trust serverCA alone: through c.https, SSL_CERT_FILE for crane
// and regctl, and BERTH_CACERT for clusterctl.
func (c *cluster) enableTLS() {
	c.serverCA = newCertAuthority(c.t, filepath.Join(c.dir, "server-ca"))
	c.clusterCA = newCertAuthority(c.t, filepath.Join(c.dir, "cluster-ca"))
	c.caFile = c.serverCA.file
	pool := x509.NewCertPool()
	pool.AddCert(c.serverCA.cert)
	c.https = &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
}

// tlsEnv is the TLS configuration of one node, with certificates issued
// for it; nil when the harness manages no TLS for this cluster.
func (c *cluster) tlsEnv(nd *node) []string {
	if c.clusterCA == nil {
		return nil
	}
	cert, key := c.clusterCA.issue(c.t, nd.id)
	srvCert, srvKey := c.serverCA.issue(c.t, nd.id+"-https")
	return []string{
		"BERTH_CLUSTER_TLS_CAFILE=" + c.clusterCA.file, "BERTH_CLUSTER_TLS_CERTFILE=" + cert, "BERTH_CLUSTER_TLS_KEYFILE=" + key,
		"BERTH_HTTP_TLS_CERTIFICATE=" + srvCert, "BERTH_HTTP_TLS_KEY=" + srvKey,
	}
}

// ctx is harness.Ctx carrying the client the nodes need, so that the
// harness's OCI helpers speak HTTPS to a TLS cluster.
func (c *cluster) ctx(d time.Duration) (context.Context, context.CancelFunc) {
	ctx, cancel := harness.Ctx(d)
	return harness.WithClient(ctx, harness.Client{HTTPS: c.https != nil, HTTP: c.https}), cancel
}

// clientEnv is the environment of crane and regctl: a home of their own
// and, for a TLS cluster, the CA to trust (Go programs read
// SSL_CERT_FILE).
func (c *cluster) clientEnv(home string) []string {
	env := []string{"HOME=" + home, "DOCKER_CONFIG=" + filepath.Join(home, ".docker")}
	if c.caFile != "" {
		env = append(env, "SSL_CERT_FILE="+c.caFile)
	}
	return env
}

// ctlEnv is clusterctl's environment: the admin token and, for a TLS
// cluster, the CA to trust.
func (c *cluster) ctlEnv() []string {
	env := []string{"BERTH_TOKEN=" + adminToken}
	if c.caFile != "" {
		env = append(env, "BERTH_CACERT="+c.caFile)
	}
	return env
}

// regctlTLS is regctl's --tls for the nodes: enabled (verified against
// SSL_CERT_FILE) or disabled.
func (c *cluster) regctlTLS() string {
	if c.https != nil {
		return "enabled"
	}
	return "disabled"
}

// haproxyTLS returns what HAProxy's configuration needs for a TLS
// cluster: the bind options (it terminates client TLS with a certificate
// from serverCA) and the server options (it speaks TLS to each node and
// verifies its http.tls certificate against serverCA, health checks
// included). Both are empty for a plain cluster.
func (c *cluster) haproxyTLS() (bind, server string) {
	if c.serverCA == nil {
		return "", ""
	}
	cert, key := c.serverCA.issue(c.t, "haproxy")
	pemFile := filepath.Join(c.serverCA.dir, "haproxy.pem")
	var both []byte
	for _, f := range []string{cert, key} {
		b, err := os.ReadFile(f)
		if err != nil {
			c.t.Fatal(err)
		}
		both = append(both, b...)
	}
	if err := os.WriteFile(pemFile, both, 0o600); err != nil {
		c.t.Fatal(err)
	}
	return " ssl crt " + pemFile, " ssl verify required ca-file " + c.serverCA.file + " verifyhost localhost"
}

// checkTLSOnly makes sure a node the harness set up for TLS really
// serves HTTPS only, so that the TLS run cannot pass over plain HTTP: a
// plain request gets Go's 400 for an HTTP request to an HTTPS server.
func (c *cluster) checkTLSOnly(nd *node) {
	if c.clusterCA == nil {
		return
	}
	ctx, cancel := harness.Ctx(10 * time.Second)
	defer cancel()
	code, _, body, err := harness.HTTPStatus(ctx, "GET", "http://"+nd.api+"/readyz", nil, nil)
	if err != nil || code != http.StatusBadRequest || !strings.Contains(string(body), "HTTPS") {
		c.t.Fatalf("%s over plain HTTP: %d %v %s; want 400 (it should serve HTTPS only)", nd.id, code, err, body)
	}
}
