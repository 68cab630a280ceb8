package blob

import (
	"errors"
	"fmt"
	"strings"
	"testing"
)

func TestParseContentRange(t *testing.T) {
	tests := []struct {
		in         string
		start, end int64
		ok         bool
	}{
		{"0-0", 0, 0, true},
		{"0-99", 0, 99, true},
		{"100-199", 100, 199, true},
		{"bytes 0-99/*", 0, 99, true},
		{"bytes 0-99/100", 0, 99, true},
		{"bytes=5-9", 5, 9, true},
		{"", 0, 0, false},
		{"5", 0, 0, false},
		{"-5", 0, 0, false},
		{"5-", 0, 0, false},
		{"9-5", 0, 0, false},
		{"a-b", 0, 0, false},
		{"+1-2", 0, 0, false},
		{"1-2-3", 0, 0, false},
		{"0-99999999999999999999", 0, 0, false},
		{"bytes 0-1/x", 0, 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			s, e, err := ParseContentRange(tt.in)
			if (err == nil) != tt.ok {
				t.Fatalf("err = %v, want ok=%v", err, tt.ok)
			}
			if tt.ok && (s != tt.start || e != tt.end) {
				t.Errorf("got %d-%d, want %d-%d", s, e, tt.start, tt.end)
			}
		})
	}
}

func TestParseDigest(t *testing.T) {
	sha256 := "sha256:" + strings.Repeat("a", 64)
	sha512 := "sha512:" + strings.Repeat("b", 128)
	tests := []struct {
		in   string
		want error
	}{
		{sha256, nil},
		{sha512, nil},
		{"sha256:" + strings.Repeat("a", 63), ErrDigestInvalid},
		{"sha256:" + strings.Repeat("A", 64), ErrDigestInvalid},
		{"md5:" + strings.Repeat("a", 32), ErrDigestInvalid},
		{"sha384:" + strings.Repeat("a", 96), ErrUnsupported},
		{"", ErrDigestInvalid},
		{"latest", ErrDigestInvalid},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			_, err := ParseDigest(tt.in)
			if tt.want == nil && err != nil || tt.want != nil && !errors.Is(err, tt.want) {
				t.Errorf("err = %v, want %v", err, tt.want)
			}
		})
	}
}

func FuzzParseContentRange(f *testing.F) {
	for _, s := range []string{"0-0", "0-99", "bytes 0-99/*", "bytes=1-2", "9-5", "", "-", "18446744073709551615-1"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		start, end, err := ParseContentRange(s)
		if err != nil {
			return
		}
		if start < 0 || end < start {
			t.Fatalf("accepted %q as %d-%d", s, start, end)
		}
		// What is accepted round-trips through the spec's own form.
		s2, e2, err := ParseContentRange(fmt.Sprintf("%d-%d", start, end))
		if err != nil || s2 != start || e2 != end {
			t.Fatalf("round trip of %q failed: %d-%d %v", s, s2, e2, err)
		}
	})
}

func FuzzParseDigest(f *testing.F) {
	for _, s := range []string{"sha256:" + strings.Repeat("a", 64), "sha512:" + strings.Repeat("b", 128), "sha256:", "x:y", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		d, err := ParseDigest(s)
		if err != nil {
			return
		}
		if d.String() != s || d.Validate() != nil || !Supported(d.Algorithm()) {
			t.Fatalf("accepted %q as %q", s, d)
		}
	})
}
