package testutil

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// ZbarScan reads png with zbarimg, a generic scanner that guesses the
// character set of byte-mode data unless an ECI says it, and returns the
// exact bytes it hands over. It skips the test where zbarimg is missing,
// but not in CI, whose .ci/run installs zbar-tools.
func ZbarScan(tb testing.TB, png []byte) string {
	tb.Helper()
	if _, err := exec.LookPath("zbarimg"); err != nil {
		if os.Getenv("CI") != "" {
			tb.Fatal("zbarimg not on the PATH: apt-get install zbar-tools")
		}
		tb.Skip("zbarimg not installed (apt-get install zbar-tools); skipping the generic-scanner check")
	}
	f := filepath.Join(tb.TempDir(), "qr.png")
	if err := os.WriteFile(f, png, 0o600); err != nil {
		tb.Fatal(err)
	}
	var stdout, stderr bytes.Buffer
	cmd := exec.Command("zbarimg", "-q", "--raw", f)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		tb.Fatalf("zbarimg: %v\n%s", err, stderr.String())
	}
	// zbarimg ends each symbol's data with one newline of its own.
	out, ok := strings.CutSuffix(stdout.String(), "\n")
	if !ok {
		tb.Fatalf("zbarimg output %q lacks its newline", stdout.String())
	}
	return out
}
