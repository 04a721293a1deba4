// Package version is the release both binaries were built from. make images
// (and the Dockerfiles) stamp it in with
//
//	-ldflags "-X github.com/jianfenliu/vmoperator/version.Version=0.2.0"
//
// The linker can only set a package-level string, which is why this is the
// one package variable of the code base; nothing assigns it at run time.
package version

import (
	"fmt"
	"runtime"
	"runtime/debug"
)

// Version is the release, "dev" in builds that were not stamped.
var Version = "dev"

// String describes a binary for --version and start-up logs: the release,
// the commit when the Go toolchain recorded one, and the Go version and
// platform, e.g. "vmop-agent 0.2.0 (commit 1a2b3c4, go1.26.8, linux/arm64)".
func String(binary string) string {
	return fmt.Sprintf("%s %s (%s%s, %s/%s)", binary, Version, commit(), runtime.Version(), runtime.GOOS, runtime.GOARCH)
}

// commit is "commit <short hash>[+dirty], " from the VCS stamp Go writes
// into binaries built inside a git checkout, or "" without one.
func commit() string {
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return ""
	}
	var revision, modified string
	for _, s := range info.Settings {
		switch s.Key {
		case "vcs.revision":
			revision = s.Value
		case "vcs.modified":
			modified = s.Value
		}
	}
	if revision == "" {
		return ""
	}
	if len(revision) > 12 {
		revision = revision[:12]
	}
	if modified == "true" {
		revision += "+dirty"
	}
	return "commit " + revision + ", "
}
