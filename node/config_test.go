package node

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestLoadConfig(t *testing.T) {
	dir := t.TempDir()
	write := func(name, body string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	tests := []struct {
		name    string
		file    string
		env     []string
		check   func(t *testing.T, c Config)
		wantErr string
	}{
		{
			name: "defaults without file",
			check: func(t *testing.T, c Config) {
				if c.HTTP.Addr != "127.0.0.1:5000" || c.Storage.DataDir != "./data" || c.Limits.MaxManifestSize != 4<<20 {
					t.Errorf("unexpected defaults: %+v", c)
				}
			},
		},
		{
			name: "empty file keeps defaults",
			file: write("empty.yaml", ""),
			check: func(t *testing.T, c Config) {
				if c.HTTP.Addr != "127.0.0.1:5000" {
					t.Errorf("addr = %q", c.HTTP.Addr)
				}
			},
		},
		{
			name: "file sets keys",
			file: write("a.yaml", "http:\n  addr: 0.0.0.0:6000\nstorage:\n  datadir: /var/lib/berth\nraft:\n  applytimeout: 5s\n"),
			check: func(t *testing.T, c Config) {
				if c.HTTP.Addr != "0.0.0.0:6000" || c.Storage.DataDir != "/var/lib/berth" || c.Raft.ApplyTimeout != 5*time.Second {
					t.Errorf("file not applied: %+v", c)
				}
			},
		},
		{
			name: "env overrides file",
			file: write("b.yaml", "http:\n  addr: 0.0.0.0:6000\n"),
			env:  []string{"BERTH_HTTP_ADDR=127.0.0.1:7000", "BERTH_LIMITS_MAXMANIFESTSIZE=1024", "BERTH_RAFT_SNAPSHOTINTERVAL=1m", "UNRELATED=x"},
			check: func(t *testing.T, c Config) {
				if c.HTTP.Addr != "127.0.0.1:7000" || c.Limits.MaxManifestSize != 1024 || c.Raft.SnapshotInterval != time.Minute {
					t.Errorf("env not applied: %+v", c)
				}
			},
		},
		{name: "unknown key is an error", file: write("c.yaml", "http:\n  adr: x\n"), wantErr: "field adr not found"},
		{name: "bad env duration", env: []string{"BERTH_RAFT_APPLYTIMEOUT=soon"}, wantErr: "BERTH_RAFT_APPLYTIMEOUT"},
		{name: "bad env integer", env: []string{"BERTH_LIMITS_MAXMANIFESTSIZE=big"}, wantErr: "not an integer"},
		{name: "missing file", file: filepath.Join(dir, "nope.yaml"), wantErr: "no such file"},
		{
			name: "limits from file and env",
			file: write("l.yaml", "limits:\n  maxconnections: 100\n  maxconcurrentrequests: 50\n  readheadertimeout: 3s\n"),
			env:  []string{"BERTH_LIMITS_MAXREQUESTSPERCLIENT=0", "BERTH_LIMITS_REFERRERSPAGESIZE=10"},
			check: func(t *testing.T, c Config) {
				l := c.Limits
				if l.MaxConnections != 100 || l.MaxConcurrentRequests != 50 || l.ReadHeaderTimeout != 3*time.Second ||
					l.MaxRequestsPerClient != 0 || l.ReferrersPageSize != 10 {
					t.Errorf("limits not applied: %+v", l)
				}
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := LoadConfig(tt.file, tt.env)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want it to contain %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			tt.check(t, c)
		})
	}
}

func TestValidateReportsEveryProblem(t *testing.T) {
	c := DefaultConfig()
	c.HTTP.Addr = ""
	c.Log.Level = "loud"
	c.Storage.Driver = "tape"
	c.Limits.MaxConnections, c.Limits.MaxConcurrentRequests, c.Limits.MaxRequestsPerClient = 0, -1, -1
	c.Limits.ReadHeaderTimeout, c.Limits.ReferrersPageSize = 0, 0
	err := c.Validate()
	if err == nil {
		t.Fatal("want error")
	}
	for _, want := range []string{"http.addr", "log.level", "storage.driver", "limits.maxconnections: must be positive",
		"limits.maxconcurrentrequests", "limits.maxrequestsperclient: must not be negative", "limits.readheadertimeout", "limits.referrerspagesize"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %s", err, want)
		}
	}
	if err := DefaultConfig().Validate(); err != nil {
		t.Errorf("defaults invalid: %v", err)
	}
}

func TestEnvKeysCoverEveryField(t *testing.T) {
	keys := map[string]string{}
	for _, kv := range EnvKeys() {
		keys[kv[0]] = kv[1]
	}
	for env, path := range map[string]string{
		"BERTH_HTTP_ADDR":         "http.addr",
		"BERTH_STORAGE_DATADIR":   "storage.datadir",
		"BERTH_LOG_LEVEL":         "log.level",
		"BERTH_NODE_ID":           "node.id",
		"BERTH_RAFT_APPLYTIMEOUT": "raft.applytimeout",
	} {
		if keys[env] != path {
			t.Errorf("EnvKeys[%s] = %q, want %q", env, keys[env], path)
		}
	}
}

// TestValidateFaultSettings: the free-space reserve and the S3 deadline
// are checked, with the key named in the error.
func TestValidateFaultSettings(t *testing.T) {
	s3 := func(c *Config) {
		c.Storage.Driver = "s3"
		c.Storage.S3.Endpoint, c.Storage.S3.Bucket = "127.0.0.1:9000", "berth"
	}
	for _, tc := range []struct {
		name    string
		mod     func(*Config)
		wantErr string
	}{
		{"defaults", func(*Config) {}, ""},
		{"no reserve", func(c *Config) { c.Storage.ReservedSpace = 0 }, ""},
		{"negative reserve", func(c *Config) { c.Storage.ReservedSpace = -1 }, "storage.reservedspace"},
		{"s3 default timeout", s3, ""},
		{"s3 no timeout", func(c *Config) { s3(c); c.Storage.S3.Timeout = 0 }, "storage.s3.timeout"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := DefaultConfig()
			tc.mod(&c)
			err := c.Validate()
			if tc.wantErr == "" && err != nil {
				t.Fatalf("unexpected error: %v", err)
			}
			if tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)) {
				t.Fatalf("err = %v, want it to name %s", err, tc.wantErr)
			}
		})
	}
}
