package auth

import (
	"bytes"
	"crypto/rand"
	"errors"
	"strings"
	"testing"

	"github.com/berth-registry/berth/fsm/resource"
)

// hash10 is bcrypt (cost 10) of "s3cret-pass".
const hash10 = "$2a$10$lLuWqPd2eQBjBOD6tKSxTOfiOjykZALwEId.Wzvv4ukv8qmoR816."

func TestVerifyPassword(t *testing.T) {
	if err := VerifyPassword(hash10, "s3cret-pass"); err != nil {
		t.Errorf("right password: %v", err)
	}
	for name, tt := range map[string]struct{ hash, pw string }{
		"wrong password":        {hash10, "s3cret-pasS"},
		"empty password":        {hash10, ""},
		"no such user":          {"", "s3cret-pass"},
		"over 72 bytes":         {hash10, "s3cret-pass" + strings.Repeat("x", 70)},
		"hash is not bcrypt":    {"s3cret-pass", "s3cret-pass"},
		"dummy hash never pass": {"", ""},
	} {
		if err := VerifyPassword(tt.hash, tt.pw); !errors.Is(err, ErrBadCredentials) {
			t.Errorf("%s: %v", name, err)
		}
	}
	if err := resource.CheckPasswordHash(dummyHash); err != nil {
		t.Errorf("the dummy hash is not a valid cost-10 bcrypt hash: %v", err)
	}
}

func TestRobotSecret(t *testing.T) {
	secret, hash, err := NewRobotSecret(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(secret, RobotSecretPrefix) || len(secret) != len(RobotSecretPrefix)+43 {
		t.Errorf("secret %q: want %s and 43 base64url characters", secret, RobotSecretPrefix)
	}
	if !resource.CheckSecretHash(hash) {
		t.Errorf("hash %q is not what a Robot resource accepts", hash)
	}
	if strings.Contains(hash, strings.TrimPrefix(secret, RobotSecretPrefix)) {
		t.Error("the hash contains the secret")
	}
	if !VerifyRobotSecret(hash, secret) {
		t.Error("the secret does not verify")
	}
	other, _, _ := NewRobotSecret(rand.Reader)
	for name, s := range map[string]string{
		"another secret": other, "empty": "", "without prefix": strings.TrimPrefix(secret, RobotSecretPrefix),
		"cut": secret[:len(secret)-1], "long": secret + strings.Repeat("a", 300), "the hash itself": hash,
	} {
		if VerifyRobotSecret(hash, s) {
			t.Errorf("%s verifies", name)
		}
	}
	if VerifyRobotSecret("", secret) || VerifyRobotSecret("sha256:", secret) {
		t.Error("a secret verifies against an empty hash")
	}
	if _, _, err := NewRobotSecret(bytes.NewReader(make([]byte, 5))); err == nil {
		t.Error("a secret from 5 random bytes")
	}
}

func TestCheckRobotName(t *testing.T) {
	for _, ok := range []string{"ci", "ci-team-a", "a", "r2d2", strings.Repeat("a", 63)} {
		if err := CheckRobotName(ok); err != nil {
			t.Errorf("%q: %v", ok, err)
		}
	}
	for _, bad := range []string{"", "robot$ci", "ci;rm", "CI", "-ci", "ci-", "ci team", "a/b", "a.b", "ci`x`", "$(x)", strings.Repeat("a", 64), "ci\n"} {
		if err := CheckRobotName(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}
