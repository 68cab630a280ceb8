package node

import "path/filepath"

// SecretsConfig says where the values that resources reference by
// secretRef live (node/secrets): <dir>/<name>/<key> on every node.
type SecretsConfig struct {
	// Dir is the secrets directory; a Kubernetes Secret may be mounted
	// under it. Default: <datadir>/secrets.
	Dir string `yaml:"dir"`
}

// SecretsDir is secrets.dir, or <datadir>/secrets when it is not set.
func (c Config) SecretsDir() string {
	if c.Secrets.Dir != "" {
		return c.Secrets.Dir
	}
	return filepath.Join(c.Storage.DataDir, "secrets")
}
