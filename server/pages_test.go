package server_test

import (
	"bytes"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/qrauth/qrauth/wire"
)

// syncBuffer is a log sink safe for the server's goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func get(t *testing.T, url, accept string) (*http.Response, string) {
	t.Helper()
	req, _ := http.NewRequest("GET", url, nil)
	if accept != "" {
		req.Header.Set("Accept", accept)
	}
	resp, err := (&http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

const browserAccept = "text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,*/*;q=0.8"

// TestStaticBadPathIsNotFound: a path under /static/ that is not valid
// UTF-8 once unescaped (/static/%ff) used to answer a plain-text 500 and
// log a warning per request; a missing file answered plain text and
// /static/ listed the directory. All are a quiet 404 in the error format.
func TestStaticBadPathIsNotFound(t *testing.T) {
	var logs syncBuffer
	srv := MustOpenServer(t, func(c *testConfig) {
		c.Logger = slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelInfo}))
	})
	for _, p := range []string{wire.Prefix(wire.PathStatic) + "%ff", wire.Prefix(wire.PathStatic) + "%c3%28", wire.Prefix(wire.PathStatic) + "a%ffb.css", wire.Prefix(wire.PathStatic), wire.Prefix(wire.PathStatic) + "nope.css",
		wire.Prefix(wire.PathStatic) + "../static/app.css%00", wire.Prefix(wire.PathStatic) + "%2e%2e/go.mod"} {
		resp, body := get(t, srv.URL+p, "")
		var e struct{ Code, Reason, Message string }
		if resp.StatusCode != http.StatusNotFound || json.Unmarshal([]byte(body), &e) != nil || e.Code != "not_found" || e.Message == "" {
			t.Errorf("GET %s: %d %q %q", p, resp.StatusCode, resp.Header.Get("Content-Type"), body)
		}
		// A browser gets the HTML page instead.
		resp, body = get(t, srv.URL+p, browserAccept)
		if resp.StatusCode != http.StatusNotFound || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") || !strings.Contains(body, "<title>Page not found") {
			t.Errorf("browser GET %s: %d %q", p, resp.StatusCode, resp.Header.Get("Content-Type"))
		}
	}
	if l := logs.String(); strings.Contains(l, "level=WARN") || strings.Contains(l, "level=ERROR") {
		t.Errorf("bad static paths were logged as problems:\n%s", l)
	}
	// The files themselves are still served, with their types.
	for p, ct := range map[string]string{wire.Prefix(wire.PathStatic) + "app.css": "text/css", wire.Prefix(wire.PathStatic) + "common.js": "text/javascript", wire.Prefix(wire.PathStatic) + "favicon.svg": "image/svg+xml"} {
		if resp, _ := get(t, srv.URL+p, ""); resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), ct) {
			t.Errorf("GET %s: %d %q", p, resp.StatusCode, resp.Header.Get("Content-Type"))
		}
	}
}

// TestNotFoundPage: an unknown address opened in a browser is an HTML page
// with a title, a language and a link home; programs still get JSON.
func TestNotFoundPage(t *testing.T) {
	srv := MustOpenServer(t, nil)
	resp, body := get(t, srv.URL+"/no/such/page", browserAccept)
	if resp.StatusCode != 404 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") {
		t.Fatalf("%d %q", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	for _, s := range []string{`<html lang="en">`, `<title>Page not found · qrauth</title>`, `href="/"`, `rel="icon"`} {
		if !strings.Contains(body, s) {
			t.Errorf("404 page lacks %s", s)
		}
	}
	if resp.Header.Get("Content-Security-Policy") == "" {
		t.Error("404 page without the CSP")
	}
	for _, accept := range []string{"", "application/json", "*/*", "text/html;q=0, application/json"} {
		resp, body := get(t, srv.URL+"/no/such/page", accept)
		if resp.StatusCode != 404 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") || !strings.Contains(body, `"no_such_route"`) {
			t.Errorf("Accept %q: %d %q %s", accept, resp.StatusCode, resp.Header.Get("Content-Type"), body)
		}
	}
	// A flow that is off reads as "not found" to a browser too.
	if resp, _ := get(t, srv.URL+wire.Path(wire.PathTransactionScan, "AAAA"), browserAccept); resp.StatusCode != 404 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") {
		t.Errorf(wire.Prefix(wire.PathTransactionScan)+" with offline off: %d %q", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	// A wrong method is not a missing page.
	req, _ := http.NewRequest("POST", srv.URL+"/no/such/page", nil)
	req.Header.Set("Accept", browserAccept)
	if r, err := http.DefaultClient.Do(req); err != nil || r.StatusCode != 404 || !strings.HasPrefix(r.Header.Get("Content-Type"), "application/json") {
		t.Errorf("POST: %v %v", r, err)
	}
}

// TestFavicon: browsers ask /favicon.ico on their own.
func TestFavicon(t *testing.T) {
	srv := MustOpenServer(t, nil)
	resp, body := get(t, srv.URL+wire.PathFavicon, "image/avif,image/webp,image/apng,image/svg+xml,image/*,*/*;q=0.8")
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "image/svg+xml" || !strings.HasPrefix(body, "<svg") {
		t.Fatalf("%d %q %.20q", resp.StatusCode, resp.Header.Get("Content-Type"), body)
	}
}

// TestLoginPageOffersOnlyEnabledFlows: the links to the badge and code
// pages appear only when those flows are on.
func TestLoginPageOffersOnlyEnabledFlows(t *testing.T) {
	for _, tc := range []struct {
		name           string
		badge, offline bool
	}{{"none", false, false}, {"badge", true, false}, {"offline", false, true}, {"both", true, true}} {
		t.Run(tc.name, func(t *testing.T) {
			srv := MustOpenServer(t, func(c *testConfig) {
				if tc.badge || tc.offline {
					c.MasterKey = bytes.Repeat([]byte{7}, 32)
				}
				c.BadgeOn, c.OfflineOn = tc.badge, tc.offline
			})
			_, body := get(t, srv.URL+wire.PathLogin, browserAccept)
			if got := strings.Contains(body, `href="/badge"`); got != tc.badge {
				t.Errorf("badge link shown: %v", got)
			}
			if got := strings.Contains(body, `href="/offline"`); got != tc.offline {
				t.Errorf("offline link shown: %v", got)
			}
			if got := strings.Contains(body, `id="other-ways"`); got != (tc.badge || tc.offline) {
				t.Errorf("nav shown: %v", got)
			}
			if !strings.Contains(body, "</html>") || !strings.Contains(body, `id="login"`) {
				t.Error("page damaged")
			}
		})
	}
}

// TestSignedInSkipsLoginPages: a browser with a session is sent to its
// account page by the server, so the pages need not ask /api/me (whose 401
// landed in every anonymous visitor's console).
func TestSignedInSkipsLoginPages(t *testing.T) {
	srv := MustOpenServer(t, badgeConfig)
	for _, path := range []string{wire.PathLogin, wire.PathBadge} {
		if resp, _ := get(t, srv.URL+path, browserAccept); resp.StatusCode != 200 {
			t.Fatalf("anonymous %s: %d", path, resp.StatusCode)
		}
	}
	b := signUp(t, srv, newPhone(t, srv, "+41 79 123 45 67"))
	for _, path := range []string{wire.PathLogin, wire.PathBadge} {
		req, _ := http.NewRequest("GET", srv.URL+path, nil)
		client := *b.client
		client.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != wire.PathAccount {
			t.Errorf("signed-in %s: %d %q", path, resp.StatusCode, resp.Header.Get("Location"))
		}
	}
}
