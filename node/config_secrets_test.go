package node

import (
	"os"
	"path/filepath"
	"testing"
)

func TestSecretsDir(t *testing.T) {
	file := filepath.Join(t.TempDir(), "c.yaml")
	if err := os.WriteFile(file, []byte("storage:\n  datadir: /var/lib/berth\nsecrets:\n  dir: /run/secrets/berth\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, file string
		env        []string
		want       string
	}{
		{"default under the data dir", "", nil, filepath.Join("data", "secrets")},
		{"default follows the data dir", "", []string{"BERTH_STORAGE_DATADIR=/srv/berth"}, "/srv/berth/secrets"},
		{"file", file, nil, "/run/secrets/berth"},
		{"environment over file", file, []string{"BERTH_SECRETS_DIR=/etc/berth/secrets"}, "/etc/berth/secrets"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := LoadConfig(tt.file, tt.env)
			if err != nil {
				t.Fatal(err)
			}
			if got := c.SecretsDir(); got != tt.want {
				t.Errorf("SecretsDir() = %q, want %q", got, tt.want)
			}
		})
	}
}
