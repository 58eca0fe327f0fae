package buildinfo

import (
	"runtime/debug"
	"strings"
	"testing"
)

func TestFormat(t *testing.T) {
	vcs := []debug.BuildSetting{{Key: "vcs.revision", Value: "5fd7045"}, {Key: "vcs.time", Value: "2026-12-01T10:00:00Z"}, {Key: "vcs.modified", Value: "true"}}
	for _, tc := range []struct {
		name, stamped, module string
		settings              []debug.BuildSetting
		want                  string
	}{
		{"Stamped", "v1.2.3", "(devel)", nil, "qrauthd github.com/qrauth/qrauth v1.2.3 revision unknown go1.26.8"},
		{"ModuleVersion", "", "v0.1.0", nil, "qrauthd github.com/qrauth/qrauth v0.1.0 revision unknown go1.26.8"},
		{"Checkout", "", "", vcs, "qrauthd github.com/qrauth/qrauth (devel) revision 5fd7045 (2026-12-01T10:00:00Z) with local changes go1.26.8"},
		{"StampedWins", "v1.2.3", "v0.0.0-2026", vcs, "qrauthd github.com/qrauth/qrauth v1.2.3 revision 5fd7045 (2026-12-01T10:00:00Z) with local changes go1.26.8"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			bi := &debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Path: "github.com/qrauth/qrauth", Version: tc.module}, Settings: tc.settings}
			if got := format("qrauthd", tc.stamped, bi); got != tc.want {
				t.Errorf("got  %q\nwant %q", got, tc.want)
			}
		})
	}
}

// A test binary has build information; String names the program first.
func TestString(t *testing.T) {
	if got := String("qrauth-app"); !strings.HasPrefix(got, "qrauth-app ") || !strings.Contains(got, " revision ") {
		t.Errorf("String = %q", got)
	}
}
