package blob

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strconv"

	"golang.org/x/sys/unix"
)

// tempFile is a file on its way into the store. On Linux it is an
// O_TMPFILE inode with no name until publish links it under its digest:
// one directory operation instead of create plus rename, and a crash
// leaves nothing to clean up. Elsewhere it is a named file in tmp/.
type tempFile struct {
	f     *os.File
	named bool
}

func newTempFile(dir string) (*tempFile, error) {
	fd, err := unix.Open(dir, unix.O_TMPFILE|unix.O_WRONLY|unix.O_CLOEXEC, 0o600)
	if err == nil {
		return &tempFile{f: os.NewFile(uintptr(fd), "tmpfile")}, nil
	}
	f, err := os.CreateTemp(dir, "put-*")
	if err != nil {
		return nil, fmt.Errorf("create temp file: %w", err)
	}
	return &tempFile{f: f, named: true}, nil
}

// publish gives the finished file its final name. If the name exists (an
// identical blob landed concurrently) the content is the same: done.
func (t *tempFile) publish(final string) error {
	if t.named {
		if err := os.Rename(t.f.Name(), final); err != nil {
			return fmt.Errorf("move blob into place: %w", err)
		}
		return nil
	}
	proc := "/proc/self/fd/" + strconv.Itoa(int(t.f.Fd()))
	err := unix.Linkat(unix.AT_FDCWD, proc, unix.AT_FDCWD, final, unix.AT_SYMLINK_FOLLOW)
	if err != nil && !errors.Is(err, fs.ErrExist) {
		return fmt.Errorf("link blob into place: %w", err)
	}
	return nil
}

// discard closes the file; a named one that was not published is removed.
func (t *tempFile) discard() {
	t.f.Close()
	if t.named {
		os.Remove(t.f.Name())
	}
}
