package server_test

import (
	"io"
	"log/slog"
	"net/http"
	"strings"
	"testing"

	"github.com/qrauth/qrauth/server"
	"github.com/qrauth/qrauth/store"
)

// TestCookieDomainRefused: a cookie domain a browser would refuse, or one
// that would share the session with the whole world, stops the server
// from starting with a message that names the problem.
func TestCookieDomainRefused(t *testing.T) {
	db, err := store.Open(t.TempDir()+"/qrauth.db", store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for _, tc := range []struct{ origin, domain, want string }{
		{"https://login.example.com", "com", "public suffix"},
		{"https://login.example.co.uk", "co.uk", "public suffix"},
		{"https://login.example.com", "example.org", "must contain the origin's host"},
		{"https://login.example.com", "ample.com", "must contain the origin's host"},
		{"http://127.0.0.1:8080", "127.0.0.1", "address"},
		{"https://login.example.com", "https://example.com", "no scheme"},
		{"https://login.example.com", "example.com:443", "no scheme, port"},
	} {
		_, err := server.New(server.Config{Origin: tc.origin, CookieDomain: tc.domain}, db)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s on %s: %v, want %q", tc.domain, tc.origin, err, tc.want)
		}
	}
	for _, d := range []string{"example.com", ".Example.COM", "login.example.com"} {
		if _, err := server.New(server.Config{Origin: "https://login.example.com", CookieDomain: d}, db); err != nil {
			t.Errorf("%s: %v", d, err)
		}
	}
}

// TestCookieDomainLogout: signing out clears the session cookie on the
// cookie domain and the host-only one (left from before the domain was
// set), so neither keeps the browser signed in.
func TestCookieDomainLogout(t *testing.T) {
	db, err := store.Open(t.TempDir()+"/qrauth.db", store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	s, err := server.New(server.Config{Addr: "127.0.0.1:0", Origin: "http://login.example.test", CookieDomain: "example.test",
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}, db)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Open(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Shutdown(t.Context()) })
	resp, err := http.Post("http://"+s.Addr().String()+"/api/logout", "application/json", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	var domains []string
	for _, c := range resp.Cookies() {
		if c.Name == "qrauth_session" && c.MaxAge < 0 {
			domains = append(domains, c.Domain)
		}
	}
	if resp.StatusCode != http.StatusNoContent || len(domains) != 2 || domains[0] != "example.test" || domains[1] != "" {
		t.Fatalf("logout: %d, cleared session cookies on %q", resp.StatusCode, domains)
	}
}
