package node

import "testing"

func TestEnvVars(t *testing.T) {
	vars := map[string]EnvVar{}
	for _, v := range EnvVars() {
		vars[v.Name] = v
	}
	if len(vars) != len(EnvKeys()) {
		t.Errorf("%d variables with defaults, %d keys", len(vars), len(EnvKeys()))
	}
	for _, tc := range []struct {
		name, key, def string
		secret         bool
	}{
		{"BERTH_HTTP_ADDR", "http.addr", "127.0.0.1:5000", false},
		{"BERTH_GC_UPLOADMAXAGE", "gc.uploadmaxage", "24h0m0s", false},
		{"BERTH_AUTH_MODE", "auth.mode", "auto", false},
		{"BERTH_CLUSTER_SECRET", "cluster.secret", "", true},
		{"BERTH_ADMIN_TOKEN", "admin.token", "", true},
		{"BERTH_STORAGE_S3_SECRETKEY", "storage.s3.secretkey", "", true},
		{"BERTH_LIMITS_MAXCONNECTIONS", "limits.maxconnections", "4096", false},
	} {
		v, ok := vars[tc.name]
		if !ok || v.Key != tc.key || v.Default != tc.def || v.Secret != tc.secret {
			t.Errorf("%s = %+v, want key %s, default %q, secret %v", tc.name, v, tc.key, tc.def, tc.secret)
		}
	}
}
