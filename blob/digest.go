package blob

import (
	"crypto/sha256"
	"crypto/sha512"
	"errors"
	"fmt"
	"hash"
	"strconv"
	"strings"

	"github.com/opencontainers/go-digest"
)

// ErrDigestInvalid is returned for a digest string that does not parse.
var ErrDigestInvalid = errors.New("invalid digest")

// Supported reports whether Berth stores blobs under this algorithm.
func Supported(alg digest.Algorithm) bool {
	return alg == digest.SHA256 || alg == digest.SHA512
}

// ParseDigest validates a digest from a client and restricts it to the
// algorithms Berth supports.
func ParseDigest(s string) (digest.Digest, error) {
	d, err := digest.Parse(s)
	if err != nil {
		return "", fmt.Errorf("%w: %q: %v", ErrDigestInvalid, s, err)
	}
	if !Supported(d.Algorithm()) {
		return "", fmt.Errorf("%w: %s (use sha256 or sha512)", ErrUnsupported, d.Algorithm())
	}
	return d, nil
}

// newHash returns the hash for a supported algorithm.
func newHash(alg digest.Algorithm) (hash.Hash, error) {
	switch alg {
	case digest.SHA256:
		return sha256.New(), nil
	case digest.SHA512:
		return sha512.New(), nil
	}
	return nil, fmt.Errorf("%w: %q", ErrUnsupported, alg)
}

// ParseContentRange parses the Content-Range of an upload chunk. The OCI
// spec's form is "<start>-<end>" (inclusive); clients in the wild also send
// "bytes <start>-<end>/<total>" or "bytes=<start>-<end>", which are taken
// too. Numbers must be plain non-negative decimals with end >= start.
func ParseContentRange(s string) (start, end int64, err error) {
	v := strings.TrimSpace(s)
	v = strings.TrimPrefix(v, "bytes")
	v = strings.TrimLeft(v, " =")
	if i := strings.IndexByte(v, '/'); i >= 0 {
		total := v[i+1:]
		if total != "*" && !isDigits(total) {
			return 0, 0, fmt.Errorf("invalid Content-Range %q: bad total", s)
		}
		v = v[:i]
	}
	a, b, ok := strings.Cut(v, "-")
	if !ok || !isDigits(a) || !isDigits(b) {
		return 0, 0, fmt.Errorf("invalid Content-Range %q: want <start>-<end>", s)
	}
	if start, err = strconv.ParseInt(a, 10, 64); err != nil {
		return 0, 0, fmt.Errorf("invalid Content-Range %q: %w", s, err)
	}
	if end, err = strconv.ParseInt(b, 10, 64); err != nil {
		return 0, 0, fmt.Errorf("invalid Content-Range %q: %w", s, err)
	}
	if end < start {
		return 0, 0, fmt.Errorf("invalid Content-Range %q: end before start", s)
	}
	return start, end, nil
}

func isDigits(s string) bool {
	if s == "" || len(s) > 19 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}
