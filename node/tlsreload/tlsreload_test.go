package tlsreload

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// pair is a self-signed certificate and its key, PEM encoded.
type pair struct {
	cert, key []byte
	serial    int64
}

func newPair(t *testing.T, serial int64) pair {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: "reload test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return pair{
		cert:   pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		key:    pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}),
		serial: serial,
	}
}

// write replaces the files the way an operator does, and moves their
// modification time forward so that a coarse file system clock cannot hide
// the change.
func write(t *testing.T, path string, b []byte, at time.Time) {
	t.Helper()
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Chtimes(tmp, at, at); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

// lockedBuffer is a log sink the server's goroutines write to.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// servedSerial makes a new TLS connection to srv and returns the serial
// number of the certificate it presented.
func servedSerial(t *testing.T, addr string) int64 {
	t.Helper()
	c, err := tls.Dial("tcp", addr, &tls.Config{InsecureSkipVerify: true})
	if err != nil {
		t.Fatalf("TLS dial: %v", err)
	}
	defer c.Close()
	return c.ConnectionState().PeerCertificates[0].SerialNumber.Int64()
}

// TestReplacedCertificateIsServed runs an HTTPS server on a Reloader and
// replaces its files: new connections get the new certificate without a
// restart; a broken replacement keeps the last good one and is logged once.
func TestReplacedCertificateIsServed(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key")
	a, b, c := newPair(t, 1), newPair(t, 2), newPair(t, 3)
	at := time.Now().Add(-time.Minute)
	write(t, certFile, a.cert, at)
	write(t, keyFile, a.key, at)

	var logs lockedBuffer
	r, err := New(certFile, keyFile, Options{Interval: 10 * time.Millisecond, Logger: slog.New(slog.NewTextHandler(&logs, nil)), Key: "http.tls"})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {}))
	// Not StartTLS: it would add httptest's own certificate, which
	// crypto/tls prefers to GetCertificate for a client without SNI.
	srv.Listener = tls.NewListener(srv.Listener, &tls.Config{GetCertificate: r.GetCertificate})
	srv.Start()
	defer srv.Close()
	addr := srv.Listener.Addr().String()

	// waitServed polls new connections until the server presents want.
	waitServed := func(want int64) {
		t.Helper()
		deadline := time.Now().Add(5 * time.Second)
		for {
			got := servedSerial(t, addr)
			if got == want {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("server presents certificate %d, want %d", got, want)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	if got := servedSerial(t, addr); got != a.serial {
		t.Fatalf("first certificate served: %d, want %d", got, a.serial)
	}

	at = at.Add(10 * time.Second)
	write(t, certFile, b.cert, at)
	write(t, keyFile, b.key, at)
	waitServed(b.serial)
	if !strings.Contains(logs.String(), "certificate reloaded") {
		t.Errorf("no log line for the reload:\n%s", logs.String())
	}

	// Half a rotation: the new certificate with the old key does not load.
	at = at.Add(10 * time.Second)
	write(t, certFile, c.cert, at)
	for range 5 {
		time.Sleep(20 * time.Millisecond)
		if got := servedSerial(t, addr); got != b.serial {
			t.Fatalf("served %d while the key did not match the certificate, want the previous %d", got, b.serial)
		}
	}
	if n := strings.Count(logs.String(), "does not load"); n != 1 {
		t.Errorf("the broken pair was logged %d times, want once:\n%s", n, logs.String())
	}
	// The key arrives: the rotation completes.
	write(t, keyFile, c.key, at)
	waitServed(c.serial)
}

func TestNewRefusesBadFiles(t *testing.T) {
	dir := t.TempDir()
	a, b := newPair(t, 1), newPair(t, 2)
	file := func(name string, content []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, content, 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	certA, keyA, keyB := file("a.crt", a.cert), file("a.key", a.key), file("b.key", b.key)
	garbage := file("garbage", []byte("not PEM"))
	tests := []struct {
		name, cert, key string
		want            string
	}{
		{"missing certificate", filepath.Join(dir, "none.crt"), keyA, "none.crt"},
		{"missing key", certA, filepath.Join(dir, "none.key"), "none.key"},
		{"certificate not PEM", garbage, keyA, "load certificate"},
		{"key of another certificate", certA, keyB, "private key does not match"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := New(tt.cert, tt.key, Options{Key: "http.tls"})
			if err == nil {
				t.Fatal("New accepted the files")
			}
			if !strings.Contains(err.Error(), tt.want) || !strings.HasPrefix(err.Error(), "http.tls: ") {
				t.Errorf("error %q does not name the key and %q", err, tt.want)
			}
		})
	}
	if _, err := New(certA, keyA, Options{}); err != nil {
		t.Errorf("a good pair: %v", err)
	}
}
