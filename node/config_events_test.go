package node

import (
	"os"
	"strings"
	"testing"
	"time"
)

func TestEventsConfig(t *testing.T) {
	cluster := func(c *Config) {
		c.Raft.Addr, c.Gossip.Addr, c.Cluster.Secret = "127.0.0.1:7000", "127.0.0.1:7946", "s"
		c.Storage.Driver, c.Storage.S3.Endpoint, c.Storage.S3.Bucket = "s3", "minio:9000", "b"
	}
	for _, tc := range []struct {
		name    string
		change  func(*Config)
		enabled bool
		wantErr string // "" means valid
	}{
		{"single node default: embedded", func(*Config) {}, true, ""},
		{"single node off", func(c *Config) { c.Events.Enabled = "false" }, false, ""},
		{"cluster without urls: off", cluster, false, ""},
		{"cluster with urls: on", func(c *Config) {
			cluster(c)
			c.Events.NATS.URLs = []string{"nats://a:4222"}
			c.Events.Replicas = 3
		}, true, ""},
		{"cluster forced on without urls", func(c *Config) { cluster(c); c.Events.Enabled = "true" }, true, "events.nats.urls"},
		{"not a boolean", func(c *Config) { c.Events.Enabled = "yes" }, true, "events.enabled"},
		{"short dup window", func(c *Config) { c.Events.DuplicateWindow = time.Second }, true, "events.duplicatewindow"},
		{"embedded R3", func(c *Config) { c.Events.Replicas = 3 }, true, "embedded NATS server holds one replica"},
		{"listen without token", func(c *Config) { c.Events.NATS.Listen = "127.0.0.1:4222" }, true, "events.nats.token"},
		{"listen with token", func(c *Config) { c.Events.NATS.Listen = ":4222"; c.Events.NATS.Token = "t" }, true, ""},
		{"listen not host:port", func(c *Config) { c.Events.NATS.Listen = "4222"; c.Events.NATS.Token = "t" }, true, "not host:port"},
		{"cert without key", func(c *Config) {
			c.Events.NATS.URLs = []string{"nats://a:4222"}
			c.Events.NATS.TLS.CertFile = "c.pem"
		}, true, "events.nats.tls"},
		{"pulls on a single node", func(c *Config) { c.Events.Pulls = true }, true, ""},
		{"pulls with events off", func(c *Config) { c.Events.Enabled = "false"; c.Events.Pulls = true }, false, "events.pulls"},
		{"pulls in a cluster without NATS", func(c *Config) { cluster(c); c.Events.Pulls = true }, false, "events.pulls"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := DefaultConfig()
			tc.change(&c)
			if got := c.EventsEnabled(); got != tc.enabled {
				t.Errorf("EventsEnabled = %v, want %v", got, tc.enabled)
			}
			err := c.Validate()
			switch {
			case tc.wantErr == "" && err != nil:
				t.Errorf("Validate: %v", err)
			case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
				t.Errorf("Validate: %v, want an error mentioning %q", err, tc.wantErr)
			}
		})
	}
}

func TestEventsConfigFromYAMLAndEnv(t *testing.T) {
	path := t.TempDir() + "/c.yaml"
	if err := os.WriteFile(path, []byte("events:\n  enabled: false\n  duplicatewindow: 15m\n  nats:\n    urls: [nats://a:4222, nats://b:4222]\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := LoadConfig(path, []string{"BERTH_EVENTS_NATS_URLS=nats://x:4222,nats://y:4222", "BERTH_EVENTS_REPLICAS=3", "BERTH_EVENTS_PULLS=true"})
	if err != nil {
		t.Fatal(err)
	}
	if DefaultConfig().Events.Pulls {
		t.Error("pull events are on by default")
	}
	if c.Events.Enabled != "false" || c.Events.DuplicateWindow != 15*time.Minute || c.Events.Replicas != 3 || !c.Events.Pulls ||
		strings.Join(c.Events.NATS.URLs, ",") != "nats://x:4222,nats://y:4222" {
		t.Errorf("events config = %+v", c.Events)
	}
}
