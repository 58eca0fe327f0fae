package main

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/qrauth/qrauth"
	"github.com/qrauth/qrauth/appclient"
	"github.com/qrauth/qrauth/oidc"
	"github.com/qrauth/qrauth/server/forwardauth"
	"golang.org/x/oauth2"
)

// clearEnv unsets every QRAUTH_* variable for the test (restored after
// it), so that it sees the defaults and what it sets itself, whatever this
// process's environment holds.
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
		{"UnknownKey", "room-ttl = \"7m\"\nroom-tll = \"8m\"\n", []string{`.toml:2: unknown key "room-tll"`}},
		{"RemovedKey", "room-ttl = \"7m\"\ntrust-proxy = true\n", []string{`.toml:2: key trust-proxy was removed`, "-trusted-proxies"}},
		{"UnknownClientKey", "room-ttl = \"7m\"\n[[oidc-client]]\nid = \"x\"\nname = \"X\"\ntype = \"public\"\n" +
			"redirect-uris = [\"https://x.example/cb\"]\nredirect-uri = \"https://x.example/cb\"\n", []string{`unknown key "redirect-uri"`}},
		{"BadDuration", "room-ttl = \"7m\"\npsk-rotation = \"soon\"\n", []string{".toml:2: key psk-rotation", `"soon"`, "duration"}},
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
		{"ClientFieldType", "room-ttl = \"7m\"\n[[oidc-client]]\nid = \"x\"\nname = \"X\"\ntype = \"public\"\n" +
			"redirect-uris = [\"https://x.example/cb\"]\nskip-consent = \"yes\"\n", []string{"skip-consent"}},
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
	code, _, stderr = runCLI(t, "config", "check", writeConfig(t, "log-level = \"verbose\"\n"))
	if code != 1 || !strings.Contains(stderr, "log level") {
		t.Fatalf("bad log level: exit %d, %q", code, stderr)
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

// TestOIDCConfigClient: a client declared in the config file is created at
// start, updated at the next, completes an authorization code flow with a
// real relying party in headless Chromium, cannot be removed over the
// admin socket, and is removed (with its tokens) once it left the file.
func TestOIDCConfigClient(t *testing.T) {
	clearEnv(t)
	dir := t.TempDir()
	data, cfg := filepath.Join(dir, "qrauth.db"), filepath.Join(dir, "qrauth.toml")
	secret := randomSecret(t)
	var hash bytes.Buffer
	if code := runOIDC([]string{"hash-secret"}, strings.NewReader(secret), &hash, io.Discard); code != 0 {
		t.Fatal("hash-secret failed")
	}
	write := func(text string) {
		t.Helper()
		if err := os.WriteFile(cfg, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	client := func(redirect string) string {
		return fmt.Sprintf("room-rate = 1000\nroom-burst = 1000\n\n[[oidc-client]]\nid = \"wiki\"\nname = \"Config Wiki\"\n"+
			"type = \"confidential\"\nredirect-uris = [%q]\nskip-consent = true\nsecret-hash = %q\n", redirect, strings.TrimSpace(hash.String()))
	}
	// start runs the server on addr over the same database and file, as a
	// restart does.
	var running *Main
	start := func(addr string) *Main {
		t.Helper()
		m := NewMain()
		if err := m.ParseFlags([]string{"-addr", addr, "-data", data, "-config", cfg}, io.Discard); err != nil {
			t.Fatal(err)
		}
		m.LogOutput = io.Discard
		if err := m.Run(); err != nil {
			t.Fatal(err)
		}
		running = m
		return m
	}
	stop := func(m *Main) {
		t.Helper()
		running = nil
		if err := m.Close(); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() {
		if running != nil {
			running.Close()
		}
	})
	ctx := t.Context()

	write(client("https://placeholder.example/cb"))
	m := start("127.0.0.1:0")
	addr, origin := m.Server.Addr().String(), m.Server.Origin()
	first, err := m.DB.FindOIDCClient(ctx, "wiki")
	if err != nil || first.Source != oidc.SourceConfig || !bytes.Equal(first.SecretHash, oidc.Hash(secret)) {
		t.Fatalf("config client at start: %+v %v", first, err)
	}
	admin := func(args ...string) (int, string, string) {
		var out, errOut bytes.Buffer
		code := runAdmin(ctx, append([]string{"-data", data, "oidc", "clients"}, args...), &out, &errOut)
		return code, out.String(), errOut.String()
	}
	if code, out, _ := admin("list"); code != 0 || !regexp.MustCompile(`(?m)^wiki +Config Wiki +confidential +skipped +config `).MatchString(out) {
		t.Fatalf("list: exit %d\n%s", code, out)
	}
	if code, _, errOut := admin("remove", "wiki"); code == 0 || !strings.Contains(errOut, "config file") {
		t.Fatalf("remove of a config client: exit %d, %q", code, errOut)
	}

	// The relying party reads discovery at its start, so it starts against
	// the first server; the file then gets its redirect URI, and a restart
	// on the same address applies it.
	rp := startRP(t, origin, "wiki", secret)
	write(client(rp.origin + "/callback"))
	stop(m)
	m = start(addr)
	c, err := m.DB.FindOIDCClient(ctx, "wiki")
	if err != nil || !reflect.DeepEqual(c.RedirectURIs, []string{rp.origin + "/callback"}) || !c.CreatedAt.Equal(first.CreatedAt) {
		t.Fatalf("updated client %+v %v", c, err)
	}

	// Sign up on qrauth's page, then sign in to the site: skip-consent and
	// a signed-in browser go straight back with a code, which the site
	// exchanges with its secret.
	bctx, problems := newChromium(t)
	dev, err := appclient.Init(bctx, appclient.InitOptions{Server: origin, Phone: "+41 79 555 00 21", Name: "Pixel 8"})
	if err != nil {
		t.Fatal(err)
	}
	if err := chromedp.Run(bctx, chromedp.Navigate(origin+"/")); err != nil {
		t.Fatal(err)
	}
	scanAndApprove(t, bctx, dev, true)
	var shown string
	if err := chromedp.Run(bctx,
		chromedp.SendKeys("#signup-name", "Ada Lovelace", chromedp.ByQuery),
		chromedp.Click("#signup-submit", chromedp.ByQuery),
		chromedp.WaitVisible(`#user-name`, chromedp.ByQuery),
		chromedp.Navigate(rp.origin+"/login"),
		chromedp.WaitVisible(`#user, #error`, chromedp.ByQuery),
		chromedp.Text("main", &shown, chromedp.ByQuery),
	); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(shown, "Ada Lovelace") || rp.last == nil || rp.last.RefreshToken == "" {
		t.Fatalf("relying party shows %q (err %q)", shown, rp.lastErr)
	}
	if p := problems(); len(p) > 0 {
		t.Fatalf("browser console problems:\n%s", strings.Join(p, "\n"))
	}

	// Its refresh token works while it is declared...
	tok, err := rp.conf.TokenSource(ctx, &oauth2.Token{RefreshToken: rp.last.RefreshToken}).Token()
	if err != nil || tok.RefreshToken == "" {
		t.Fatalf("refresh while declared: %v", err)
	}

	// ...and the client leaves the file: gone at the next start, with its
	// tokens.
	write("room-rate = 1000\nroom-burst = 1000\n")
	stop(m)
	m = start(addr)
	if _, err := m.DB.FindOIDCClient(ctx, "wiki"); qrauth.ErrorCode(err) != qrauth.ENOTFOUND {
		t.Fatalf("client still there after it left the file: %v", err)
	}
	src := rp.conf.TokenSource(ctx, &oauth2.Token{RefreshToken: tok.RefreshToken})
	if _, err := src.Token(); err == nil {
		t.Fatal("the removed client's refresh token still works")
	}
}

// TestConfigClientTakesNoAdminClient: a file that declares the id of a
// client registered with `clients add` stops the start, naming it, and
// leaves that client as it was.
func TestConfigClientTakesNoAdminClient(t *testing.T) {
	clearEnv(t)
	data := filepath.Join(t.TempDir(), "qrauth.db")
	run := func(args ...string) (*Main, error) {
		m := NewMain()
		if err := m.ParseFlags(append([]string{"-addr", "127.0.0.1:0", "-data", data}, args...), io.Discard); err != nil {
			t.Fatal(err)
		}
		m.LogOutput = io.Discard
		return m, m.Run()
	}
	m, err := run()
	if err != nil {
		t.Fatal(err)
	}
	registerClient(t, m, "wiki", randomSecret(t), []string{"https://wiki.example/cb"}, nil)
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	cfg := writeConfig(t, "[[oidc-client]]\nid = \"wiki\"\nname = \"Other\"\ntype = \"public\"\nredirect-uris = [\"https://other.example/cb\"]\n")
	m, err = run("-config", cfg)
	if err == nil {
		m.Close()
		t.Fatal("started with a config client that takes an administrator's")
	}
	if !strings.Contains(err.Error(), "clients remove wiki") {
		t.Fatalf("error %q does not say how to resolve it", err)
	}
	m, err = run()
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	c, err := m.DB.FindOIDCClient(t.Context(), "wiki")
	if err != nil || c.Source != "" || c.Public || c.RedirectURIs[0] != "https://wiki.example/cb" {
		t.Fatalf("administrator's client after the refused start: %+v %v", c, err)
	}
}
