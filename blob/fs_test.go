package blob_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"testing"

	"github.com/opencontainers/go-digest"

	"github.com/berth-registry/berth/blob"
	"github.com/berth-registry/berth/blob/blobtest"
)

// repo is the repository the tests start upload sessions in.
const repo = "team-a/app"

func newFS(t *testing.T, root string) *blob.FS {
	s, err := blob.NewFS(root, slog.New(slog.NewTextHandler(io.Discard, nil)), blob.FSLimits{})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestFSConformance(t *testing.T) {
	blobtest.Run(t, func(t *testing.T) (blob.Store, blob.Store) {
		root := t.TempDir()
		return newFS(t, root), newFS(t, root)
	})
}

// A crash in the middle of an append leaves bytes in the data file past
// the recorded offset; they must not count.
func TestFSAppendAfterCrashTruncates(t *testing.T) {
	ctx := context.Background()
	root := t.TempDir()
	s := newFS(t, root)
	st, err := s.StartUpload(ctx, repo, digest.SHA256)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Append(ctx, repo, st.ID, 0, bytes.NewReader([]byte("hello "))); err != nil {
		t.Fatal(err)
	}
	f, err := os.OpenFile(filepath.Join(root, "uploads", st.ID+".data"), os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.Write([]byte("GARBAGE FROM A CRASHED APPEND"))
	f.Close()

	s2 := newFS(t, root) // "restart"
	if _, err := s2.Append(ctx, repo, st.ID, 6, bytes.NewReader([]byte("world"))); err != nil {
		t.Fatal(err)
	}
	d := digest.FromString("hello world")
	if _, err := s2.Commit(ctx, repo, st.ID, d); err != nil {
		t.Fatalf("commit after crash: %v", err)
	}
}

// Files left in tmp/ by a crash are removed on start and never visible.
func TestFSCleansTmpOnStart(t *testing.T) {
	root := t.TempDir()
	newFS(t, root)
	junk := filepath.Join(root, "tmp", "put-123")
	os.WriteFile(junk, []byte("half a blob"), 0o600)
	newFS(t, root)
	if _, err := os.Stat(junk); !os.IsNotExist(err) {
		t.Fatalf("tmp file survived restart: %v", err)
	}
}

// A session state written before sessions were bound to a repository names
// none: it is refused under every name, never usable from any repository.
func TestFSUnboundSessionRefused(t *testing.T) {
	ctx := context.Background()
	root := t.TempDir()
	s := newFS(t, root)
	id := "0123456789abcdef0123456789abcdef"
	state := `{"offset":0,"algorithm":"sha256","started":"2026-11-01T00:00:00Z","hash":null}`
	if err := os.WriteFile(filepath.Join(root, "uploads", id+".json"), []byte(state), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, r := range []string{repo, ""} {
		if _, err := s.UploadStatus(ctx, r, id); !errors.Is(err, blob.ErrUploadUnknown) {
			t.Errorf("status as %q: %v, want ErrUploadUnknown", r, err)
		}
		if _, err := s.Append(ctx, r, id, 0, bytes.NewReader([]byte("x"))); !errors.Is(err, blob.ErrUploadUnknown) {
			t.Errorf("append as %q: %v, want ErrUploadUnknown", r, err)
		}
		if err := s.CancelUpload(ctx, r, id); !errors.Is(err, blob.ErrUploadUnknown) {
			t.Errorf("cancel as %q: %v, want ErrUploadUnknown", r, err)
		}
	}
}
