package main

import (
	"encoding/pem"
	"log/slog"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/berth-registry/berth/fsm"
	"github.com/berth-registry/berth/node/admin"
)

// TestCACert talks to an https:// admin API whose certificate no system
// CA vouches for: refused without --cacert, accepted with the flag or
// BERTH_CACERT, and a file that is no certificate is named in the error.
func TestCACert(t *testing.T) {
	n := &fsmNode{f: fsm.New(slog.New(slog.DiscardHandler))}
	srv := httptest.NewTLSServer(admin.New(testToken, n, n, nil))
	t.Cleanup(srv.Close)
	dir := t.TempDir()
	caFile := filepath.Join(dir, "ca.crt")
	if err := os.WriteFile(caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw}), 0o600); err != nil {
		t.Fatal(err)
	}
	notPEM := filepath.Join(dir, "ca.key")
	if err := os.WriteFile(notPEM, []byte("not a certificate"), 0o600); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(srv.URL, "https://") {
		t.Fatalf("test server %s is not https", srv.URL)
	}

	tests := []struct {
		name    string
		env     map[string]string
		args    []string
		wantErr string
	}{
		{name: "no CA", wantErr: "certificate signed by unknown authority (its certificate is from a CA this machine does not trust: pass that CA's certificate with --cacert"},
		{name: "--cacert", args: []string{"--cacert", caFile}},
		{name: "BERTH_CACERT", env: map[string]string{"BERTH_CACERT": caFile}},
		{name: "flag beats env", env: map[string]string{"BERTH_CACERT": notPEM}, args: []string{"--cacert", caFile}},
		{name: "not a certificate", args: []string{"--cacert", notPEM}, wantErr: "holds no PEM certificate"},
		{name: "missing file", args: []string{"--cacert", filepath.Join(dir, "none.crt")}, wantErr: "read --cacert"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := &cli{t: t, env: map[string]string{"BERTH_SERVER": srv.URL, "BERTH_TOKEN": testToken}}
			for k, v := range tt.env {
				c.env[k] = v
			}
			out, err := c.run("", append(tt.args, "get", "registries")...)
			switch {
			case tt.wantErr == "" && err != nil:
				t.Fatalf("clusterctl get registries: %v\n%s", err, out)
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Fatalf("clusterctl get registries: %v\n%s\nwant an error with %q", err, out, tt.wantErr)
			}
		})
	}
}
