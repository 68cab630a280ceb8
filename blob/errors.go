package blob

import (
	"errors"
	"syscall"
)

// Errors that say the storage underneath, not the request, is at fault.
// Drivers wrap them (or, for the filesystem, return the *os.PathError that
// carries ENOSPC or EDQUOT) so the API answers what the operator must do
// instead of a generic 500.
var (
	// ErrNoSpace means the bytes cannot be stored until space is freed:
	// the disk or the quota of the data dir is full. The API answers 507.
	ErrNoSpace = errors.New("no space left for the registry's data")
	// ErrUnavailable means the storage service (S3, MinIO) did not answer
	// in time or could not be reached. The API answers 503 with
	// Retry-After: the client should try again later.
	ErrUnavailable = errors.New("blob storage unavailable")
)

// IsNoSpace reports whether err means a full disk or an exhausted quota,
// whether a driver wrapped ErrNoSpace or the error is the filesystem's own
// ENOSPC or EDQUOT.
func IsNoSpace(err error) bool {
	return errors.Is(err, ErrNoSpace) || errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT)
}

// IsUnavailable reports whether err means the storage service could not be
// reached or did not answer in time.
func IsUnavailable(err error) bool { return errors.Is(err, ErrUnavailable) }
