package main

import (
	"bufio"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/qrauth/qrauth/internal/testutil"
)

const systemdUnit = "../../deploy/qrauthd.service"

// readUnit returns the directives of a systemd unit file, section.Key →
// values in order (a key may repeat).
func readUnit(t *testing.T, path string) map[string][]string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	out := map[string][]string{}
	section := ""
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		switch {
		case line == "" || strings.HasPrefix(line, "#"):
		case strings.HasPrefix(line, "[") && strings.HasSuffix(line, "]"):
			section = strings.Trim(line, "[]")
		default:
			k, v, ok := strings.Cut(line, "=")
			if !ok {
				t.Fatalf("%s: not a directive: %q", path, line)
			}
			out[section+"."+k] = append(out[section+"."+k], v)
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// TestSystemdUnit checks deploy/qrauthd.service twice: systemd's own
// parser (`systemd-analyze verify`) must accept it without a word, and the
// hardening that docs/operations.md promises must be there, with an
// ExecStart that qrauthd's flag parser accepts and that puts the database,
// the operator socket and the master key where the unit's directories
// and credential are.
func TestSystemdUnit(t *testing.T) {
	u := readUnit(t, systemdUnit)
	for key, want := range map[string]string{
		"DynamicUser": "yes", "StateDirectory": "qrauth", "StateDirectoryMode": "0700",
		"RuntimeDirectory": "qrauth", "RuntimeDirectoryMode": "0700", "UMask": "0077",
		"ProtectSystem": "strict", "ProtectHome": "yes", "PrivateTmp": "yes", "PrivateDevices": "yes",
		"NoNewPrivileges": "yes", "CapabilityBoundingSet": "", "AmbientCapabilities": "",
		"RestrictAddressFamilies": "AF_UNIX AF_INET AF_INET6", "SystemCallArchitectures": "native",
		"LoadCredential":         "qrauth.key:/etc/qrauth/qrauth.key",
		"MemoryDenyWriteExecute": "yes", "RestrictSUIDSGID": "yes", "LockPersonality": "yes",
	} {
		if got := u["Service."+key]; len(got) != 1 || got[0] != want {
			t.Errorf("%s=%q, want exactly %q", key, got, want)
		}
	}
	if f := u["Service.SystemCallFilter"]; len(f) == 0 || f[0] != "@system-service" {
		t.Errorf("SystemCallFilter %q: want @system-service first", f)
	}

	// ExecStart, with the credentials directory systemd would make.
	execStart := u["Service.ExecStart"]
	if len(execStart) != 1 {
		t.Fatalf("ExecStart %q: want one", execStart)
	}
	args := strings.Fields(execStart[0])
	if args[0] != "/usr/local/bin/qrauthd" {
		t.Errorf("ExecStart runs %s, docs/operations.md installs /usr/local/bin/qrauthd", args[0])
	}
	key := mustKeyFile(t) // …/qrauth.key, the credential's name
	creds := filepath.Dir(key)
	for i := range args {
		args[i] = strings.ReplaceAll(args[i], "${CREDENTIALS_DIRECTORY}", creds)
	}
	m := NewMain()
	if err := m.ParseFlags(args[1:], io.Discard); err != nil {
		t.Fatalf("ExecStart's flags: %v", err)
	}
	if filepath.Dir(m.DataPath) != "/var/lib/qrauth" {
		t.Errorf("-data %s is not in the StateDirectory /var/lib/qrauth", m.DataPath)
	}
	if filepath.Dir(m.AdminSocket) != "/run/qrauth" {
		t.Errorf("-admin-socket %s is not in the RuntimeDirectory /run/qrauth", m.AdminSocket)
	}
	if m.KeyFile != key {
		t.Errorf("-key-file %s is not the credential qrauth.key", m.KeyFile)
	} else if k, err := loadMasterKey(m.KeyFile); err != nil || len(k) != 32 {
		t.Errorf("the credential does not load as the master key: %v", err)
	}
	if host, _, err := net.SplitHostPort(m.Config.Addr); err != nil || !net.ParseIP(host).IsLoopback() {
		t.Errorf("-addr %s: behind the proxy qrauthd listens on loopback only", m.Config.Addr)
	}
	if len(m.Config.TrustedProxies) == 0 {
		t.Error("no -trusted-proxies: behind the proxy every user would have its address")
	}

	// systemd's parser, on a copy whose ExecStart names an executable
	// that exists here (verify checks that).
	analyze, err := exec.LookPath("systemd-analyze")
	if err != nil {
		t.Fatal("systemd-analyze is not installed: this test runs it on the unit (apt-get install -y systemd; .ci/run does it)")
	}
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(systemdUnit)
	if err != nil {
		t.Fatal(err)
	}
	copyPath := filepath.Join(t.TempDir(), "qrauthd.service")
	if err := os.WriteFile(copyPath, []byte(testutil.Substitute(t, string(data), "ExecStart=/usr/local/bin/qrauthd ", "ExecStart="+self+" ")), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(analyze, "verify", copyPath).CombinedOutput()
	if err != nil || len(out) > 0 {
		t.Fatalf("systemd-analyze verify: %v\n%s", err, out)
	}
}
