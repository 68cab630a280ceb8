package node

import (
	"strings"
	"testing"
)

func TestValidateClusterTLS(t *testing.T) {
	const msg = "cluster.tls: set all of cafile, certfile and keyfile"
	tests := []struct {
		name    string
		env     []string
		wantErr bool
	}{
		{name: "none: the secret handshake"},
		{name: "all three", env: []string{"BERTH_CLUSTER_TLS_CAFILE=ca.pem", "BERTH_CLUSTER_TLS_CERTFILE=node.pem", "BERTH_CLUSTER_TLS_KEYFILE=node.key"}},
		{name: "CA only", env: []string{"BERTH_CLUSTER_TLS_CAFILE=ca.pem"}, wantErr: true},
		{name: "no key", env: []string{"BERTH_CLUSTER_TLS_CAFILE=ca.pem", "BERTH_CLUSTER_TLS_CERTFILE=node.pem"}, wantErr: true},
		{name: "no CA", env: []string{"BERTH_CLUSTER_TLS_CERTFILE=node.pem", "BERTH_CLUSTER_TLS_KEYFILE=node.key"}, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := LoadConfig("", tt.env)
			if err != nil {
				t.Fatal(err)
			}
			err = c.Validate()
			if got := err != nil && strings.Contains(err.Error(), msg); got != tt.wantErr {
				t.Fatalf("Validate() = %v, want the cluster.tls error: %v", err, tt.wantErr)
			}
			if !tt.wantErr && err != nil {
				t.Fatalf("Validate() = %v", err)
			}
		})
	}
}
