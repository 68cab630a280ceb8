package cluster

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
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

// TestDockerPartition runs three nodes as FROM-scratch containers on a
// user-defined network and cuts the leader off with `docker network
// disconnect`. The majority must elect a new leader and keep taking
// writes; the isolated node must refuse writes and must not serve stale
// reads; once reconnected it must converge.
//
// Each container sits on two networks: "raft" carries all node-to-node
// traffic (Raft, gossip, forwarding: the addresses the nodes advertise)
// and is the one partitioned; "client" is how the test and MinIO reach
// the nodes. Docker isolates bridges from each other, so cutting "raft"
// cuts the node off from its peers but not from the test.
//
// Under BERTH_E2E_TLS=1 the containers get TLS like every other cluster:
// certificates naming their fixed client-network addresses, copied into
// each container before it starts (containerTLS).
func TestDockerPartition(t *testing.T) {
	d := newDockerEnv(t)
	c := &cluster{t: t, dir: t.TempDir()}
	if tlsSuite() {
		c.enableTLS()
	}
	registryd, minio := harness.Tool(t, "registryd"), harness.Tool(t, "minio")
	regImage := d.buildImage("registryd", registryd, filepath.Join("..", "..", "deploy", "docker", "Dockerfile.registryd"))
	minioImage := d.buildImage("minio", minio, filepath.Join("..", "..", "deploy", "docker", "Dockerfile.minio"))

	raftNet := d.network("raft", fmt.Sprintf("10.231.%d.0/24", 10+randByte()%200))
	// Fixed client addresses, so that the nodes' HTTPS certificates can
	// name them before the containers start.
	clientNet := d.network("client", fmt.Sprintf("10.232.%d.0/24", 10+randByte()%200))
	minioName := d.name("minio")
	d.docker("run", "-d", "--name", minioName, "--network", clientNet.name,
		"-e", "MINIO_ROOT_USER="+minioUser, "-e", "MINIO_ROOT_PASSWORD="+minioSecret, "-e", "MINIO_BROWSER=off",
		minioImage, "server", "/data", "--address", ":9000")

	prefix, clientPrefix := strings.TrimSuffix(raftNet.subnet, "0/24"), strings.TrimSuffix(clientNet.subnet, "0/24")
	type cnode struct{ id, name, raftIP, clientIP string }
	var nodes []*cnode
	for i := 1; i <= 3; i++ {
		nodes = append(nodes, &cnode{id: fmt.Sprintf("node%d", i), name: d.name(fmt.Sprintf("node%d", i)),
			raftIP: fmt.Sprintf("%s%d", prefix, 10+i), clientIP: fmt.Sprintf("%s%d", clientPrefix, 10+i)})
	}
	for _, n := range nodes {
		var join []string
		for _, o := range nodes {
			if o != n {
				join = append(join, o.raftIP+":7946")
			}
		}
		tlsArgs, tlsDir := c.containerTLS(n.id, n.clientIP)
		args := append([]string{"create", "--name", n.name, "--network", clientNet.name, "--ip", n.clientIP}, tlsArgs...)
		d.docker(append(args,
			"-e", "BERTH_STORAGE_DRIVER=s3", "-e", "BERTH_STORAGE_S3_ENDPOINT="+minioName+":9000",
			"-e", "BERTH_STORAGE_S3_BUCKET=berth", "-e", "BERTH_STORAGE_S3_ACCESSKEY="+minioUser,
			"-e", "BERTH_STORAGE_S3_SECRETKEY="+minioSecret, "-e", "BERTH_STORAGE_S3_PATHSTYLE=true",
			"-e", "BERTH_CLUSTER_SECRET="+secret, "-e", "BERTH_ADMIN_TOKEN="+adminToken, "-e", "BERTH_AUTH_MODE=off",
			"-e", "BERTH_RAFT_APPLYTIMEOUT=5s",
			regImage, "serve", "--node-id", n.id, "--data-dir", "/data",
			"--addr", "0.0.0.0:5000", "--advertise", n.raftIP+":5000",
			"--raft-addr", "0.0.0.0:7000", "--raft-advertise", n.raftIP+":7000",
			"--gossip-addr", "0.0.0.0:7946", "--gossip-advertise", n.raftIP+":7946",
			"--join", strings.Join(join, ","), "--bootstrap-expect", "3")...)
		if tlsDir != "" {
			d.docker("cp", tlsDir, n.name+":"+containerTLSDir)
		}
		d.docker("network", "connect", "--ip", n.raftIP, raftNet.name, n.name)
		d.docker("start", n.name)
		if got := d.ip(n.name, clientNet); got != n.clientIP {
			t.Fatalf("%s has client address %s, want %s", n.id, got, n.clientIP)
		}
	}
	api := func(n *cnode) string { return n.clientIP + ":5000" }
	for _, n := range nodes {
		harness.WaitFor(t, n.id+" ready", 120*time.Second, func() error { return c.getOK(c.url(api(n), "/readyz")) })
	}

	before := harness.NewImage("part/app", "before")
	ctx, cancel := c.ctx(3 * time.Minute)
	defer cancel()
	if err := before.Push(ctx, api(nodes[0])); err != nil {
		t.Fatalf("push before partition: %v", err)
	}
	st, err := c.status(api(nodes[0]))
	if err != nil {
		t.Fatal(err)
	}
	var isolated *cnode
	var majority []*cnode
	for _, n := range nodes {
		if n.id == st.Leader {
			isolated = n
		} else {
			majority = append(majority, n)
		}
	}
	if isolated == nil {
		t.Fatalf("no leader among %v", st)
	}
	t.Logf("isolating leader %s", isolated.id)
	d.docker("network", "disconnect", raftNet.name, isolated.name)

	// The majority elects a new leader and keeps accepting pushes.
	harness.WaitFor(t, "a new leader in the majority", 60*time.Second, func() error {
		st, err := c.status(api(majority[0]))
		if err != nil {
			return err
		}
		if st.Leader == "" || st.Leader == isolated.id {
			return fmt.Errorf("leader is %q", st.Leader)
		}
		return nil
	})
	after := harness.NewImage("part/app", "after")
	harness.WaitFor(t, "a push to the majority", 60*time.Second, func() error { return after.Push(ctx, api(majority[1])) })
	for _, n := range majority {
		if err := after.Verify(ctx, api(n)); err != nil {
			t.Errorf("majority node %s: %v", n.id, err)
		}
	}

	// The isolated node refuses writes...
	refused := harness.NewImage("part/app", "isolated")
	if err := refused.Push(ctx, api(isolated)); err == nil {
		t.Errorf("isolated node %s acknowledged a write", isolated.id)
	}
	// ...and serves no stale reads: not the old tag, not a 404 for the new one.
	for _, ref := range []string{"before", "after"} {
		code, _, body, err := harness.HTTPStatus(ctx, "GET", c.url(api(isolated), "/v2/part/app/manifests/"+ref), nil, nil)
		if err != nil {
			t.Fatalf("read on isolated node: %v", err)
		}
		if code != http.StatusServiceUnavailable {
			t.Errorf("isolated node answered GET %s with %d (%s), want 503", ref, code, strings.TrimSpace(string(body)))
		}
	}

	// Reconnected, it converges.
	d.docker("network", "connect", "--ip", isolated.raftIP, raftNet.name, isolated.name)
	harness.WaitFor(t, isolated.id+" to converge", 90*time.Second, func() error { return after.Verify(ctx, api(isolated)) })
	if err := refused.Verify(ctx, api(majority[0])); err == nil {
		t.Errorf("the write the isolated node refused appeared after healing")
	}
}

// dockerEnv names and cleans up everything a test creates.
type dockerEnv struct {
	t          *testing.T
	id         string
	containers []string
	networks   []string
	images     []string
}

type dockerNet struct{ name, subnet string }

func newDockerEnv(t *testing.T) *dockerEnv {
	if _, err := exec.LookPath("docker"); err != nil {
		t.Fatal("docker CLI not found: this test needs the Docker engine (it is not skipped)")
	}
	if out, err := exec.Command("docker", "info", "--format", "{{.ServerVersion}}").CombinedOutput(); err != nil {
		t.Fatalf("Docker engine not reachable (this test is not skipped): %v\n%s", err, out)
	}
	d := &dockerEnv{t: t, id: hex.EncodeToString([]byte{randByte(), randByte(), randByte()})}
	t.Cleanup(d.cleanup)
	return d
}

func (d *dockerEnv) name(s string) string { return "berth-e2e-" + d.id + "-" + s }

func (d *dockerEnv) docker(args ...string) string {
	d.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, "docker", args...).CombinedOutput()
	if err != nil {
		d.t.Fatalf("docker %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	if len(args) > 0 && (args[0] == "run" || args[0] == "create") {
		d.containers = append(d.containers, args[slicesIndex(args, "--name")+1])
	}
	return strings.TrimSpace(string(out))
}

func slicesIndex(s []string, v string) int {
	for i, x := range s {
		if x == v {
			return i
		}
	}
	return -1
}

// buildImage wraps a static binary in a FROM scratch image.
func (d *dockerEnv) buildImage(name, bin, dockerfile string) string {
	ctxDir := d.t.TempDir()
	b, err := os.ReadFile(bin)
	if err != nil {
		d.t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(ctxDir, filepath.Base(bin)), b, 0o755); err != nil {
		d.t.Fatal(err)
	}
	df, err := os.ReadFile(dockerfile)
	if err != nil {
		d.t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(ctxDir, "Dockerfile"), df, 0o644); err != nil {
		d.t.Fatal(err)
	}
	tag := "berth-e2e/" + name + ":" + d.id
	d.docker("build", "-q", "-t", tag, ctxDir)
	d.images = append(d.images, tag)
	return tag
}

func (d *dockerEnv) network(name, subnet string) dockerNet {
	n := d.name(name)
	args := []string{"network", "create"}
	if subnet != "" {
		args = append(args, "--subnet", subnet)
	}
	d.docker(append(args, n)...)
	d.networks = append(d.networks, n)
	return dockerNet{name: n, subnet: subnet}
}

func (d *dockerEnv) ip(container string, net dockerNet) string {
	return d.docker("inspect", "-f", fmt.Sprintf("{{(index .NetworkSettings.Networks %q).IPAddress}}", net.name), container)
}

func (d *dockerEnv) cleanup() {
	for _, c := range d.containers {
		if d.t.Failed() {
			out, _ := exec.Command("docker", "logs", "--tail", "80", c).CombinedOutput()
			d.t.Logf("---- docker logs %s ----\n%s", c, out)
		}
		exec.Command("docker", "rm", "-f", "-v", c).Run()
	}
	for _, n := range d.networks {
		exec.Command("docker", "network", "rm", n).Run()
	}
	for _, i := range d.images {
		exec.Command("docker", "rmi", "-f", i).Run()
	}
}

func randByte() byte {
	var b [1]byte
	rand.Read(b[:])
	return b[0]
}

// containerTLSDir is where a node container finds its TLS files.
const containerTLSDir = "/tls"

// containerTLS is, for a TLS cluster, the `docker create` flags that point
// a node container at its TLS files and the directory holding them (to
// copy to containerTLSDir before it starts): a cluster certificate and an
// HTTPS certificate for clientIP, the address the test reaches it at.
// Peers reach each other by SNI with the cluster certificate, which names
// no address. Both are empty for a plain cluster.
func (c *cluster) containerTLS(id, clientIP string) (args []string, dir string) {
	if c.clusterCA == nil {
		return nil, ""
	}
	t := c.t
	cert, key := c.clusterCA.issue(t, id)
	srvCert, srvKey := c.serverCA.issue(t, id+"-https", net.ParseIP(clientIP))
	dir = filepath.Join(t.TempDir(), "tls")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	files := []struct{ src, name, env string }{
		{c.clusterCA.file, "ca.pem", "BERTH_CLUSTER_TLS_CAFILE"},
		{cert, "cluster.crt", "BERTH_CLUSTER_TLS_CERTFILE"},
		{key, "cluster.key", "BERTH_CLUSTER_TLS_KEYFILE"},
		{srvCert, "https.crt", "BERTH_HTTP_TLS_CERTIFICATE"},
		{srvKey, "https.key", "BERTH_HTTP_TLS_KEY"},
	}
	for _, f := range files {
		b, err := os.ReadFile(f.src)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, f.name), b, 0o600); err != nil {
			t.Fatal(err)
		}
		args = append(args, "-e", f.env+"="+containerTLSDir+"/"+f.name)
	}
	return args, dir
}
