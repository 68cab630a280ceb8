package api

import (
	"regexp"
	"strings"
	"testing"
)

// The spec's own regular expressions, which nameOK and tagOK implement.
var (
	specName = regexp.MustCompile(`^[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*(/[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*)*$`)
	specTag  = regexp.MustCompile(`^[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}$`)
)

var nameSeeds = []string{
	"", "a", "a/b", "library/alpine", "a.b", "a..b", "a_b", "a__b", "a___b", "a-b", "a--b", "a-_b", "a._b",
	"a/", "/a", "a//b", "A", "a/B", "a.b/c-d/e__f", "-a", "a-", "a.", "_a", "a/b/", "0/9", "a\nb", "é",
	"v1", "V1.2-rc_3", ".v", "-v", "_v", strings.Repeat("a", 128), strings.Repeat("a", 129),
}

func TestNamesMatchTheSpec(t *testing.T) {
	for _, s := range nameSeeds {
		if got, want := nameOK(s), specName.MatchString(s); got != want {
			t.Errorf("nameOK(%q) = %v, the spec says %v", s, got, want)
		}
		if got, want := tagOK(s), specTag.MatchString(s); got != want {
			t.Errorf("tagOK(%q) = %v, the spec says %v", s, got, want)
		}
	}
}

func FuzzNames(f *testing.F) {
	for _, s := range nameSeeds {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if got, want := nameOK(s), specName.MatchString(s); got != want {
			t.Fatalf("nameOK(%q) = %v, the spec says %v", s, got, want)
		}
		if got, want := tagOK(s), specTag.MatchString(s); got != want {
			t.Fatalf("tagOK(%q) = %v, the spec says %v", s, got, want)
		}
	})
}
