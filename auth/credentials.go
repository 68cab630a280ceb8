package auth

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strings"

	"golang.org/x/crypto/bcrypt"
)

// RobotSecretPrefix starts every robot secret, so a leaked one is
// recognisable (secret scanners, logs) and cannot be mistaken for a
// password.
const RobotSecretPrefix = "berth_rbt_"

const (
	robotSecretBytes = 32
	// maxPasswordBytes is bcrypt's limit; longer passwords would be
	// silently cut, so that two differing in byte 73 would both work.
	maxPasswordBytes = 72
	maxRobotSecret   = 256
)

// dummyHash is a bcrypt hash (cost 10) of a random string nobody knows.
// VerifyPassword compares against it when a user does not exist, so a
// login takes as long for an unknown user as for a wrong password and
// the time does not tell which user names exist.
const dummyHash = "$2a$10$aao54XB2wb/oxSNfiLYb2u7fTaTLdcaJTDk0rQQ8rJOzHy11uLm.e"

// ErrBadCredentials is the one answer to a failed sign-in, whatever the
// reason, so a client cannot probe which part was wrong.
var ErrBadCredentials = errors.New("invalid username or password")

// VerifyPassword checks password against a bcrypt hash; an empty hash
// (no such user) spends the same time and fails.
func VerifyPassword(hash, password string) error {
	if len(password) > maxPasswordBytes {
		return ErrBadCredentials
	}
	h := hash
	if h == "" {
		h = dummyHash
	}
	if err := bcrypt.CompareHashAndPassword([]byte(h), []byte(password)); err != nil || hash == "" {
		return ErrBadCredentials
	}
	return nil
}

// NewRobotSecret makes a robot secret (RobotSecretPrefix and 32 random
// bytes in base64url) and the hash to store in the Robot's spec. The
// secret is shown once and never stored.
func NewRobotSecret(rnd io.Reader) (secret, hash string, err error) {
	if rnd == nil {
		rnd = rand.Reader
	}
	var b [robotSecretBytes]byte
	if _, err := io.ReadFull(rnd, b[:]); err != nil {
		return "", "", fmt.Errorf("robot secret: %w", err)
	}
	secret = RobotSecretPrefix + base64.RawURLEncoding.EncodeToString(b[:])
	return secret, HashRobotSecret(secret), nil
}

// HashRobotSecret is the stored form of a robot secret: "sha256:" and
// the hex digest. A plain hash suffices (no bcrypt) because the secret
// is 256 random bits: there is nothing to guess.
func HashRobotSecret(secret string) string {
	sum := sha256.Sum256([]byte(secret))
	return "sha256:" + hex.EncodeToString(sum[:])
}

// VerifyRobotSecret compares a presented secret with the stored hash in
// constant time.
func VerifyRobotSecret(hash, secret string) bool {
	if len(secret) > maxRobotSecret || !strings.HasPrefix(secret, RobotSecretPrefix) {
		return false
	}
	got := HashRobotSecret(secret)
	return len(hash) == len(got) && subtle.ConstantTimeCompare([]byte(hash), []byte(got)) == 1
}

// robotNameRe is a DNS label: no '$' (Harbor's robot$ names break shells
// and YAML), no '/', nothing a shell or a URL treats specially.
var robotNameRe = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$`)

// CheckRobotName accepts 1-63 lower-case letters, digits and '-',
// starting and ending with a letter or digit.
func CheckRobotName(name string) error {
	if !robotNameRe.MatchString(name) {
		return fmt.Errorf("robot name %q: use 1-63 lower-case letters, digits or '-', starting and ending with a letter or digit (no $ or other shell characters)", name)
	}
	return nil
}
