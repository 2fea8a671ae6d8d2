// Package version holds the build identity of a nodenet binary. The Makefile
// sets Version and Commit with -ldflags -X; a plain `go build` falls back to
// the VCS information the Go toolchain embeds.
package version

import (
	"runtime"
	"runtime/debug"
)

// Set at link time: -X github.com/nodenet/nodenet/internal/version.Version=...
var (
	Version = ""
	Commit  = ""
)

// Info is the identity of the running binary.
type Info struct {
	Version   string `json:"version"`
	Commit    string `json:"commit"`
	GoVersion string `json:"goVersion"`
}

// Get returns the identity of the running binary.
func Get() Info {
	info := Info{Version: Version, Commit: Commit, GoVersion: runtime.Version()}
	if bi, ok := debug.ReadBuildInfo(); ok {
		if info.Commit == "" {
			for _, s := range bi.Settings {
				if s.Key == "vcs.revision" {
					info.Commit = s.Value
				}
			}
		}
		if info.Version == "" && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
			info.Version = bi.Main.Version
		}
	}
	if info.Version == "" {
		info.Version = "dev"
	}
	if info.Commit == "" {
		info.Commit = "unknown"
	}
	return info
}

// String renders the identity on one line, as `<daemon> version` prints it.
func (i Info) String() string {
	return i.Version + " (commit " + i.Commit + ", " + i.GoVersion + ")"
}
