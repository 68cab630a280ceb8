package peertls

import (
	"crypto/tls"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/berth-registry/berth/internal/testcerts"
)

func load(t *testing.T, ca *testcerts.CA, name string) *CA {
	t.Helper()
	c, k := ca.Issue(t, name)
	l, err := Load(ca.File, c, k)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// serve runs h behind the listener a node uses with cluster.tls and
// http.tls: clients get clientCert, peers the cluster certificate.
func serve(t *testing.T, ca *CA, clientCert *tls.Certificate, h http.Handler) string {
	t.Helper()
	srv := httptest.NewUnstartedServer(h)
	get := func(*tls.ClientHelloInfo) (*tls.Certificate, error) { return clientCert, nil }
	srv.Listener = tls.NewListener(srv.Listener, ca.ServerConfig(get))
	srv.Config.ConnContext = ConnContext
	srv.Start()
	t.Cleanup(srv.Close)
	return srv.Listener.Addr().String()
}

func ok() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "internal") })
}

// TestGuardRefusesWithoutClusterCertificate calls the guarded internal API
// the ways a stranger can, and as a member.
func TestGuardRefusesWithoutClusterCertificate(t *testing.T) {
	cluster, other := testcerts.NewCA(t, "cluster CA"), testcerts.NewCA(t, "another CA")
	self := load(t, cluster, "node1")
	pool := cluster.Pool()
	addr := serve(t, self, nil, self.Guard(ok()))
	memberCert := cluster.Pair(t, "node2")
	strangerCert := other.Pair(t, "node4")

	tests := []struct {
		name     string
		certs    []tls.Certificate
		wantCode int
		wantMsg  string
	}{
		{"no client certificate", nil, http.StatusForbidden, "no client certificate"},
		{"certificate from another CA", []tls.Certificate{strangerCert}, http.StatusForbidden, "CN=node4\\\" is not issued by the cluster CA"},
		{"certificate from the cluster CA", []tls.Certificate{memberCert}, http.StatusOK, "internal"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{
				RootCAs: pool, ServerName: ServerName, Certificates: tt.certs,
				InsecureSkipVerify: true, // the server's name is ServerName; its CA is checked in TestPeerClient
			}}}
			defer client.CloseIdleConnections()
			// Twice: the second request reuses the connection and its
			// cached verdict.
			for range 2 {
				resp, err := client.Get("https://" + addr + "/internal/v1/status")
				if err != nil {
					t.Fatalf("request: %v", err)
				}
				b, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if resp.StatusCode != tt.wantCode || !strings.Contains(string(b), tt.wantMsg) {
					t.Fatalf("got %d %s, want %d with %q", resp.StatusCode, b, tt.wantCode, tt.wantMsg)
				}
			}
		})
	}

	// Plain HTTP never reaches the guard on a TLS listener; the guard
	// refuses it too where a listener would let it through.
	rec := httptest.NewRecorder()
	self.Guard(ok()).ServeHTTP(rec, httptest.NewRequest("GET", "/internal/v1/status", nil))
	if rec.Code != http.StatusForbidden || !strings.Contains(rec.Body.String(), "only HTTPS") {
		t.Errorf("plain HTTP request: %d %s, want 403 saying only HTTPS", rec.Code, rec.Body)
	}
	resp, err := http.Get("http://" + addr + "/internal/v1/status")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest {
		t.Errorf("plain HTTP to the TLS listener: %d, want 400", resp.StatusCode)
	}
}

// TestPeerClient checks both sides of the handshake: a peer gets the
// cluster certificate while registry clients get http.tls's, a member's
// client verifies a member's server, and refuses a server whose
// certificate is from another CA.
func TestPeerClient(t *testing.T) {
	cluster, other, public := testcerts.NewCA(t, "cluster CA"), testcerts.NewCA(t, "another CA"), testcerts.NewCA(t, "server CA")
	serverCert := public.Pair(t, "registry")
	member, stranger := load(t, cluster, "node1"), load(t, other, "node4")
	addr := serve(t, member, &serverCert, member.Guard(ok()))
	strangerAddr := serve(t, stranger, &serverCert, stranger.Guard(ok()))

	// A registry client without a certificate sees http.tls's certificate.
	pool := public.Pool()
	resp, err := (&http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}).Get("https://" + addr + "/v2/")
	if err != nil {
		t.Fatalf("registry client trusting the server CA: %v", err)
	}
	resp.Body.Close()
	if got := resp.TLS.PeerCertificates[0].Subject.CommonName; got != "registry" {
		t.Errorf("registry client got certificate %q, want http.tls's", got)
	}

	peer := load(t, cluster, "node2")
	client := &http.Client{Transport: &http.Transport{DialTLSContext: peer.DialTLSContext}}
	resp, err = client.Get("https://" + addr + "/internal/v1/status")
	if err != nil {
		t.Fatalf("member to member: %v", err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || string(b) != "internal" {
		t.Errorf("member to member: %d %s", resp.StatusCode, b)
	}
	if got := resp.TLS.PeerCertificates[0].Subject.CommonName; got != "node1" {
		t.Errorf("peer got certificate %q, want the cluster certificate node1", got)
	}

	_, err = client.Get("https://" + strangerAddr + "/internal/v1/status")
	if err == nil || !strings.Contains(err.Error(), "not from the cluster CA") {
		t.Errorf("member to a node of another CA: %v, want a refusal naming the cluster CA", err)
	}
}

func TestLoadRefusesCertificateOfAnotherCA(t *testing.T) {
	cluster, other := testcerts.NewCA(t, "cluster CA"), testcerts.NewCA(t, "another CA")
	c, k := other.Issue(t, "node4")
	_, err := Load(cluster.File, c, k)
	if err == nil || !strings.Contains(err.Error(), "is not issued by cluster.tls.cafile") {
		t.Fatalf("Load = %v, want a refusal", err)
	}
}
