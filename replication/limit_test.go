package replication

import (
	"bytes"
	"context"
	"io"
	"testing"
	"time"
)

// A policy's bandwidth caps the rate its copies read at; 0 does not
// throttle.
func TestLimiter(t *testing.T) {
	data := bytes.Repeat([]byte("x"), 96<<10)
	for _, tc := range []struct {
		name     string
		rate     int64
		min, max time.Duration
	}{
		{"unlimited", 0, 0, 500 * time.Millisecond},
		{"64 KiB/s", 64 << 10, 1300 * time.Millisecond, 5 * time.Second}, // 96 KiB: 1.5 s
	} {
		t.Run(tc.name, func(t *testing.T) {
			start := time.Now()
			n, err := io.Copy(io.Discard, newLimiter(tc.rate).reader(context.Background(), bytes.NewReader(data)))
			took := time.Since(start)
			if err != nil || n != int64(len(data)) {
				t.Fatalf("copied %d, %v", n, err)
			}
			if took < tc.min || took > tc.max {
				t.Errorf("took %s, want between %s and %s", took, tc.min, tc.max)
			}
		})
	}
	// A cancelled copy stops waiting.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := io.Copy(io.Discard, newLimiter(1024).reader(ctx, bytes.NewReader(data))); err == nil {
		t.Error("a cancelled throttled copy finished")
	}
}
