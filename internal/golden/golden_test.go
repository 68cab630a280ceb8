package golden

import (
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"testing"
)

// recorder stands in for a test so that a Fatalf can be observed.
type recorder struct {
	testing.TB
	failed string
}

func (r *recorder) Helper() {}
func (r *recorder) Fatalf(format string, args ...any) {
	r.failed = fmt.Sprintf(format, args...)
	runtime.Goexit()
}
func (r *recorder) Fatal(args ...any) { r.Fatalf("%s", fmt.Sprint(args...)) }

// run calls fn with a recorder and returns what it failed with ("" if
// nothing).
func run(t *testing.T, fn func(tb testing.TB)) string {
	r := &recorder{TB: t}
	done := make(chan struct{})
	go func() {
		defer close(done)
		fn(r)
	}()
	<-done
	return r.failed
}

func sh(t *testing.T, args ...string) {
	t.Helper()
	cmd := exec.Command("git", append([]string{"-c", "user.name=t", "-c", "user.email=t@example.com", "-c", "commit.gpgsign=false"}, args...)...)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("git %v: %v\n%s", args, err, out)
	}
}

func write(t *testing.T, path, s string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(s), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestReleasedFilesNeverChange(t *testing.T) {
	t.Chdir(t.TempDir())
	sh(t, "init", "-q")
	os.Mkdir("testdata", 0o755)
	write(t, "testdata/A.v1.json", "released\n")
	sh(t, "add", ".")
	sh(t, "commit", "-q", "-m", "release A v1")

	if got := string(Released(t, "testdata/A.v1.json")); got != "released\n" {
		t.Errorf("Released = %q", got)
	}
	// A new, uncommitted fixture is what is on disk.
	write(t, "testdata/B.v1.json", "new\n")
	if got := string(Released(t, "testdata/B.v1.json")); got != "new\n" {
		t.Errorf("Released(new) = %q", got)
	}
	// -update may create it, but never rewrite a tracked one.
	if msg := run(t, func(tb testing.TB) { Write(tb, "testdata/C.v1.json", []byte("c\n")) }); msg != "" {
		t.Errorf("Write of a new file: %s", msg)
	}
	if msg := run(t, func(tb testing.TB) { Write(tb, "testdata/A.v1.json", []byte("rewritten\n")) }); !strings.Contains(msg, "refuses to rewrite") {
		t.Errorf("Write of a released file: %q", msg)
	}
	if b, _ := os.ReadFile("testdata/A.v1.json"); string(b) != "released\n" {
		t.Errorf("a released file was rewritten: %q", b)
	}

	// Editing a released file is caught, in the working tree and even
	// once the edit is committed.
	write(t, "testdata/A.v1.json", "edited\n")
	if msg := run(t, func(tb testing.TB) { Released(tb, "testdata/A.v1.json") }); !strings.Contains(msg, "must never change") {
		t.Errorf("edited working copy: %q", msg)
	}
	sh(t, "commit", "-q", "-am", "rewrite A v1")
	if msg := run(t, func(tb testing.TB) { Released(tb, "testdata/A.v1.json") }); !strings.Contains(msg, "must never change") {
		t.Errorf("edit committed: %q", msg)
	}

	if got := Files(t, "testdata"); strings.Join(got, ",") != "testdata/A.v1.json,testdata/B.v1.json,testdata/C.v1.json" {
		t.Errorf("Files = %v", got)
	}
}

func TestOutsideGitFails(t *testing.T) {
	t.Chdir(t.TempDir())
	t.Setenv("GIT_CEILING_DIRECTORIES", os.TempDir())
	write(t, "x", "x")
	if msg := run(t, func(tb testing.TB) { Released(tb, "x") }); !strings.Contains(msg, "git clone") {
		t.Errorf("outside a work tree: %q", msg)
	}
}
