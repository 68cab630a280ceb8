package blob

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"
)

// An upload is abandoned when it has been idle, not when it is old: one
// that started long ago and still sends chunks is never purged.
func TestPurgeUploadsByLastActivity(t *testing.T) {
	ctx := context.Background()
	s, err := NewFS(t.TempDir(), slog.New(slog.DiscardHandler), FSLimits{})
	if err != nil {
		t.Fatal(err)
	}
	start := func() string {
		st, err := s.StartUpload(ctx, "app", digest.SHA256)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.Append(ctx, "app", st.ID, 0, strings.NewReader("first chunk ")); err != nil {
			t.Fatal(err)
		}
		return st.ID
	}
	idle, active := start(), start()
	time.Sleep(50 * time.Millisecond)
	cut := time.Now() // both started before it
	time.Sleep(50 * time.Millisecond)
	if _, err := s.Append(ctx, "app", active, int64(len("first chunk ")), strings.NewReader("second chunk")); err != nil {
		t.Fatal(err)
	}
	n, err := s.PurgeUploads(ctx, cut)
	if err != nil || n != 1 {
		t.Fatalf("purged %d, %v; want the idle session only", n, err)
	}
	if _, err := s.UploadStatus(ctx, "app", idle); !errors.Is(err, ErrUploadUnknown) {
		t.Errorf("idle session: %v, want it purged", err)
	}
	if st, err := s.UploadStatus(ctx, "app", active); err != nil || st.Offset != int64(len("first chunk second chunk")) {
		t.Errorf("active session: %+v, %v; want it untouched", st, err)
	}
}
