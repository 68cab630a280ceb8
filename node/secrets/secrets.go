// Package secrets resolves the secretRef of a resource to the bytes of a
// file in the node's secrets directory: <dir>/<name>/<key>. Resources are
// kept in the log and every backup, so they only name secrets; each node
// holds the values itself, for example as a mounted Kubernetes Secret.
//
// Values are read fresh on every call, so a rotated secret takes effect
// without a restart, and they are never logged or put into errors.
package secrets

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/berth-registry/berth/fsm/resource"
)

// MaxSize bounds one secret value. HMAC keys, tokens and passwords are
// far smaller; the bound keeps a wrong file (a log, a device) from being
// read into memory on every delivery.
const MaxSize = 64 << 10

// Errors a caller can tell apart (errors.Is) to explain the problem.
var (
	ErrInvalidRef = errors.New("invalid secret reference")
	ErrNotFound   = errors.New("secret not found")
	ErrTooLarge   = errors.New("secret too large")
	ErrEmpty      = errors.New("secret is empty")
	ErrNotFile    = errors.New("secret is not a regular file")
)

// Resolver reads secrets from one directory.
type Resolver struct {
	dir string
}

// New returns a resolver for dir. The directory need not exist yet: a
// secret in a missing directory is simply not found, and shows as a
// condition of the resources that need it.
func New(dir string) *Resolver { return &Resolver{dir: dir} }

// Dir is the secrets directory.
func (r *Resolver) Dir() string { return r.dir }

// Resolve returns the value of <dir>/<name>/<key>. Symbolic links are
// followed, as a mounted Kubernetes Secret needs (key -> ..data/key ->
// ..2026_11_30.../key), but never out of the secrets directory. One
// trailing newline is removed, since `echo value > key` adds one that no
// one means as part of the secret.
func (r *Resolver) Resolve(ctx context.Context, ref resource.SecretRef) ([]byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if ref.Key == "" {
		return nil, fmt.Errorf("%w: secret %q: a key is needed (the file in the secret's directory)", ErrInvalidRef, ref.Name)
	}
	if err := ref.Validate(); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalidRef, err)
	}
	where := filepath.Join(r.dir, ref.Name, ref.Key)
	root, err := os.OpenRoot(r.dir)
	if err != nil {
		return nil, r.fail(where, err)
	}
	defer root.Close()
	f, err := root.Open(filepath.Join(ref.Name, ref.Key))
	if err != nil {
		return nil, r.fail(where, err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, r.fail(where, err)
	}
	if !st.Mode().IsRegular() {
		return nil, fmt.Errorf("%w: %s", ErrNotFile, where)
	}
	if st.Size() > MaxSize {
		return nil, fmt.Errorf("%w: %s has %d bytes, at most %d allowed", ErrTooLarge, where, st.Size(), MaxSize)
	}
	// The file may grow between Stat and Read; read at most one byte
	// more than allowed to notice.
	b, err := io.ReadAll(io.LimitReader(f, MaxSize+1))
	if err != nil {
		return nil, r.fail(where, err)
	}
	if len(b) > MaxSize {
		return nil, fmt.Errorf("%w: %s has more than %d bytes", ErrTooLarge, where, MaxSize)
	}
	b = bytes.TrimSuffix(b, []byte("\n"))
	b = bytes.TrimSuffix(b, []byte("\r"))
	if len(b) == 0 {
		return nil, fmt.Errorf("%w: %s", ErrEmpty, where)
	}
	return b, nil
}

// Exists checks that a secret's directory (a reference without a key, as
// a Registry's credentials may have) is there.
func (r *Resolver) Exists(ctx context.Context, ref resource.SecretRef) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := ref.Validate(); err != nil {
		return fmt.Errorf("%w: %v", ErrInvalidRef, err)
	}
	if ref.Key != "" {
		_, err := r.Resolve(ctx, ref)
		return err
	}
	where := filepath.Join(r.dir, ref.Name)
	root, err := os.OpenRoot(r.dir)
	if err != nil {
		return r.fail(where, err)
	}
	defer root.Close()
	st, err := root.Stat(ref.Name)
	if err != nil {
		return r.fail(where, err)
	}
	if !st.IsDir() {
		return fmt.Errorf("%w: %s is not a directory of keys", ErrNotFile, where)
	}
	return nil
}

// fail turns an open or read error into one that names the file and, for
// a missing file, says so in a way errors.Is recognizes. (A symbolic link
// leading out of the directory fails here too, as "path escapes from
// parent".)
func (r *Resolver) fail(where string, err error) error {
	if errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("%w: no file %s (create it on every node, or mount the secret under %s)", ErrNotFound, where, r.dir)
	}
	return fmt.Errorf("read secret %s: %w", where, err)
}
