// Package buildinfo owns the one line every qrauth binary prints for
// `version`: the release version stamped at link time, else the module
// version and source revision the Go toolchain recorded.
//
// Release builds (scripts/release, the Dockerfile) are made with
// -buildvcs=false so that two builds of one tree give the same bytes; the
// toolchain then records no revision and a "(devel)" module version, so
// the release version comes in through the linker:
//
//	go build -ldflags "-X github.com/qrauth/qrauth/internal/buildinfo.Version=v1.2.3" ./cmd/qrauthd
package buildinfo

import (
	"fmt"
	"runtime"
	"runtime/debug"
)

// Version is the release version, set with -ldflags -X by release builds
// and empty otherwise. A variable, not a constant: -X only sets variables.
var Version string

// String is the version line of program: "qrauthd github.com/qrauth/qrauth
// v0.2.0 revision 5fd7045… (2026-12-01T10:00:00Z) go1.26.8". The revision is
// "unknown" where the toolchain recorded none (release builds, go run
// outside a checkout).
func String(program string) string {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		v := Version
		if v == "" {
			v = "(no build information)"
		}
		return program + " " + v + " " + runtime.Version()
	}
	return format(program, Version, bi)
}

// format is String with its inputs passed in, for tests.
func format(program, stamped string, bi *debug.BuildInfo) string {
	v := stamped
	if v == "" {
		v = bi.Main.Version
	}
	if v == "" {
		v = "(devel)"
	}
	rev, when, modified := "unknown", "", false
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.time":
			when = s.Value
		case "vcs.modified":
			modified = s.Value == "true"
		}
	}
	out := fmt.Sprintf("%s %s %s revision %s", program, bi.Main.Path, v, rev)
	if when != "" {
		out += " (" + when + ")"
	}
	if modified {
		out += " with local changes"
	}
	return out + " " + bi.GoVersion
}
