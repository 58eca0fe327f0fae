package forwardauth_test

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/qrauth/qrauth"
	"github.com/qrauth/qrauth/server"
	"github.com/qrauth/qrauth/server/forwardauth"
	"github.com/qrauth/qrauth/store"
)

const origin = "http://login.example.test"

type testServer struct {
	*server.Server
	DB   *store.DB
	base string // the listener, which the origin's host does not resolve to
}

// mustOpen starts a server with the forward-auth flow on a loopback port
// over a real bbolt file.
func mustOpen(t *testing.T, origin, cookieDomain string, cfg forwardauth.Config) *testServer {
	t.Helper()
	db, err := store.Open(t.TempDir()+"/qrauth.db", store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	s, err := server.New(server.Config{Addr: "127.0.0.1:0", Origin: origin, CookieDomain: cookieDomain,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}, db, forwardauth.New(cfg))
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Open(); err != nil {
		db.Close()
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := s.Shutdown(ctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
	})
	return &testServer{Server: s, DB: db, base: "http://" + s.Addr().String()}
}

// mustUser creates a user holding roles and a session of theirs; it
// returns the user and the session cookie's value.
func mustUser(t *testing.T, db *store.DB, name string, roles ...qrauth.Role) (*qrauth.User, string) {
	t.Helper()
	ctx := t.Context()
	id, err := qrauth.NewUserID(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	pub, _, _ := ed25519.GenerateKey(rand.Reader)
	now := time.Now()
	h := make([]byte, 32)
	rand.Read(h)
	hash := hex.EncodeToString(h)
	u := &qrauth.User{ID: id, Name: name, Email: strings.ToLower(name) + "@example.test", PhoneIDHash: hash, CreatedAt: now}
	d := &qrauth.Device{ID: qrauth.DeviceIDFromKey(pub), UserID: id, Name: "Phone", PublicKey: pub, PhoneIDHash: hash,
		CreatedAt: now, LastSeenAt: now}
	if err := db.CreateUser(ctx, u, d); err != nil {
		t.Fatal(err)
	}
	if len(roles) > 0 {
		if u, err = db.SetRoles(ctx, id, roles); err != nil {
			t.Fatal(err)
		}
	}
	tok, _ := qrauth.RandomToken(rand.Reader, 32)
	sid, _ := qrauth.NewSessionID(rand.Reader)
	if err := db.CreateSession(ctx, &qrauth.Session{ID: sid, UserID: id, TokenHash: qrauth.HashToken(tok), IP: "127.0.0.1",
		CreatedAt: now, ExpiresAt: now.Add(time.Hour), LastSeenAt: now}); err != nil {
		t.Fatal(err)
	}
	return u, tok
}

var noRedirects = &http.Client{Timeout: 10 * time.Second,
	CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}

// get asks path with headers (name, value, …) and an optional session.
func get(t *testing.T, srv *testServer, path, session string, headers ...string) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest("GET", srv.base+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	if session != "" {
		req.AddCookie(&http.Cookie{Name: "qrauth_session", Value: session})
	}
	resp, err := noRedirects.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

func reason(t *testing.T, body string) string {
	t.Helper()
	var e struct{ Reason string }
	if err := json.Unmarshal([]byte(body), &e); err != nil {
		t.Fatalf("not an error body: %q", body)
	}
	return e.Reason
}

func standard(t *testing.T) *testServer {
	rule, err := forwardauth.ParseRule("app.example.test=admin,helpdesk")
	if err != nil {
		t.Fatal(err)
	}
	return mustOpen(t, origin, "example.test", forwardauth.Config{Domains: []string{"example.test"}, Rules: []forwardauth.Rule{rule}})
}

// caddy and nginx are the headers each proxy sends about
// http://app.example.test/path?q=1.
var (
	caddy = []string{"X-Forwarded-Proto", "http", "X-Forwarded-Host", "app.example.test", "X-Forwarded-Uri", "/path?q=1",
		"X-Forwarded-Method", "GET"}
	nginx = []string{"X-Original-URL", "http://app.example.test/path?q=1", "X-Original-Method", "GET"}
)

func TestForwardAuth(t *testing.T) {
	srv := standard(t)
	admin, adminTok := mustUser(t, srv.DB, "Ada", qrauth.RoleAdmin, qrauth.RoleSecretViewer)
	_, plainTok := mustUser(t, srv.DB, "Bob")
	wantSignIn := origin + "/authz/signin?rd=" + url.QueryEscape("http://app.example.test/path?q=1")

	t.Run("OK", func(t *testing.T) {
		for _, h := range [][]string{caddy, nginx} {
			resp, _ := get(t, srv, forwardauth.PathForwardAuth, adminTok, h...)
			if resp.StatusCode != 200 || resp.Header.Get("Remote-User") != string(admin.ID) || resp.Header.Get("Remote-Name") != "Ada" ||
				resp.Header.Get("Remote-Email") != "ada@example.test" || resp.Header.Get("Remote-Groups") != "admin,secret_viewer" {
				t.Fatalf("%d %v", resp.StatusCode, resp.Header)
			}
		}
	})
	t.Run("NoRuleAdmitsAnyone", func(t *testing.T) {
		resp, _ := get(t, srv, forwardauth.PathForwardAuth, plainTok, "X-Original-URL", "http://wiki.example.test/")
		if resp.StatusCode != 200 || resp.Header.Get("Remote-Groups") != "" || resp.Header.Get("Remote-Name") != "Bob" {
			t.Fatalf("%d %v", resp.StatusCode, resp.Header)
		}
	})
	t.Run("RedirectTraefikCaddy", func(t *testing.T) {
		resp, _ := get(t, srv, forwardauth.PathForwardAuth, "", caddy...)
		if resp.StatusCode != http.StatusFound || resp.Header.Get("Location") != wantSignIn {
			t.Fatalf("%d %q", resp.StatusCode, resp.Header.Get("Location"))
		}
		post := append(append([]string(nil), caddy[:6]...), "X-Forwarded-Method", "POST")
		if resp, _ := get(t, srv, forwardauth.PathForwardAuth, "", post...); resp.StatusCode != http.StatusSeeOther {
			t.Fatalf("POST: %d", resp.StatusCode)
		}
	})
	t.Run("UnauthorizedNginx", func(t *testing.T) {
		resp, body := get(t, srv, forwardauth.PathForwardAuth, "", nginx...)
		if resp.StatusCode != http.StatusUnauthorized || resp.Header.Get("Location") != wantSignIn || reason(t, body) != "not_signed_in" {
			t.Fatalf("%d %q %s", resp.StatusCode, resp.Header.Get("Location"), body)
		}
	})
	t.Run("ExpiredOrForgedSession", func(t *testing.T) {
		resp, _ := get(t, srv, forwardauth.PathForwardAuth, "forged", caddy...)
		if resp.StatusCode != http.StatusFound {
			t.Fatalf("%d", resp.StatusCode)
		}
	})
	t.Run("ErrRoleRequired", func(t *testing.T) {
		resp, body := get(t, srv, forwardauth.PathForwardAuth, plainTok, caddy...)
		if resp.StatusCode != http.StatusForbidden || reason(t, body) != "role_required" || resp.Header.Get("Remote-User") != "" {
			t.Fatalf("%d %s", resp.StatusCode, body)
		}
		resp, body = get(t, srv, forwardauth.PathForwardAuth, plainTok, append(nginx, "Accept", "text/html,*/*;q=0.8")...)
		if resp.StatusCode != http.StatusForbidden || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") ||
			!strings.Contains(body, "Access denied") || !strings.Contains(body, "You are signed in as Bob, but app.example.test is open only to users with the role admin or helpdesk.") ||
			!strings.Contains(body, `href="`+origin+`/account"`) {
			t.Fatalf("%d %s", resp.StatusCode, body)
		}
	})
	t.Run("ErrHostNotProtected", func(t *testing.T) {
		for _, h := range [][]string{{"X-Original-URL", "https://evil.test/"}, {"X-Forwarded-Host", "example.test.evil.test", "X-Forwarded-Uri", "/"}} {
			resp, body := get(t, srv, forwardauth.PathForwardAuth, adminTok, h...)
			if resp.StatusCode != http.StatusForbidden || reason(t, body) != "host_not_protected" || resp.Header.Get("Remote-User") != "" {
				t.Fatalf("%v: %d %s", h, resp.StatusCode, body)
			}
		}
	})
	t.Run("ErrHeaders", func(t *testing.T) {
		for _, tc := range []struct {
			h    []string
			want string
		}{
			{nil, "forward_auth_headers_missing"},
			{[]string{"X-Original-URL", "/relative"}, "forward_auth_headers_malformed"},
			{[]string{"X-Original-URL", "ftp://app.example.test/"}, "forward_auth_headers_malformed"},
			{[]string{"X-Original-URL", "http://user:pw@app.example.test/"}, "forward_auth_headers_malformed"},
			{[]string{"X-Forwarded-Host", "app.example.test", "X-Forwarded-Uri", "no-slash"}, "forward_auth_headers_malformed"},
			{[]string{"X-Forwarded-Proto", "gopher", "X-Forwarded-Host", "app.example.test", "X-Forwarded-Uri", "/"}, "forward_auth_headers_malformed"},
		} {
			resp, body := get(t, srv, forwardauth.PathForwardAuth, adminTok, tc.h...)
			if resp.StatusCode != http.StatusBadRequest || reason(t, body) != tc.want {
				t.Errorf("%v: %d %s", tc.h, resp.StatusCode, body)
			}
		}
	})
}

func TestSignIn(t *testing.T) {
	srv := standard(t)
	_, tok := mustUser(t, srv.DB, "Ada")
	rd := "http://app.example.test:8443/a/b?c=d&e=%2F"
	t.Run("SignedOut", func(t *testing.T) {
		resp, _ := get(t, srv, forwardauth.PathSignIn+"?rd="+url.QueryEscape(rd), "")
		want := "/?next=" + url.QueryEscape("/authz/signin?rd="+url.QueryEscape(rd))
		if resp.StatusCode != http.StatusFound || resp.Header.Get("Location") != want {
			t.Fatalf("%d %q, want %q", resp.StatusCode, resp.Header.Get("Location"), want)
		}
	})
	t.Run("SignedIn", func(t *testing.T) {
		resp, _ := get(t, srv, forwardauth.PathSignIn+"?rd="+url.QueryEscape(rd), tok)
		if resp.StatusCode != http.StatusFound || resp.Header.Get("Location") != rd {
			t.Fatalf("%d %q", resp.StatusCode, resp.Header.Get("Location"))
		}
	})
	t.Run("ErrReturnURLNotAllowed", func(t *testing.T) {
		for _, bad := range []string{"", "https://evil.test/", "//evil.test/", "/account", "javascript:alert(1)",
			"https://example.test.evil.test/", "https://evil.test\\@app.example.test/", "https://u:p@app.example.test/",
			"ftp://app.example.test/", "https://app.example.test\t.evil.test/", "data:text/html,hi", "https://xexample.test/",
			"https://app.example.test/" + strings.Repeat("a", 5000)} {
			resp, body := get(t, srv, forwardauth.PathSignIn+"?rd="+url.QueryEscape(bad), tok)
			if resp.StatusCode != http.StatusBadRequest || resp.Header.Get("Location") != "" || reason(t, body) != "return_url_not_allowed" {
				t.Errorf("%.60q: %d %q %s", bad, resp.StatusCode, resp.Header.Get("Location"), body)
			}
		}
		resp, body := get(t, srv, forwardauth.PathSignIn+"?rd=https://evil.test/", "", "Accept", "text/html")
		if resp.StatusCode != http.StatusBadRequest || !strings.Contains(body, "<title>Cannot continue · qrauth</title>") ||
			!strings.Contains(body, "must be an http(s) address on example.test") {
			t.Fatalf("%d %s", resp.StatusCode, body)
		}
	})
	t.Run("HTTPSOnlyWhenSecure", func(t *testing.T) {
		srv := mustOpen(t, "https://login.example.test", "example.test", forwardauth.Config{Domains: []string{"example.test"}})
		_, tok := mustUser(t, srv.DB, "Ada")
		resp, body := get(t, srv, forwardauth.PathSignIn+"?rd="+url.QueryEscape("http://app.example.test/"), tok)
		if resp.StatusCode != http.StatusBadRequest || !strings.Contains(body, "an https address") {
			t.Fatalf("%d %s", resp.StatusCode, body)
		}
		if resp, _ := get(t, srv, forwardauth.PathSignIn+"?rd="+url.QueryEscape("https://app.example.test/"), tok); resp.StatusCode != http.StatusFound {
			t.Fatalf("https: %d", resp.StatusCode)
		}
	})
}

// TestConfigRefused: a configuration that could not work (a domain the
// session never reaches, a rule for a host outside the domains, a role
// that does not exist) stops the server from starting.
func TestConfigRefused(t *testing.T) {
	for _, tc := range []struct {
		s    string
		want string
	}{
		{"app.example.test", "want HOST=ROLE"},
		{"app.example.test=", "want HOST=ROLE"},
		{"app.example.test=root", `unknown role "root"`},
		{"http://app.example.test=admin", "not a host name"},
		{"app.*.test=admin", "not a host name"},
		{"127.0.0.1=admin", "not a host name"},
	} {
		if _, err := forwardauth.ParseRule(tc.s); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("ParseRule(%q): %v, want %q", tc.s, err, tc.want)
		}
	}
	if d, err := forwardauth.ParseDomains(" Example.TEST, ,example.test,b.example.test"); err != nil || strings.Join(d, " ") != "example.test b.example.test" {
		t.Errorf("ParseDomains: %q %v", d, err)
	}
	if _, err := forwardauth.ParseDomains("example.test:443"); err == nil {
		t.Error("ParseDomains took a port")
	}
	rule := func(s string) forwardauth.Rule {
		r, err := forwardauth.ParseRule(s)
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	db, err := store.Open(t.TempDir()+"/qrauth.db", store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for _, tc := range []struct {
		name, cookieDomain string
		cfg                forwardauth.Config
		want               string
	}{
		{"NoDomains", "example.test", forwardauth.Config{}, "no domains"},
		{"OutsideCookieDomain", "example.test", forwardauth.Config{Domains: []string{"other.test"}}, "outside the session cookie's domain"},
		{"HostOnlyCookie", "", forwardauth.Config{Domains: []string{"example.test"}}, "set -cookie-domain to a domain containing both, such as example.test"},
		{"RuleOutsideDomains", "example.test", forwardauth.Config{Domains: []string{"a.example.test"}, Rules: []forwardauth.Rule{rule("b.example.test=admin")}},
			"in none of the forward-auth domains"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, err := server.New(server.Config{Addr: "127.0.0.1:0", Origin: origin, CookieDomain: tc.cookieDomain,
				Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}, db, forwardauth.New(tc.cfg))
			if err != nil {
				t.Fatal(err)
			}
			err = s.Open()
			if err == nil {
				s.Shutdown(t.Context())
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("%v, want %q", err, tc.want)
			}
		})
	}
}

// TestRuleWildcard: an exact rule wins over a wildcard, a wildcard covers
// the hosts below its domain.
func TestRuleWildcard(t *testing.T) {
	var rules []forwardauth.Rule
	for _, s := range []string{"*.example.test=helpdesk", "open.example.test=admin,helpdesk", "app.example.test=admin"} {
		r, err := forwardauth.ParseRule(s)
		if err != nil {
			t.Fatal(err)
		}
		rules = append(rules, r)
	}
	srv := mustOpen(t, origin, "example.test", forwardauth.Config{Domains: []string{"example.test"}, Rules: rules})
	_, tok := mustUser(t, srv.DB, "Hal", qrauth.RoleHelpdesk)
	for host, want := range map[string]int{"x.example.test": 200, "open.example.test": 200, "app.example.test": 403, "example.test": 200} {
		if resp, _ := get(t, srv, forwardauth.PathForwardAuth, tok, "X-Original-URL", "http://"+host+"/"); resp.StatusCode != want {
			t.Errorf("%s: %d, want %d", host, resp.StatusCode, want)
		}
	}
}
