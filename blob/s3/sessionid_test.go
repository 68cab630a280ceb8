package s3

import (
	"strings"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"
)

func TestSignedSessionID(t *testing.T) {
	s := &Store{idKey: []byte("0123456789abcdef0123456789abcdef")}
	other := &Store{idKey: []byte("another bucket's key, 32 bytes!!")}
	now := time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)
	id := s.newSignedID(digest.SHA512, now)

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
		id    string
		at    time.Time
		ok    bool
	}{
		{"fresh", s, id, now, true},
		{"an hour later", s, id, now.Add(time.Hour), true},
		{"just inside the TTL", s, id, now.Add(emptySessionTTL), true},
		{"past the TTL", s, id, now.Add(emptySessionTTL + time.Second), false},
		{"started a little in the future (clock skew)", s, id, now.Add(-time.Minute), true},
		{"started far in the future", s, id, now.Add(-clockSkew - time.Second), false},
		{"signed by another bucket", other, id, now, false},
		{"random part changed", s, flip(id, 0), now, false},
		{"start time changed", s, flip(id, 30), now, false},
		{"algorithm changed", s, flip(id, 41), now, false},
		{"signature changed", s, flip(id, 73), now, false},
		{"truncated", s, id[:72], now, false},
		{"upper case", s, strings.ToUpper(id), now, false},
		{"legacy random ID", s, strings.Repeat("a", 32), now, false},
		{"empty", s, "", now, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st, ok := tc.store.emptySession(tc.id, tc.at)
			if ok != tc.ok {
				t.Fatalf("emptySession(%q) ok = %v, want %v", tc.id, ok, tc.ok)
			}
			if !ok {
				return
			}
			if st.Algorithm != digest.SHA512 || !st.Started.Equal(now) || st.Offset != 0 || len(st.Chunks) != 0 {
				t.Fatalf("state %+v", st)
			}
			h, err := st.hash()
			if err != nil || digest.NewDigest(digest.SHA512, h) != digest.SHA512.FromBytes(nil) {
				t.Fatalf("hash state is not that of no bytes: %v", err)
			}
		})
	}
	if a, b := s.newSignedID(digest.SHA256, now), s.newSignedID(digest.SHA256, now); a == b || !validID(a) {
		t.Fatalf("two IDs at the same second: %q, %q", a, b)
	}
}
