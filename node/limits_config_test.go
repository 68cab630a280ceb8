package node

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// The upload limits load from YAML and the environment, and a value that
// would turn a limit off is refused with the key's name.
func TestUploadLimitsConfig(t *testing.T) {
	p := filepath.Join(t.TempDir(), "c.yaml")
	if err := os.WriteFile(p, []byte("limits:\n  bodyreadtimeout: 5s\n  maxemptyuploads: 7\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := LoadConfig(p, []string{"BERTH_LIMITS_EMPTYUPLOADTTL=90s"})
	if err != nil {
		t.Fatal(err)
	}
	if c.Limits.BodyReadTimeout != 5*time.Second || c.Limits.MaxEmptyUploads != 7 || c.Limits.EmptyUploadTTL != 90*time.Second {
		t.Fatalf("limits %+v", c.Limits)
	}
	if err := DefaultConfig().Validate(); err != nil {
		t.Fatalf("defaults: %v", err)
	}
	for _, tc := range []struct {
		key    string
		change func(*LimitsConfig)
	}{
		{"limits.bodyreadtimeout", func(l *LimitsConfig) { l.BodyReadTimeout = 0 }},
		{"limits.maxemptyuploads", func(l *LimitsConfig) { l.MaxEmptyUploads = -1 }},
		{"limits.emptyuploadttl", func(l *LimitsConfig) { l.EmptyUploadTTL = 0 }},
	} {
		c := DefaultConfig()
		tc.change(&c.Limits)
		if err := c.Validate(); err == nil || !strings.Contains(err.Error(), tc.key) {
			t.Errorf("%s: Validate() = %v, want an error naming it", tc.key, err)
		}
	}
}
