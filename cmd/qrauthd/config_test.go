package main

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"flag"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/qrauth/qrauth/server/forwardauth"
)

// clearEnv unsets every QRAUTH_* variable for the test, so that the
// precedence tests see only what they set.
func clearEnv(t *testing.T) {
	t.Helper()
	for _, kv := range os.Environ() {
		if name, _, _ := strings.Cut(kv, "="); strings.HasPrefix(name, "QRAUTH_") {
			t.Setenv(name, "")
			os.Unsetenv(name)
		}
	}
}

// writeConfig writes a config file into a temporary directory.
func writeConfig(t *testing.T, text string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "qrauth.toml")
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestConfigPrecedence: file < environment < flag, for a duration, a bool
// and a repeated flag; -config itself may come from QRAUTH_CONFIG.
func TestConfigPrecedence(t *testing.T) {
	path := writeConfig(t, `
room-ttl = "7m"
oath = true
forward-auth-rule = ["a.example.com=admin", "b.example.com=helpdesk"]
`)
	rules := func(s ...string) []forwardauth.Rule {
		var out []forwardauth.Rule
		for _, r := range s {
			rule, err := forwardauth.ParseRule(r)
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, rule)
		}
		return out
	}
	for _, tc := range []struct {
		name  string
		env   map[string]string
		args  []string
		ttl   time.Duration
		oath  bool
		rules []forwardauth.Rule
	}{
		{"Default", nil, nil, 3 * time.Minute, false, nil},
		{"File", nil, []string{"-config", path}, 7 * time.Minute, true,
			rules("a.example.com=admin", "b.example.com=helpdesk")},
		{"FileFromEnvironment", map[string]string{"QRAUTH_CONFIG": path}, nil, 7 * time.Minute, true,
			rules("a.example.com=admin", "b.example.com=helpdesk")},
		{"EnvironmentOverFile", map[string]string{"QRAUTH_ROOM_TTL": "5m", "QRAUTH_OATH": "false",
			"QRAUTH_FORWARD_AUTH_RULES": "c.example.com=admin"}, []string{"-config", path},
			5 * time.Minute, false, rules("c.example.com=admin")},
		{"FlagOverEnvironmentAndFile", map[string]string{"QRAUTH_ROOM_TTL": "5m", "QRAUTH_OATH": "false",
			"QRAUTH_FORWARD_AUTH_RULES": "c.example.com=admin"},
			[]string{"-config", path, "-room-ttl", "1m", "-oath=true", "-forward-auth-rule", "d.example.com=admin"},
			time.Minute, true, rules("d.example.com=admin")},
		{"FlagOverFile", nil, []string{"-config", path, "-room-ttl", "1m", "-oath=false", "-forward-auth-rule", "d.example.com=admin"},
			time.Minute, false, rules("d.example.com=admin")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			clearEnv(t)
			for k, v := range tc.env {
				t.Setenv(k, v)
			}
			m := NewMain()
			if err := m.ParseFlags(tc.args, io.Discard); err != nil {
				t.Fatal(err)
			}
			if m.Config.RoomTTL != tc.ttl || m.OATHOn != tc.oath || !reflect.DeepEqual(m.ForwardAuth.Rules, tc.rules) {
				t.Fatalf("room-ttl %v oath %v rules %+v, want %v %v %+v", m.Config.RoomTTL, m.OATHOn, m.ForwardAuth.Rules,
					tc.ttl, tc.oath, tc.rules)
			}
		})
	}
}

// TestEveryFlagHasAnEnvironmentVariable: the file's precedence below the
// environment reads each flag's variable from its usage.
func TestEveryFlagHasAnEnvironmentVariable(t *testing.T) {
	fs, _ := NewMain().flagSet()
	fs.VisitAll(func(f *flag.Flag) {
		if name := flagEnvName(f); !regexp.MustCompile(`^QRAUTH_[A-Z0-9_]+$`).MatchString(name) {
			t.Errorf("-%s names no QRAUTH_* variable in its usage (got %q)", f.Name, name)
		}
	})
	if got := flagEnvName(fs.Lookup("forward-auth-rule")); got != "QRAUTH_FORWARD_AUTH_RULES" {
		t.Errorf("forward-auth-rule reads %s", got)
	}
	if got := flagEnvName(fs.Lookup("key-file")); got != "QRAUTH_KEY_FILE" {
		t.Errorf("key-file reads %s", got) // its usage also mentions QRAUTH_KEY
	}
}

// TestConfigRefused: a file with a problem is refused naming the file and
// the key, and sets nothing, not even its good keys.
func TestConfigRefused(t *testing.T) {
	clearEnv(t)
	for _, tc := range []struct {
		name, text string
		want       []string
	}{
		{"UnknownKey", "room-ttl = \"7m\"\nroom-tll = \"8m\"\n", []string{`unknown key "room-tll"`}},
		{"UnknownClientKey", "room-ttl = \"7m\"\n[[oidc-client]]\nid = \"x\"\nname = \"X\"\ntype = \"public\"\n" +
			"redirect-uris = [\"https://x.example/cb\"]\nredirect-uri = \"https://x.example/cb\"\n", []string{`unknown key "redirect-uri"`}},
		{"BadDuration", "room-ttl = \"7m\"\npsk-rotation = \"soon\"\n", []string{"key psk-rotation", `"soon"`, "duration"}},
		{"DurationAsNumber", "room-ttl = \"7m\"\npsk-rotation = 30\n", []string{"key psk-rotation", `"30"`}},
		{"BadBool", "room-ttl = \"7m\"\noath = \"maybe\"\n", []string{"key oath", "true or false"}},
		{"BadInt", "room-ttl = \"7m\"\nmax-rooms = \"many\"\n", []string{"key max-rooms"}},
		{"ListForOneValue", "room-ttl = \"7m\"\naddr = [\"127.0.0.1:1\", \"127.0.0.1:2\"]\n", []string{"key addr", "one value"}},
		{"Table", "room-ttl = \"7m\"\n[oath]\ndigits = 8\n", []string{"key oath", "table"}},
		{"Syntax", "room-ttl = \"7m\"\naddr = \n", []string{"line 2"}},
		{"ConfigInConfig", "room-ttl = \"7m\"\nconfig = \"other.toml\"\n", []string{"key config"}},
		{"ClientInvalid", "room-ttl = \"7m\"\n[[oidc-client]]\nid = \"x\"\nname = \"X\"\ntype = \"public\"\n" +
			"redirect-uris = [\"/relative\"]\n", []string{`(id "x")`, "redirect URI"}},
		{"ClientWithoutType", "room-ttl = \"7m\"\n[[oidc-client]]\nid = \"x\"\nname = \"X\"\n" +
			"redirect-uris = [\"https://x.example/cb\"]\n", []string{"type is public or confidential"}},
		{"ConfidentialWithoutHash", "room-ttl = \"7m\"\n[[oidc-client]]\nid = \"x\"\nname = \"X\"\ntype = \"confidential\"\n" +
			"redirect-uris = [\"https://x.example/cb\"]\n", []string{"needs a secret-hash"}},
		{"PlainSecret", "room-ttl = \"7m\"\n[[oidc-client]]\nid = \"x\"\nname = \"X\"\ntype = \"confidential\"\n" +
			"redirect-uris = [\"https://x.example/cb\"]\nsecret-hash = \"hunter2\"\n", []string{"hash-secret"}},
		{"ClientTwice", "room-ttl = \"7m\"\n[[oidc-client]]\nid = \"x\"\nname = \"X\"\ntype = \"public\"\n" +
			"redirect-uris = [\"https://x.example/cb\"]\n[[oidc-client]]\nid = \"x\"\nname = \"Y\"\ntype = \"public\"\n" +
			"redirect-uris = [\"https://y.example/cb\"]\n", []string{"declared twice"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := writeConfig(t, tc.text)
			m := NewMain()
			err := m.ParseFlags([]string{"-config", path}, io.Discard)
			if err == nil {
				t.Fatal("accepted")
			}
			for _, want := range append(tc.want, path) {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error %q does not say %q", err, want)
				}
			}
			if m.Config.RoomTTL != 3*time.Minute || m.OIDCConfig.Clients != nil {
				t.Errorf("a refused file set room-ttl %v, clients %+v", m.Config.RoomTTL, m.OIDCConfig.Clients)
			}
			// The command line says it in one line per problem, exit 2.
			code, _, stderr := runCLI(t, "-config", path)
			if code != 2 || !strings.Contains(stderr, path) {
				t.Errorf("qrauthd -config: exit %d, %q", code, stderr)
			}
		})
	}
}

// TestConfigCheckCommand: exit 0 and "ok" for a good file, 1 and every
// problem for a bad one, 2 when used wrongly; no database is opened.
func TestConfigCheckCommand(t *testing.T) {
	clearEnv(t)
	data := filepath.Join(t.TempDir(), "never", "qrauth.db")
	good := writeConfig(t, "data = \""+data+"\"\nroom-ttl = \"7m\"\n")
	code, stdout, stderr := runCLI(t, "config", "check", good)
	if code != 0 || stdout != "ok\n" || stderr != "" {
		t.Fatalf("good file: exit %d, %q %q", code, stdout, stderr)
	}
	if _, err := os.Stat(filepath.Dir(data)); !os.IsNotExist(err) {
		t.Fatalf("config check touched the data directory: %v", err)
	}
	bad := writeConfig(t, "room-tll = \"7m\"\noath = \"maybe\"\n")
	code, stdout, stderr = runCLI(t, "config", "check", bad)
	if code != 1 || stdout != "" || !strings.Contains(stderr, `unknown key "room-tll"`) || !strings.Contains(stderr, "key oath") {
		t.Fatalf("bad file: exit %d, %q %q", code, stdout, stderr)
	}
	// A combination the flags refuse is refused in the file too.
	code, _, stderr = runCLI(t, "config", "check", writeConfig(t, "tls-cert = \"cert.pem\"\n"))
	if code != 1 || !strings.Contains(stderr, "tls-key") {
		t.Fatalf("tls-cert alone: exit %d, %q", code, stderr)
	}
	if code, _, stderr := runCLI(t, "config", "check", filepath.Join(t.TempDir(), "missing.toml")); code != 1 || stderr == "" {
		t.Fatalf("missing file: exit %d, %q", code, stderr)
	}
	for _, args := range [][]string{{"config"}, {"config", "check"}, {"config", "check", good, good}, {"config", "frob"}} {
		if code, _, stderr := runCLI(t, args...); code != 2 || !strings.Contains(stderr, "Usage") {
			t.Errorf("%v: exit %d, %q", args, code, stderr)
		}
	}
}

// TestConfigExampleInDocs: the example of docs/configuration.md is the
// one `qrauthd config example` prints, and it passes the check.
func TestConfigExampleInDocs(t *testing.T) {
	clearEnv(t)
	doc, err := os.ReadFile("../../docs/configuration.md")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile("(?s)```toml\n(.*?)```").FindSubmatch(doc)
	if m == nil {
		t.Fatal("docs/configuration.md has no ```toml block")
	}
	code, stdout, _ := runCLI(t, "config", "example")
	if code != 0 || stdout != string(m[1]) {
		t.Fatalf("config example (exit %d) differs from the documented example", code)
	}
	code, stdout, stderr := runCLI(t, "config", "check", writeConfig(t, string(m[1])))
	if code != 0 || stdout != "ok\n" {
		t.Fatalf("documented example: exit %d, %q %q", code, stdout, stderr)
	}
	// It declares clients of both types, which the check validated.
	mm := NewMain()
	fs, _ := mm.flagSet()
	if err := mm.loadConfig(fs, writeConfig(t, string(m[1])), nil); err != nil || len(mm.OIDCConfig.Clients) != 2 {
		t.Fatalf("example clients %+v: %v", mm.OIDCConfig.Clients, err)
	}
}

// TestOIDCHashSecret: the hash is the store's (base64 of SHA-256); a short
// secret is refused.
func TestOIDCHashSecret(t *testing.T) {
	secret := randomSecret(t)
	var out, errOut bytes.Buffer
	if code := runOIDC([]string{"hash-secret"}, strings.NewReader(secret+"\n"), &out, &errOut); code != 0 {
		t.Fatalf("exit %d: %s", code, errOut.String())
	}
	sum := sha256.Sum256([]byte(secret))
	if got := strings.TrimSpace(out.String()); got != base64.StdEncoding.EncodeToString(sum[:]) || strings.Contains(got, secret) {
		t.Fatalf("hash %q", got)
	}
	out.Reset()
	if code := runOIDC([]string{"hash-secret"}, strings.NewReader("hunter2\n"), &out, &errOut); code != 1 || out.Len() != 0 {
		t.Fatalf("short secret: exit %d, %q", code, out.String())
	}
	if code := runOIDC(nil, strings.NewReader(""), &out, &errOut); code != 2 {
		t.Fatalf("no command: exit %d", code)
	}
}
