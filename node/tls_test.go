package node

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/berth-registry/berth/internal/testcerts"
)

func TestValidateHTTPTLS(t *testing.T) {
	const msg = "http.tls: set both certificate and key"
	tests := []struct {
		name    string
		env     []string
		wantErr bool
	}{
		{name: "neither: plain HTTP"},
		{name: "both", env: []string{"BERTH_HTTP_TLS_CERTIFICATE=tls.crt", "BERTH_HTTP_TLS_KEY=tls.key"}},
		{name: "certificate only", env: []string{"BERTH_HTTP_TLS_CERTIFICATE=tls.crt"}, wantErr: true},
		{name: "key only", env: []string{"BERTH_HTTP_TLS_KEY=tls.key"}, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := LoadConfig("", tt.env)
			if err != nil {
				t.Fatal(err)
			}
			err = c.Validate()
			if got := err != nil && strings.Contains(err.Error(), msg); got != tt.wantErr {
				t.Fatalf("Validate() = %v, want the http.tls error: %v", err, tt.wantErr)
			}
			if !tt.wantErr && err != nil {
				t.Fatalf("Validate() = %v", err)
			}
		})
	}
}

// TestNewRefusesUnreadableTLSFiles: a node does not start without the
// certificate it was told to serve, and says which key is wrong.
func TestNewRefusesUnreadableTLSFiles(t *testing.T) {
	ca := testcerts.NewCA(t, "server CA")
	cert, key := ca.Issue(t, "registry")
	missing := filepath.Join(t.TempDir(), "missing.pem")
	tests := []struct {
		name   string
		change func(*Config)
		want   string
	}{
		{"http.tls certificate missing", func(c *Config) { c.HTTP.TLS = HTTPTLSConfig{Certificate: missing, Key: key} }, "http.tls: "},
		{"http.tls key missing", func(c *Config) { c.HTTP.TLS = HTTPTLSConfig{Certificate: cert, Key: missing} }, "http.tls: "},
		{"cluster.tls certificate of another CA", func(c *Config) {
			other := testcerts.NewCA(t, "another CA")
			c.Cluster.TLS = ClusterTLSConfig{CAFile: other.File, CertFile: cert, KeyFile: key}
		}, "cluster.tls.certfile"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := DefaultConfig()
			cfg.HTTP.Addr = "127.0.0.1:0"
			cfg.Storage.DataDir = t.TempDir()
			tt.change(&cfg)
			n, err := New(context.Background(), cfg, "test", slog.New(slog.DiscardHandler), io.Discard)
			if err == nil {
				n.close()
				t.Fatal("New started a node with unusable TLS files")
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q does not name %q", err, tt.want)
			}
		})
	}
}

// TestNodeServesHTTPSAndGuardsInternalAPI runs a node with http.tls and
// cluster.tls: registry clients without a certificate use /v2/ over HTTPS,
// the internal API answers only a caller with the cluster CA's
// certificate (and the secret), and plain HTTP gets nowhere.
func TestNodeServesHTTPSAndGuardsInternalAPI(t *testing.T) {
	server, cluster, other := testcerts.NewCA(t, "server CA"), testcerts.NewCA(t, "cluster CA"), testcerts.NewCA(t, "another CA")
	cert, key := server.Issue(t, "registry")
	nodeCert, nodeKey := cluster.Issue(t, "node1")
	n := runTestNode(t, func(c *Config) {
		c.HTTP.TLS = HTTPTLSConfig{Certificate: cert, Key: key}
		c.Cluster.TLS = ClusterTLSConfig{CAFile: cluster.File, CertFile: nodeCert, KeyFile: nodeKey}
	})
	base := "https://" + n.Addr()

	get := func(t *testing.T, client *http.Client, url string, hdr map[string]string) (int, string) {
		t.Helper()
		req, _ := http.NewRequest("GET", url, nil)
		for k, v := range hdr {
			req.Header.Set(k, v)
		}
		resp, err := client.Do(req)
		if err != nil {
			t.Fatalf("GET %s: %v", url, err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	clientWith := func(certs ...tls.Certificate) *http.Client {
		return &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: server.Pool(), Certificates: certs}}}
	}
	secret := map[string]string{"Authorization": "Bearer cluster-secret"}

	if code, body := get(t, clientWith(), base+"/v2/", nil); code != http.StatusOK {
		t.Errorf("registry client over HTTPS: GET /v2/ = %d %s", code, body)
	}
	tests := []struct {
		name     string
		client   *http.Client
		hdr      map[string]string
		wantCode int
		wantMsg  string
	}{
		{"no client certificate", clientWith(), secret, http.StatusForbidden, "no client certificate"},
		{"certificate of another CA", clientWith(other.Pair(t, "node4")), secret, http.StatusForbidden, "is not issued by the cluster CA"},
		{"cluster certificate without the secret", clientWith(cluster.Pair(t, "node2")), nil, http.StatusUnauthorized, "cluster secret"},
		{"cluster certificate and secret", clientWith(cluster.Pair(t, "node2")), secret, http.StatusOK, `"id":"node-1"`},
		{"the peer client of a node with cluster.tls", newPeerClient("cluster-secret", n.tls).http, secret, http.StatusOK, `"id":"node-1"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, body := get(t, tt.client, base+internalPrefix+"status", tt.hdr)
			if code != tt.wantCode || !strings.Contains(body, tt.wantMsg) {
				t.Errorf("GET internal status = %d %s, want %d with %q", code, body, tt.wantCode, tt.wantMsg)
			}
		})
	}
	if code, _ := get(t, http.DefaultClient, "http://"+n.Addr()+internalPrefix+"status", secret); code != http.StatusBadRequest {
		t.Errorf("plain HTTP to the HTTPS listener: %d, want 400", code)
	}
}

// TestClusterTLSAloneServesHTTPS: with cluster.tls and no http.tls the
// listener still refuses plain HTTP (the internal API must not be reachable
// without TLS), and registry clients see the cluster certificate.
func TestClusterTLSAloneServesHTTPS(t *testing.T) {
	cluster := testcerts.NewCA(t, "cluster CA")
	nodeCert, nodeKey := cluster.Issue(t, "node1")
	n := runTestNode(t, func(c *Config) {
		c.Cluster.TLS = ClusterTLSConfig{CAFile: cluster.File, CertFile: nodeCert, KeyFile: nodeKey}
	})
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: cluster.Pool()}}}
	resp, err := client.Get("https://" + n.Addr() + "/v2/")
	if err != nil {
		t.Fatalf("registry client trusting the cluster CA: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || resp.TLS.PeerCertificates[0].Subject.CommonName != "node1" {
		t.Errorf("GET /v2/ = %d with certificate %q, want 200 with the cluster certificate", resp.StatusCode, resp.TLS.PeerCertificates[0].Subject.CommonName)
	}
	resp, err = http.Get("http://" + n.Addr() + internalPrefix + "status")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest {
		t.Errorf("plain HTTP: %d, want 400", resp.StatusCode)
	}
}

func TestServerLogQuietsHandshakeErrors(t *testing.T) {
	tests := []struct {
		line, want string
	}{
		{"http: TLS handshake error from 10.0.0.9:4711: EOF", "level=DEBUG"},
		{"http: superfluous response.WriteHeader call", "level=WARN"},
	}
	for _, tt := range tests {
		var buf strings.Builder
		serverLog(slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))).Print(tt.line)
		if !strings.Contains(buf.String(), tt.want) || !strings.Contains(buf.String(), tt.line) {
			t.Errorf("%q logged as %q, want %s", tt.line, buf.String(), tt.want)
		}
	}
}

// TestWarnUntrustedPeers: http.tls from a private CA without cluster.tls
// leaves peers unable to verify each other; the node says so at start.
func TestWarnUntrustedPeers(t *testing.T) {
	private := testcerts.NewCA(t, "private CA")
	cert, key := private.Issue(t, "registry")
	nodeCert, nodeKey := private.Issue(t, "node1")
	tests := []struct {
		name     string
		cfg      func(*Config)
		wantWarn bool
	}{
		{"plain HTTP", func(*Config) {}, false},
		{"http.tls from a private CA alone", func(c *Config) { c.HTTP.TLS = HTTPTLSConfig{Certificate: cert, Key: key} }, true},
		{"http.tls and cluster.tls", func(c *Config) {
			c.HTTP.TLS = HTTPTLSConfig{Certificate: cert, Key: key}
			c.Cluster.TLS = ClusterTLSConfig{CAFile: private.File, CertFile: nodeCert, KeyFile: nodeKey}
		}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := DefaultConfig()
			tt.cfg(&cfg)
			var buf strings.Builder
			logger := slog.New(slog.NewTextHandler(&buf, nil))
			a, err := loadAPITLS(cfg, logger)
			if err != nil {
				t.Fatal(err)
			}
			a.warnUntrustedPeers("127.0.0.1:5000", logger)
			if got := strings.Contains(buf.String(), "peers will not trust"); got != tt.wantWarn {
				t.Errorf("warned: %v, want %v\n%s", got, tt.wantWarn, buf.String())
			}
		})
	}
}

// TestREADMECertificateRecipe runs README.md's openssl commands (section
// "TLS") and starts TLS with what they make: the cluster files pass
// node/peertls's checks and the client certificate verifies for its name.
func TestREADMECertificateRecipe(t *testing.T) {
	b, err := os.ReadFile(filepath.Join("..", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	_, rest, ok := strings.Cut(string(b), "### TLS\n")
	if ok {
		_, rest, ok = strings.Cut(rest, "```sh\n")
	}
	var script string
	if ok {
		script, _, ok = strings.Cut(rest, "```")
	}
	if !ok || !strings.Contains(script, "openssl req") {
		t.Fatal(`README.md has no sh block with openssl under "### TLS"`)
	}
	dir := t.TempDir()
	cmd := exec.Command("bash", "-euo", "pipefail", "-c", script)
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("README's openssl recipe: %v\n%s", err, out)
	}
	in := func(name string) string { return filepath.Join(dir, name) }
	cfg := DefaultConfig()
	cfg.HTTP.TLS = HTTPTLSConfig{Certificate: in("registry.crt"), Key: in("registry.key")}
	cfg.Cluster.TLS = ClusterTLSConfig{CAFile: in("ca.crt"), CertFile: in("node1.crt"), KeyFile: in("node1.key")}
	a, err := loadAPITLS(cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatalf("the recipe's files: %v", err)
	}
	cert, err := a.server.GetCertificate(&tls.ClientHelloInfo{ServerName: "registry.example.com"})
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	caPEM, _ := os.ReadFile(in("ca.crt"))
	pool.AppendCertsFromPEM(caPEM)
	if _, err := cert.Leaf.Verify(x509.VerifyOptions{DNSName: "registry.example.com", Roots: pool}); err != nil {
		t.Errorf("registry.crt for registry.example.com: %v", err)
	}
}
