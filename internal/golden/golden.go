// Package golden guards golden test fixtures. Events and snapshots are
// forever (ARCHITECTURE.md rule 3): once a fixture is committed it is a
// promise that those exact bytes decode, so a test must compare against the
// bytes as first released, never against whatever the working tree holds
// now, and -update must never rewrite a released file.
//
// The history comes from git, which every clone (CI included) has. A test
// run outside a git work tree fails rather than silently trusting the
// working copy. In a shallow clone (CI's usual depth 1) the oldest commit
// present stands in for the first, so there the check only catches an
// uncommitted edit; a full clone catches a committed rewrite too.
package golden

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// Released returns the bytes of the golden file at path (relative to the
// test's package directory) as the commit that first added it holds them,
// and fails the test if the working copy differs: a released fixture was
// edited. A file no commit holds yet (a fixture being added) is returned as
// it is on disk.
func Released(t testing.TB, path string) []byte {
	t.Helper()
	requireGit(t)
	disk, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("golden file %s: %v", path, err)
	}
	added := strings.Fields(git(t, "log", "--diff-filter=A", "--format=%H", "--", path))
	if len(added) == 0 {
		return disk // not committed yet: a new fixture
	}
	first := added[len(added)-1] // log lists newest first
	released := []byte(git(t, "show", first+":./"+filepath.ToSlash(path)))
	if !bytes.Equal(disk, released) {
		t.Fatalf("golden file %s differs from the bytes released in commit %.12s: a released fixture must never change; restore it with `git checkout %.12s -- %s` and add a new version instead", path, first, first, path)
	}
	return released
}

// Write creates a new golden file. It refuses a file git already tracks:
// released fixtures are never rewritten, even with -update.
func Write(t testing.TB, path string, b []byte) {
	t.Helper()
	requireGit(t)
	if tracked(t, path) {
		t.Fatalf("-update refuses to rewrite %s: git tracks it, so it is released; add a new schema version with its own file instead", path)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// Files lists the regular files directly in dir (a testdata directory),
// so a test can check that each one is decoded by something. Directories
// (fuzz corpora) are left out.
func Files(t testing.TB, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range entries {
		if e.Type().IsRegular() {
			out = append(out, filepath.Join(dir, e.Name()))
		}
	}
	return out
}

func tracked(t testing.TB, path string) bool {
	t.Helper()
	err := exec.Command("git", "ls-files", "--error-unmatch", "--", path).Run()
	var exit *exec.ExitError
	switch {
	case err == nil:
		return true
	case errors.As(err, &exit):
		return false
	default:
		t.Fatalf("git ls-files %s: %v", path, err)
		return false
	}
}

func requireGit(t testing.TB) {
	t.Helper()
	if out, err := exec.Command("git", "rev-parse", "--is-inside-work-tree").CombinedOutput(); err != nil || strings.TrimSpace(string(out)) != "true" {
		t.Fatalf("golden files are checked against their git history: run the tests in a git clone with git on PATH (git rev-parse: %v %s)", err, out)
	}
}

func git(t testing.TB, args ...string) string {
	t.Helper()
	out, err := exec.Command("git", args...).Output()
	if err != nil {
		var exit *exec.ExitError
		if errors.As(err, &exit) {
			t.Fatalf("git %s: %v: %s", strings.Join(args, " "), err, exit.Stderr)
		}
		t.Fatalf("git %s: %v", strings.Join(args, " "), err)
	}
	return string(out)
}
