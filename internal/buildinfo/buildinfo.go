// Package buildinfo says which build a binary is: the version, commit and
// build date the Makefile stamps in with -ldflags, or, for a plain
// `go build` or `go install`, what the Go toolchain recorded from the
// module and the VCS checkout.
package buildinfo

import (
	"fmt"
	"io"
	"runtime"
	"runtime/debug"
)

// Set by the Makefile:
//
//	-ldflags "-X github.com/berth-registry/berth/internal/buildinfo.version=v1.2.3
//	          -X github.com/berth-registry/berth/internal/buildinfo.commit=<sha>
//	          -X github.com/berth-registry/berth/internal/buildinfo.date=<RFC 3339>"
//
// They are package variables only because -X can set nothing else.
var version, commit, date string

// Info describes a build. Empty fields are unknown.
type Info struct {
	Version string `json:"version"`
	Commit  string `json:"commit,omitempty"`
	Date    string `json:"date,omitempty"`
	// Modified is true when the checkout had uncommitted changes (known
	// only from the toolchain's VCS stamp).
	Modified bool   `json:"modified,omitempty"`
	Go       string `json:"go"`
}

// Read returns this binary's Info.
func Read() Info {
	bi, _ := debug.ReadBuildInfo()
	return resolve(version, commit, date, bi)
}

// resolve prefers the -ldflags values and falls back to bi's.
func resolve(version, commit, date string, bi *debug.BuildInfo) Info {
	info := Info{Version: version, Commit: commit, Date: date, Go: runtime.Version()}
	if bi != nil {
		if info.Version == "" && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
			info.Version = bi.Main.Version // go install module@version
		}
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				if info.Commit == "" {
					info.Commit = s.Value
				}
			case "vcs.time":
				if info.Date == "" {
					info.Date = s.Value
				}
			case "vcs.modified":
				info.Modified = commit == "" && s.Value == "true"
			}
		}
		if bi.GoVersion != "" {
			info.Go = bi.GoVersion
		}
	}
	if info.Version == "" {
		info.Version = "dev"
	}
	return info
}

// Print writes info for a person, one field a line, as `NAME version` prints it.
func (info Info) Print(w io.Writer, name string) {
	commit := orUnknown(info.Commit)
	if info.Modified {
		commit += " (modified)"
	}
	fmt.Fprintf(w, "%s %s\ncommit: %s\nbuilt:  %s\ngo:     %s\n", name, info.Version, commit, orUnknown(info.Date), info.Go)
}

func orUnknown(s string) string {
	if s == "" {
		return "unknown"
	}
	return s
}
