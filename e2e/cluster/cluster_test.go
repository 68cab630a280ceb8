package cluster

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/berth-registry/berth/e2e/harness"
)

const (
	minioUser   = "berth-test"
	minioSecret = "berth-test-secret-key"
	secret      = "e2e-cluster-secret-0123456789abcdef"
	adminToken  = "e2e-admin-token"
)

// node is one registryd of the cluster with its fixed addresses, so that a
// killed node can be restarted exactly as it was.
type node struct {
	id                string
	api, raft, gossip string
	dataDir           string
	args, env         []string
	p                 *harness.Proc
}

type cluster struct {
	t       *testing.T
	dir     string
	minio   string // host:port
	nodes   []*node
	lb      string // HAProxy host:port
	haproxy *harness.Proc
	// nodeEnv, if set, adds environment for one node (its TLS files).
	nodeEnv func(nd *node) []string
	// auth leaves authentication at its cluster default (on). Tests of
	// other parts turn it off, so their clients need no credentials.
	auth bool
	// https, when set, is the client for nodes that serve HTTPS (http.tls
	// or cluster.tls): it trusts the CA of their certificates.
	https *http.Client
	// nodeArgs, if set, are added to every node's command line
	// (--log-format json).
	nodeArgs []string
	// caFile is the CA certificate clients trust (crane, regctl and
	// clusterctl); serverCA and clusterCA issue the certificates of a
	// cluster the harness runs with TLS (BERTH_E2E_TLS=1, enableTLS).
	caFile              string
	serverCA, clusterCA *certAuthority
}

// url is a node's API URL for path, https when the nodes serve it.
func (c *cluster) url(api, path string) string {
	if c.https != nil {
		return "https://" + api + path
	}
	return "http://" + api + path
}

// httpStatus is harness.HTTPStatus through the client the nodes need.
func (c *cluster) httpStatus(ctx context.Context, method, url string, hdr map[string]string, body io.Reader) (int, http.Header, []byte, error) {
	client := c.https
	if client == nil {
		client = http.DefaultClient
	}
	return harness.HTTPStatusWith(ctx, client, method, url, hdr, body)
}

// getOK is harness.GetOK through the client the nodes need.
func (c *cluster) getOK(url string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	code, _, body, err := c.httpStatus(ctx, "GET", url, nil, nil)
	if err != nil {
		return err
	}
	if code != http.StatusOK {
		return fmt.Errorf("GET %s: %d %s", url, code, strings.TrimSpace(string(body)))
	}
	return nil
}

func startMinIO(t *testing.T, dir string) string {
	port, console := harness.FreePort(t), harness.FreePort(t)
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	harness.StartProc(t, "minio", harness.Tool(t, "minio"),
		[]string{"server", filepath.Join(dir, "minio"), "--address", addr, "--console-address", fmt.Sprintf("127.0.0.1:%d", console), "--quiet"},
		[]string{"MINIO_ROOT_USER=" + minioUser, "MINIO_ROOT_PASSWORD=" + minioSecret, "MINIO_BROWSER=off"})
	harness.WaitFor(t, "minio", 60*time.Second, func() error { return harness.GetOK("http://" + addr + "/minio/health/live") })
	return addr
}

// newCluster starts MinIO, n registryd nodes that find each other by gossip
// and bootstrap together, and HAProxy in front of them.
func newCluster(t *testing.T, n int) *cluster {
	c := &cluster{t: t, dir: t.TempDir()}
	c.minio = startMinIO(t, c.dir)
	c.startNodes("node", n)
	c.startHAProxy()
	return c
}

// startNodes starts n nodes named prefix1..prefixN that find each other by
// gossip and bootstrap together on the cluster's MinIO, and waits until
// every one is ready.
//
// With BERTH_E2E_TLS=1 the nodes of a cluster that has no TLS of its own
// (c.https unset) serve HTTPS and talk to each other over mutual TLS.
func (c *cluster) startNodes(prefix string, n int) {
	t := c.t
	if tlsSuite() && c.https == nil {
		c.enableTLS()
	}
	for i := 1; i <= n; i++ {
		c.nodes = append(c.nodes, &node{
			id:      fmt.Sprintf("%s%d", prefix, i),
			api:     fmt.Sprintf("127.0.0.1:%d", harness.FreePort(t)),
			raft:    fmt.Sprintf("127.0.0.1:%d", harness.FreePort(t)),
			gossip:  fmt.Sprintf("127.0.0.1:%d", harness.FreePort(t)),
			dataDir: filepath.Join(c.dir, fmt.Sprintf("%s%d", prefix, i)),
		})
	}
	for _, nd := range c.nodes {
		var join []string
		for _, o := range c.nodes {
			if o != nd {
				join = append(join, o.gossip)
			}
		}
		nd.args = []string{"serve", "--node-id", nd.id, "--addr", nd.api, "--data-dir", nd.dataDir,
			"--raft-addr", nd.raft, "--gossip-addr", nd.gossip, "--join", strings.Join(join, ","),
			"--bootstrap-expect", fmt.Sprint(n)}
		nd.args = append(nd.args, c.nodeArgs...)
		nd.env = c.envFor(nd)
		c.start(nd)
	}
	for _, nd := range c.nodes {
		c.waitReady(nd)
		c.checkTLSOnly(nd)
	}
}

// envFor is the environment of one node of the cluster: shared storage,
// secrets, auth, the test's nodeEnv and the node's own TLS certificates.
func (c *cluster) envFor(nd *node) []string {
	env := []string{
		"BERTH_STORAGE_DRIVER=s3", "BERTH_STORAGE_S3_ENDPOINT=" + c.minio, "BERTH_STORAGE_S3_BUCKET=berth",
		"BERTH_STORAGE_S3_ACCESSKEY=" + minioUser, "BERTH_STORAGE_S3_SECRETKEY=" + minioSecret,
		"BERTH_STORAGE_S3_PATHSTYLE=true", "BERTH_CLUSTER_SECRET=" + secret, "BERTH_ADMIN_TOKEN=" + adminToken,
	}
	if !c.auth {
		env = append(env, "BERTH_AUTH_MODE=off")
	}
	if c.nodeEnv != nil {
		env = append(env, c.nodeEnv(nd)...)
	}
	return append(env, c.tlsEnv(nd)...)
}

func (c *cluster) start(nd *node) {
	nd.p = harness.StartProc(c.t, nd.id, harness.Tool(c.t, "registryd"), nd.args, nd.env)
}

func (c *cluster) waitReady(nd *node) {
	harness.WaitFor(c.t, nd.id+" ready", 90*time.Second, func() error {
		if nd.p.Exited() {
			c.t.Fatalf("%s exited: %v\n%s", nd.id, nd.p.Err, harness.Tail(nd.p.Out.String(), 4000))
		}
		return c.getOK(c.url(nd.api, "/readyz"))
	})
}

func (c *cluster) startHAProxy() {
	port := harness.FreePort(c.t)
	c.lb = fmt.Sprintf("127.0.0.1:%d", port)
	bindTLS, serverTLS := c.haproxyTLS()
	var servers strings.Builder
	for _, nd := range c.nodes {
		fmt.Fprintf(&servers, "    server %s %s check%s\n", nd.id, nd.api, serverTLS)
	}
	cfg := fmt.Sprintf(`global
    maxconn 1024
defaults
    mode http
    timeout connect 2s
    timeout client 5m
    timeout server 5m
    retries 3
    option redispatch
frontend registry
    bind %s%s
    default_backend berth
backend berth
    balance roundrobin
    option httpchk GET /readyz
    http-check expect status 200
    default-server inter 500ms fall 2 rise 2
%s`, c.lb, bindTLS, servers.String())
	path := filepath.Join(c.dir, "haproxy.cfg")
	if err := os.WriteFile(path, []byte(cfg), 0o644); err != nil {
		c.t.Fatal(err)
	}
	c.haproxy = harness.StartProc(c.t, "haproxy", harness.Tool(c.t, "haproxy"), []string{"-db", "-f", path}, nil)
	// /readyz, not /v2/: with authentication on, /v2/ answers 401.
	harness.WaitFor(c.t, "haproxy", 30*time.Second, func() error { return c.getOK(c.url(c.lb, "/readyz")) })
}

// clusterStatus is the JSON that `clusterctl status -o json` prints.
type clusterStatus struct {
	Leader string `json:"leader"`
	Nodes  []struct {
		ID           string `json:"id"`
		APIAddr      string `json:"apiAddr"`
		State        string `json:"state"`
		Term         uint64 `json:"term"`
		CommitIndex  uint64 `json:"commitIndex"`
		AppliedIndex uint64 `json:"appliedIndex"`
	} `json:"nodes"`
}

func (c *cluster) status(via string) (clusterStatus, error) {
	var st clusterStatus
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	code, _, body, err := c.httpStatus(ctx, "GET", c.url(via, "/admin/v1/cluster/status"),
		map[string]string{"Authorization": "Bearer " + adminToken}, nil)
	if err != nil {
		return st, err
	}
	if code != 200 {
		return st, fmt.Errorf("status %d: %s", code, body)
	}
	return st, json.Unmarshal(body, &st)
}

// leader returns the node that leads, as every live node agrees.
func (c *cluster) leader() *node {
	var found *node
	harness.WaitFor(c.t, "an agreed leader", 30*time.Second, func() error {
		var leader string
		for _, nd := range c.nodes {
			if nd.p.Exited() {
				continue
			}
			st, err := c.status(nd.api)
			if err != nil {
				return err
			}
			if st.Leader == "" || (leader != "" && st.Leader != leader) {
				return fmt.Errorf("%s sees leader %q, others %q", nd.id, st.Leader, leader)
			}
			leader = st.Leader
		}
		for _, nd := range c.nodes {
			if nd.id == leader {
				found = nd
				return nil
			}
		}
		return fmt.Errorf("leader %q is not one of ours", leader)
	})
	return found
}
