package s3

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"strings"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"
)

func TestSignedSessionID(t *testing.T) {
	s := &Store{idKey: []byte("0123456789abcdef0123456789abcdef")}
	other := &Store{idKey: []byte("another bucket's key, 32 bytes!!")}
	now := time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)
	const repo = "team-a/app"
	id := s.newSignedID(repo, digest.SHA512, now)
	// What a version before the repository binding signed: the fields
	// alone, no repository.
	unbound := func() string {
		b, _ := hex.DecodeString(id)
		m := hmac.New(sha256.New, s.idKey)
		m.Write(b[:21])
		copy(b[21:], m.Sum(nil)[:16])
		return hex.EncodeToString(b)
	}()

	flip := func(id string, i int) string {
		b := []byte(id)
		if b[i] == '0' {
			b[i] = '1'
		} else {
			b[i] = '0'
		}
		return string(b)
	}
	for _, tc := range []struct {
		name  string
		store *Store
		repo  string
		id    string
		at    time.Time
		ok    bool
	}{
		{"fresh", s, repo, id, now, true},
		{"another repository", s, "team-a/other", id, now, false},
		{"a repository whose name extends it", s, "team-a/app/x", id, now, false},
		{"unbound ID of an earlier version", s, repo, unbound, now, false},
		{"unbound ID of an earlier version, no repository", s, "", unbound, now, false},
		{"an hour later", s, repo, id, now.Add(time.Hour), true},
		{"just inside the TTL", s, repo, id, now.Add(emptySessionTTL), true},
		{"past the TTL", s, repo, id, now.Add(emptySessionTTL + time.Second), false},
		{"started a little in the future (clock skew)", s, repo, id, now.Add(-time.Minute), true},
		{"started far in the future", s, repo, id, now.Add(-clockSkew - time.Second), false},
		{"signed by another bucket", other, repo, id, now, false},
		{"random part changed", s, repo, flip(id, 0), now, false},
		{"start time changed", s, repo, flip(id, 30), now, false},
		{"algorithm changed", s, repo, flip(id, 41), now, false},
		{"signature changed", s, repo, flip(id, 73), now, false},
		{"truncated", s, repo, id[:72], now, false},
		{"upper case", s, repo, strings.ToUpper(id), now, false},
		{"legacy random ID", s, repo, strings.Repeat("a", 32), now, false},
		{"empty", s, repo, "", now, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st, ok := tc.store.emptySession(tc.repo, tc.id, tc.at)
			if ok != tc.ok {
				t.Fatalf("emptySession(%q) ok = %v, want %v", tc.id, ok, tc.ok)
			}
			if !ok {
				return
			}
			if st.Repo != repo || st.Algorithm != digest.SHA512 || !st.Started.Equal(now) || st.Offset != 0 || len(st.Chunks) != 0 {
				t.Fatalf("state %+v", st)
			}
			h, err := st.hash()
			if err != nil || digest.NewDigest(digest.SHA512, h) != digest.SHA512.FromBytes(nil) {
				t.Fatalf("hash state is not that of no bytes: %v", err)
			}
		})
	}
	if a, b := s.newSignedID(repo, digest.SHA256, now), s.newSignedID(repo, digest.SHA256, now); a == b || !validID(a) {
		t.Fatalf("two IDs at the same second: %q, %q", a, b)
	}
}
