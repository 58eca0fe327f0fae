package scripts

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"debug/elf"
	"debug/macho"
	"debug/pe"
	"encoding/hex"
	"fmt"
	"io"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
)

var targets = []string{"linux/amd64", "linux/arm64", "darwin/arm64", "windows/amd64"}

// commandsOf lists the commands released for a target: qrauth-bench
// measures a Linux host; qrauthd's operator socket needs Unix file modes.
func commandsOf(target string) []string {
	switch {
	case strings.HasPrefix(target, "linux/"):
		return []string{"qrauthd", "qrauth-app", "qrauth-bench"}
	case strings.HasPrefix(target, "windows/"):
		return []string{"qrauth-app"}
	}
	return []string{"qrauthd", "qrauth-app"}
}

// release runs scripts/release with args and returns its exit status and
// output; env adds to the environment.
func release(t *testing.T, args ...string) (int, string) {
	return releaseEnv(t, nil, args...)
}

func releaseEnv(t *testing.T, env []string, args ...string) (int, string) {
	t.Helper()
	bash, err := exec.LookPath("bash")
	if err != nil {
		t.Skip("no bash")
	}
	cmd := exec.CommandContext(t.Context(), bash, append([]string{"release"}, args...)...)
	cmd.Env = append(os.Environ(), env...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		if ee, ok := err.(*exec.ExitError); ok {
			return ee.ExitCode(), string(out)
		}
		t.Fatalf("run scripts/release: %v", err)
	}
	return 0, string(out)
}

// binary is the file name the script gives one command of one target.
func binary(command, version, target string) string {
	name := command + "-" + version + "-" + strings.ReplaceAll(target, "/", "-")
	if strings.HasPrefix(target, "windows/") {
		name += ".exe"
	}
	return name
}

// TestRelease builds a release as a maintainer would and checks what a
// downloader relies on: every binary of every target, for the right
// machine; the Linux ones static; SHA256SUMS true; the version stamped;
// and the same bytes from a second build in another directory.
//
// CPU: the four targets build in one run of the script (its commands in one
// go build); the second build, for reproducibility, is linux/amd64 only
// and mostly links from the build cache.
func TestRelease(t *testing.T) {
	if testing.Short() {
		t.Skip("builds 12 binaries; not with -short")
	}
	const version = "v0.0.0-test.1"
	dir := t.TempDir()
	if code, out := release(t, version, dir); code != 0 {
		t.Fatalf("scripts/release: exit %d\n%s", code, out)
	}
	out := filepath.Join(dir, version)

	sums := readSums(t, filepath.Join(out, "SHA256SUMS"))
	var want []string
	for _, target := range targets {
		for _, c := range commandsOf(target) {
			want = append(want, binary(c, version, target))
		}
	}
	if got := slices.Sorted(maps.Keys(sums)); !slices.Equal(got, slices.Sorted(slices.Values(want))) {
		t.Errorf("SHA256SUMS lists %v, want %v", got, want)
	}
	entries, err := os.ReadDir(out)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != len(want)+1 {
		t.Errorf("%d files in %s, want %d binaries and SHA256SUMS", len(entries), out, len(want))
	}
	for _, target := range targets {
		for _, c := range commandsOf(target) {
			name := binary(c, version, target)
			path := filepath.Join(out, name)
			if got := fileSum(t, path); got != sums[name] {
				t.Errorf("%s: sha256 %s, SHA256SUMS says %s", name, got, sums[name])
			}
			checkMachine(t, path, target)
		}
	}

	// The Linux binary runs here and says which release it is.
	if runtime.GOOS == "linux" && runtime.GOARCH == "amd64" {
		for _, c := range []string{"qrauthd", "qrauth-app"} {
			got, err := exec.CommandContext(t.Context(), filepath.Join(out, binary(c, version, "linux/amd64")), "version").Output()
			if err != nil {
				t.Fatalf("%s version: %v", c, err)
			}
			if !strings.HasPrefix(string(got), c+" github.com/qrauth/qrauth "+version+" ") {
				t.Errorf("%s version printed %q", c, got)
			}
		}
	}

	// Reproducible: another directory, the same bytes.
	dir2 := t.TempDir()
	if code, out := releaseEnv(t, []string{"TARGETS=linux/amd64"}, version, dir2); code != 0 {
		t.Fatalf("second scripts/release: exit %d\n%s", code, out)
	}
	sums2 := readSums(t, filepath.Join(dir2, version, "SHA256SUMS"))
	if len(sums2) != len(commandsOf("linux/amd64")) {
		t.Errorf("second build: SHA256SUMS lists %v", slices.Sorted(maps.Keys(sums2)))
	}
	for _, c := range commandsOf("linux/amd64") {
		name := binary(c, version, "linux/amd64")
		if sums2[name] != sums[name] {
			t.Errorf("%s is not reproducible: %s, then %s", name, sums[name], sums2[name])
		}
	}
}

// checkMachine opens a binary in its target's format and checks its
// machine; Linux binaries must be static: no program interpreter (the
// dynamic loader) and no shared libraries.
func checkMachine(t *testing.T, path, target string) {
	t.Helper()
	goos, arch, _ := strings.Cut(target, "/")
	switch goos {
	case "linux":
		f, err := elf.Open(path)
		if err != nil {
			t.Errorf("%s: %v", path, err)
			return
		}
		defer f.Close()
		if want := map[string]elf.Machine{"amd64": elf.EM_X86_64, "arm64": elf.EM_AARCH64}[arch]; f.Machine != want {
			t.Errorf("%s: machine %v, want %v", filepath.Base(path), f.Machine, want)
		}
		for _, p := range f.Progs {
			if p.Type == elf.PT_INTERP || p.Type == elf.PT_DYNAMIC {
				t.Errorf("%s is not static: it has %v", filepath.Base(path), p.Type)
			}
		}
		if libs, _ := f.ImportedLibraries(); len(libs) > 0 {
			t.Errorf("%s needs %v", filepath.Base(path), libs)
		}
	case "darwin":
		f, err := macho.Open(path)
		if err != nil {
			t.Errorf("%s: %v", path, err)
			return
		}
		defer f.Close()
		if f.Cpu != macho.CpuArm64 {
			t.Errorf("%s: cpu %v, want arm64", filepath.Base(path), f.Cpu)
		}
	case "windows":
		f, err := pe.Open(path)
		if err != nil {
			t.Errorf("%s: %v", path, err)
			return
		}
		defer f.Close()
		if f.Machine != pe.IMAGE_FILE_MACHINE_AMD64 {
			t.Errorf("%s: machine %#x, want amd64", filepath.Base(path), f.Machine)
		}
	default:
		t.Fatalf("no check for %s", target)
	}
}

// readSums reads a sha256sum file: "HEX  NAME" per line.
func readSums(t *testing.T, path string) map[string]string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	sums := map[string]string{}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		sum, name, ok := strings.Cut(sc.Text(), "  ")
		if _, err := hex.DecodeString(sum); !ok || err != nil || len(sum) != 64 || name == "" {
			t.Fatalf("%s: bad line %q", path, sc.Text())
		}
		if _, dup := sums[name]; dup {
			t.Fatalf("%s: %s listed twice", path, name)
		}
		sums[name] = sum
	}
	return sums
}

func fileSum(t *testing.T, path string) string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Error(err)
		return ""
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		t.Fatal(err)
	}
	return fmt.Sprintf("%x", h.Sum(nil))
}

// A version that would break the flags or the file names is refused
// before anything is built or written.
func TestReleaseRefusesBadVersion(t *testing.T) {
	for _, v := range []string{"", "latest", "v1.2", "v1.2.3 -X main.evil=1", "v1.2.3/../x", "v1.2.3\"", "1.2.3-"} {
		dir := t.TempDir()
		code, out := release(t, v, dir)
		if code != 2 || !strings.Contains(out, "scripts/release: version") {
			t.Errorf("version %q: exit %d\n%s", v, code, out)
		}
		if entries, _ := os.ReadDir(dir); len(entries) != 0 {
			t.Errorf("version %q: wrote %d files", v, len(entries))
		}
	}
	if code, out := release(t); code != 2 || !strings.Contains(out, "usage: scripts/release VERSION") {
		t.Errorf("no version: exit %d\n%s", code, out)
	}
}
