package buildinfo

import (
	"runtime/debug"
	"strings"
	"testing"
)

func TestResolve(t *testing.T) {
	vcs := &debug.BuildInfo{GoVersion: "go1.99", Main: debug.Module{Version: "(devel)"}, Settings: []debug.BuildSetting{
		{Key: "vcs.revision", Value: "abc123"}, {Key: "vcs.time", Value: "2026-01-02T03:04:05Z"}, {Key: "vcs.modified", Value: "true"},
	}}
	cases := []struct {
		name                  string
		version, commit, date string
		bi                    *debug.BuildInfo
		want                  Info
	}{
		{"ldflags win", "v1.2.3", "def456", "2026-11-30T12:00:00Z", vcs,
			Info{Version: "v1.2.3", Commit: "def456", Date: "2026-11-30T12:00:00Z", Go: "go1.99"}},
		{"VCS stamp as fallback", "", "", "", vcs,
			Info{Version: "dev", Commit: "abc123", Date: "2026-01-02T03:04:05Z", Modified: true, Go: "go1.99"}},
		{"go install module@version", "", "", "", &debug.BuildInfo{GoVersion: "go1.99", Main: debug.Module{Version: "v0.4.0"}},
			Info{Version: "v0.4.0", Go: "go1.99"}},
		{"nothing known", "", "", "", nil, Info{Version: "dev"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := resolve(tc.version, tc.commit, tc.date, tc.bi)
			if tc.bi == nil {
				got.Go = "" // the running toolchain's
			}
			if got != tc.want {
				t.Errorf("resolve = %+v, want %+v", got, tc.want)
			}
		})
	}
}

func TestPrint(t *testing.T) {
	var b strings.Builder
	Info{Version: "v1.2.3", Commit: "abc", Modified: true, Go: "go1.99"}.Print(&b, "registryd")
	want := "registryd v1.2.3\ncommit: abc (modified)\nbuilt:  unknown\ngo:     go1.99\n"
	if b.String() != want {
		t.Errorf("Print:\n%s\nwant:\n%s", b.String(), want)
	}
}
