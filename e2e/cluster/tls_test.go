package cluster

import (
	"archive/tar"
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/berth-registry/berth/e2e/harness"
)

// TestClusterTLS runs three nodes with TLS everywhere: clients get HTTPS
// with a server certificate (http.tls), and the nodes authenticate each
// other with certificates from a cluster CA (cluster.tls) on the Raft port
// and the internal API. crane pushes and pulls through HTTPS with the CA
// trusted, clusterctl reaches every node through --cacert, and a fourth
// node that has the cluster secret but a certificate from another CA never
// joins: the leader will not add it, its Raft handshake and its internal
// API calls are refused.
func TestClusterTLS(t *testing.T) {
	c := &cluster{t: t, dir: t.TempDir()}
	clusterCA := newCertAuthority(t, filepath.Join(c.dir, "cluster-ca"))
	serverCA := newCertAuthority(t, filepath.Join(c.dir, "server-ca"))
	otherCA := newCertAuthority(t, filepath.Join(c.dir, "other-ca"))
	tlsEnv := func(ca *certAuthority, id string) []string {
		cert, key := ca.issue(t, id)
		srvCert, srvKey := serverCA.issue(t, id+"-https")
		return []string{
			"BERTH_CLUSTER_TLS_CAFILE=" + ca.file, "BERTH_CLUSTER_TLS_CERTFILE=" + cert, "BERTH_CLUSTER_TLS_KEYFILE=" + key,
			"BERTH_HTTP_TLS_CERTIFICATE=" + srvCert, "BERTH_HTTP_TLS_KEY=" + srvKey,
		}
	}
	c.nodeEnv = func(nd *node) []string { return tlsEnv(clusterCA, nd.id) }
	serverPool := x509.NewCertPool()
	serverPool.AddCert(serverCA.cert)
	c.https = &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: serverPool}}}
	c.minio = startMinIO(t, c.dir)
	c.startNodes("tls", 3)

	// crane trusts the server CA the way Go programs do: SSL_CERT_FILE.
	crane := harness.Tool(t, "crane")
	home := t.TempDir()
	env := []string{"HOME=" + home, "DOCKER_CONFIG=" + filepath.Join(home, ".docker"), "SSL_CERT_FILE=" + serverCA.file}
	layer := filepath.Join(t.TempDir(), "layer.tar")
	if err := os.WriteFile(layer, harness.TarWithFile("hello.txt", []byte("hello over TLS\n")), 0o644); err != nil {
		t.Fatal(err)
	}
	ref := c.nodes[0].api + "/tls/hello:1"
	harness.Run(t, env, crane, "append", "-f", layer, "-t", ref)
	digest := strings.TrimSpace(harness.Run(t, env, crane, "digest", ref))
	for _, nd := range c.nodes {
		if got := strings.TrimSpace(harness.Run(t, env, crane, "digest", nd.api+"/tls/hello:1")); got != digest {
			t.Errorf("%s: digest %s, want %s", nd.id, got, digest)
		}
	}
	if got := tarFile(t, harness.Run(t, env, crane, "export", c.nodes[2].api+"/tls/hello:1", "-"), "hello.txt"); got != "hello over TLS\n" {
		t.Errorf("hello.txt pulled from %s: %q", c.nodes[2].id, got)
	}
	// Without the CA, crane does not trust the nodes: it is HTTPS for real.
	out, err := exec.Command(crane, "digest", ref).CombinedOutput()
	if err == nil || !strings.Contains(string(out), "certificate signed by unknown authority") {
		t.Errorf("crane without the CA: %v\n%s\nwant an unknown-authority failure", err, out)
	}

	// clusterctl through node 2 shows all three, which it reached over the
	// internal API's mutual TLS.
	clusterctl := harness.Tool(t, "clusterctl")
	ctlArgs := []string{"--server", "https://" + c.nodes[1].api, "--cacert", serverCA.file, "--token", adminToken}
	var st clusterStatus
	if err := json.Unmarshal([]byte(harness.Run(t, nil, clusterctl, append(ctlArgs, "status", "-o", "json")...)), &st); err != nil {
		t.Fatal(err)
	}
	if len(st.Nodes) != 3 || st.Leader == "" {
		t.Fatalf("clusterctl status: %+v, want three nodes and a leader", st)
	}
	for _, n := range st.Nodes {
		if n.State != "Leader" && n.State != "Follower" {
			t.Errorf("clusterctl status: %s is %q, want reached over mutual TLS", n.ID, n.State)
		}
	}

	leader := c.leader()
	c.forgeAppendEntries(t, leader, "tls/hello")
	intruder := c.startIntruder(tlsEnv(otherCA, "intruder"))
	c.checkRefused(leader, intruder, otherCA)

	// The three carry on.
	ref2 := c.nodes[2].api + "/tls/after:1"
	harness.Run(t, env, crane, "append", "-f", layer, "-t", ref2)
	if got := strings.TrimSpace(harness.Run(t, env, crane, "digest", c.nodes[0].api+"/tls/after:1")); !strings.HasPrefix(got, "sha256:") {
		t.Errorf("push after the intruder: digest %q", got)
	}
}

// startIntruder starts a node with the cluster secret and tlsEnv that
// joins the cluster's gossip, and waits until it serves.
func (c *cluster) startIntruder(tlsEnv []string) *node {
	t := c.t
	nd := &node{
		id:      "intruder",
		api:     harnessAddr(t),
		raft:    harnessAddr(t),
		gossip:  harnessAddr(t),
		dataDir: filepath.Join(c.dir, "intruder"),
	}
	var join []string
	for _, o := range c.nodes {
		join = append(join, o.gossip)
	}
	nd.args = []string{"serve", "--node-id", nd.id, "--addr", nd.api, "--data-dir", nd.dataDir,
		"--raft-addr", nd.raft, "--gossip-addr", nd.gossip, "--join", strings.Join(join, ",")}
	for _, kv := range c.nodes[0].env {
		if !strings.HasPrefix(kv, "BERTH_CLUSTER_TLS_") && !strings.HasPrefix(kv, "BERTH_HTTP_TLS_") {
			nd.env = append(nd.env, kv)
		}
	}
	nd.env = append(nd.env, tlsEnv...)
	c.start(nd)
	harness.WaitFor(t, "the intruder serving", 60*time.Second, func() error {
		if nd.p.Exited() {
			t.Fatalf("intruder exited: %v\n%s", nd.p.Err, harness.Tail(nd.p.Out.String(), 4000))
		}
		return c.getOK(c.url(nd.api, "/healthz"))
	})
	return nd
}

// harnessAddr is a free loopback address.
func harnessAddr(t *testing.T) string {
	return fmt.Sprintf("127.0.0.1:%d", harness.FreePort(t))
}

// checkRefused checks, as a user would see it, that the intruder (whose
// cluster certificate otherCA issued) is kept out.
func (c *cluster) checkRefused(leader, intruder *node, otherCA *certAuthority) {
	t := c.t
	// The leader sees it in gossip and refuses to make it a voter.
	harness.WaitFor(t, "the leader refusing the intruder", 30*time.Second, func() error {
		for _, line := range strings.Split(leader.p.Out.String(), "\n") {
			if strings.Contains(line, "not adding voter") && strings.Contains(line, "id=intruder") {
				t.Logf("%s: %s", leader.id, line)
				return nil
			}
		}
		return errors.New("no refusal in the leader's log yet")
	})
	st, err := c.status(leader.api)
	if err != nil {
		t.Fatal(err)
	}
	var seen bool
	for _, n := range st.Nodes {
		if n.ID == intruder.id {
			seen = true
			if n.State != "unreachable" {
				t.Errorf("the leader reached the intruder's internal API: state %q", n.State)
			}
		}
	}
	if !seen {
		t.Errorf("the intruder is not in the leader's status (not in gossip?): %+v", st)
	}
	// For a while it stays outside Raft: no leader, not a voter, not ready.
	for end := time.Now().Add(6 * time.Second); time.Now().Before(end); time.Sleep(500 * time.Millisecond) {
		if err := c.getOK(c.url(intruder.api, "/readyz")); err == nil {
			t.Fatal("the intruder became ready: it joined the cluster")
		}
	}
	self := c.selfStatus(intruder)
	if self.Voter || self.Leader != "" {
		t.Errorf("the intruder's own view: voter %v, leader %q; want neither", self.Voter, self.Leader)
	}

	// Its internal API calls are refused, with a reason.
	intruderCert, err := tls.LoadX509KeyPair(filepath.Join(otherCA.dir, "intruder.crt"), filepath.Join(otherCA.dir, "intruder.key"))
	if err != nil {
		t.Fatal(err)
	}
	serverPool := c.https.Transport.(*http.Transport).TLSClientConfig.RootCAs
	bearer := map[string]string{"Authorization": "Bearer " + secret}
	tests := []struct {
		name    string
		certs   []tls.Certificate
		wantMsg string
	}{
		{"with the intruder's certificate", []tls.Certificate{intruderCert}, "is not issued by the cluster CA"},
		{"without a client certificate", nil, "no client certificate"},
	}
	for _, tt := range tests {
		client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: serverPool, Certificates: tt.certs}}}
		ctx, cancel := harness.Ctx(10 * time.Second)
		code, _, body, err := harness.HTTPStatusWith(ctx, client, "GET", "https://"+leader.api+"/internal/v1/status", bearer, nil)
		cancel()
		if err != nil || code != http.StatusForbidden || !strings.Contains(string(body), tt.wantMsg) {
			t.Errorf("internal API %s: %d %v %s; want 403 with %q", tt.name, code, err, body, tt.wantMsg)
		}
	}
	ctx, cancel := harness.Ctx(10 * time.Second)
	defer cancel()
	if code, _, body, err := harness.HTTPStatus(ctx, "GET", "http://"+leader.api+"/internal/v1/status", bearer, nil); err != nil || code != http.StatusBadRequest {
		t.Errorf("internal API over plain HTTP: %d %v %s; want 400", code, err, body)
	}

	// Its Raft handshake is refused before Raft reads a byte.
	conn, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", leader.raft,
		&tls.Config{Certificates: []tls.Certificate{intruderCert}, InsecureSkipVerify: true, MinVersion: tls.VersionTLS13})
	if err == nil {
		// TLS 1.3: the server judges the client's certificate after the
		// client's side of the handshake; its verdict arrives as an alert.
		conn.SetDeadline(time.Now().Add(5 * time.Second))
		_, err = conn.Read(make([]byte, 1))
		conn.Close()
	}
	var ne net.Error
	if err == nil || (errors.As(err, &ne) && ne.Timeout()) {
		t.Errorf("Raft port with the intruder's certificate: %v; want the handshake refused", err)
	} else {
		t.Logf("Raft port refused the intruder's certificate: %v", err)
	}
}

// selfView is what a node's status says about itself.
type selfView struct {
	ID     string `json:"id"`
	Voter  bool   `json:"voter"`
	Leader string `json:"leader"`
}

// selfStatus is a node's view of itself from its own admin API.
func (c *cluster) selfStatus(nd *node) selfView {
	t := c.t
	ctx, cancel := harness.Ctx(10 * time.Second)
	defer cancel()
	code, _, body, err := c.httpStatus(ctx, "GET", c.url(nd.api, "/admin/v1/cluster/status"), map[string]string{"Authorization": "Bearer " + adminToken}, nil)
	if err != nil || code != http.StatusOK {
		t.Fatalf("status of %s: %d %v %s", nd.id, code, err, body)
	}
	var out struct {
		Nodes []selfView `json:"nodes"`
	}
	if err := json.Unmarshal(body, &out); err != nil {
		t.Fatal(err)
	}
	for _, n := range out.Nodes {
		if n.ID == nd.id {
			return n
		}
	}
	t.Fatalf("%s is not in its own status: %s", nd.id, body)
	return selfView{}
}

// tarFile returns the content of name in the tar stream s.
func tarFile(t *testing.T, s, name string) string {
	t.Helper()
	tr := tar.NewReader(strings.NewReader(s))
	for {
		h, err := tr.Next()
		if err != nil {
			t.Fatalf("%s not in the exported image: %v", name, err)
		}
		if strings.TrimPrefix(h.Name, "./") == name {
			var b bytes.Buffer
			if _, err := io.Copy(&b, tr); err != nil {
				t.Fatal(err)
			}
			return b.String()
		}
	}
}
