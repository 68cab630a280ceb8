package s3

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/opencontainers/go-digest"
)

// An upload session that holds no bytes yet has no object in the bucket.
// Most pushes POST and then PUT the whole blob, and every object write is
// an fsync on the S3 side: writing a state object at POST and deleting it
// at PUT cost three extra round trips per pushed blob. Instead the ID
// itself carries what an empty session's state would say (algorithm and
// start time), signed with a key that every node sharing the bucket reads
// from it, so any node can take the next request (rule 7) and nobody can
// make up a session. The first appended chunk writes the state object
// (If-None-Match, so two nodes cannot both start it); from then on the
// object is the truth, as for any session.
//
// Signed ID, hex: random (12 bytes) | started, Unix milliseconds (8) |
// algorithm (1) | HMAC-SHA256 of the first 21 bytes, a zero byte and the
// repository name, truncated (16).
//
// The signature covers the repository the session was started in, and
// the first chunk's state records it (session.Repo), so a session is
// unknown under any other repository name: an ID cannot be replayed
// against another repository. Sessions from before that binding are
// refused (ErrUploadUnknown), not treated as unbound: a signed ID of
// theirs fails the new signature and a state without Repo matches no
// repository. An unbound session would let anyone who saw its ID finish
// it into any repository for as long as it lives (24 hours empty, until
// PurgeUploads with bytes); refusing costs a client that was mid-upload
// during the upgrade one restarted blob.
//
// A session that ends leaves a tombstone state (Cancelled) so its ID is
// unknown from then on, except after PutUpload: the common whole-blob PUT
// writes nothing but the blob, so a client that reuses such an ID can
// push the same kind of empty session again. That is harmless (the bytes
// are verified as always) and is what saves the writes.
const (
	signedIDLen = 12 + 8 + 1 + 16
	// emptySessionTTL bounds how long a signed ID with no state is
	// accepted. A client holds an empty session for seconds; a session
	// with bytes lives until PurgeUploads removes it.
	emptySessionTTL = 24 * time.Hour
	// clockSkew is how far in the future a start time may lie: nodes'
	// clocks differ a little.
	clockSkew = 5 * time.Minute
)

var (
	signedIDRe = regexp.MustCompile(`^[0-9a-f]{74}$`)
	// legacyIDRe is the random ID of sessions whose state was written at
	// start, by earlier versions; those sessions still work.
	legacyIDRe = regexp.MustCompile(`^[0-9a-f]{32}$`)
)

var algCodes = map[digest.Algorithm]byte{digest.SHA256: 1, digest.SHA512: 2}

func algOf(code byte) (digest.Algorithm, bool) {
	for a, c := range algCodes {
		if c == code {
			return a, true
		}
	}
	return "", false
}

// newSignedID makes the ID of a new, empty session of repo.
func (s *Store) newSignedID(repo string, alg digest.Algorithm, started time.Time) string {
	b := make([]byte, signedIDLen)
	rand.Read(b[:12])
	binary.BigEndian.PutUint64(b[12:20], uint64(started.UnixMilli()))
	b[20] = algCodes[alg]
	copy(b[21:], s.mac(b[:21], repo))
	return hex.EncodeToString(b)
}

// mac signs an ID's fields for repo. The zero byte keeps the input apart
// from that of the unbound IDs of earlier versions (the fields alone).
func (s *Store) mac(fields []byte, repo string) []byte {
	m := hmac.New(sha256.New, s.idKey)
	m.Write(fields)
	m.Write([]byte{0})
	m.Write([]byte(repo))
	return m.Sum(nil)[:16]
}

// signedFor decodes a signed ID and checks that this bucket's key signed
// it for repo. It does not look at the start time.
func (s *Store) signedFor(repo, id string) ([]byte, bool) {
	if !signedIDRe.MatchString(id) {
		return nil, false
	}
	b, _ := hex.DecodeString(id)
	return b, hmac.Equal(b[21:], s.mac(b[:21], repo))
}

// signedStart is the start time a signed ID carries, unverified: enough to
// tell whether it could still be accepted (PurgeUploads keeps a tombstone
// until then), not to accept it.
func signedStart(id string) (time.Time, bool) {
	if !signedIDRe.MatchString(id) {
		return time.Time{}, false
	}
	b, _ := hex.DecodeString(id)
	return time.UnixMilli(int64(binary.BigEndian.Uint64(b[12:20]))).UTC(), true
}

// mayBeLive reports whether a signed ID, if genuine, is still within its
// TTL at now.
func mayBeLive(id string, now time.Time) bool {
	started, ok := signedStart(id)
	return ok && now.Sub(started) <= emptySessionTTL && started.Sub(now) <= clockSkew
}

// emptySession returns the state a signed ID of repo stands for, or false
// if the ID is not signed by this bucket's key for repo or has expired.
func (s *Store) emptySession(repo, id string, now time.Time) (session, bool) {
	b, ok := s.signedFor(repo, id)
	if !ok {
		return session{}, false
	}
	alg, ok := algOf(b[20])
	if !ok || !mayBeLive(id, now) {
		return session{}, false
	}
	started, _ := signedStart(id)
	return session{Repo: repo, Algorithm: alg, Started: started}, true
}

func validID(id string) bool { return signedIDRe.MatchString(id) || legacyIDRe.MatchString(id) }

func (s *Store) idKeyName() string { return s.prefix + "meta/upload-id-key" }

// loadIDKey reads the bucket's upload-ID key, creating it if this is the
// first node: If-None-Match makes nodes that start together agree on one.
func (s *Store) loadIDKey(ctx context.Context) ([]byte, error) {
	for range 3 {
		obj, err := s.c.GetObject(ctx, s.bucket, s.idKeyName(), minio.GetObjectOptions{})
		if err != nil {
			return nil, err
		}
		key, err := io.ReadAll(io.LimitReader(obj, 1024))
		obj.Close()
		if err == nil && len(key) >= 32 {
			return key, nil
		}
		if err != nil && !notFound(err) {
			return nil, err
		}
		if err == nil {
			return nil, fmt.Errorf("%s holds %d bytes, want 32: delete it and restart every node", s.idKeyName(), len(key))
		}
		key = make([]byte, 32)
		rand.Read(key)
		opts := minio.PutObjectOptions{ContentType: "application/octet-stream"}
		opts.SetMatchETagExcept("*")
		_, err = s.c.PutObject(ctx, s.bucket, s.idKeyName(), bytes.NewReader(key), int64(len(key)), opts)
		if err == nil {
			return key, nil
		}
		if minio.ToErrorResponse(err).StatusCode != http.StatusPreconditionFailed {
			return nil, err
		}
		// Another node created it first: read theirs.
	}
	return nil, fmt.Errorf("%s: could not read or create it", s.idKeyName())
}
