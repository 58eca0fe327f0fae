package webclient_test

import (
	"io/fs"
	"path"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/qrauth/qrauth/webclient"
)

func readAll(t *testing.T) map[string]string {
	t.Helper()
	files := map[string]string{}
	err := fs.WalkDir(webclient.Files(), ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := fs.ReadFile(webclient.Files(), p)
		if err != nil {
			return err
		}
		files[p] = string(b)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return files
}

func htmlFiles(files map[string]string) []string {
	var names []string
	for name := range files {
		if strings.HasSuffix(name, ".html") {
			names = append(names, name)
		}
	}
	return names
}

func TestFilesHasEveryPage(t *testing.T) {
	files := readAll(t)
	for _, name := range []string{
		webclient.LoginPage, webclient.AccountPage, webclient.ScanPage,
		"app.css", "common.js", "login.js", "account.js",
	} {
		if _, ok := files[name]; !ok {
			t.Errorf("Files() has no %s", name)
		}
	}
}

var (
	tagRe      = regexp.MustCompile(`(?s)<[a-zA-Z][^>]*>`)
	quotedRe   = regexp.MustCompile(`"[^"]*"|'[^']*'`)
	badAttrRe  = regexp.MustCompile(`(?i)\s(on[a-z]+|style)\s*=`)
	scriptRe   = regexp.MustCompile(`(?is)<script\b([^>]*)>(.*?)</script\s*>`)
	srcAttrRe  = regexp.MustCompile(`(?i)\ssrc\s*=\s*"[^"]+"`)
	refRe      = regexp.MustCompile(`(?i)\s(?:src|href|action|poster|data)\s*=\s*"([^"]*)"`)
	langRe     = regexp.MustCompile(`(?is)<html\s[^>]*\blang="[A-Za-z]{2,3}(-[A-Za-z0-9]+)*"`)
	titleRe    = regexp.MustCompile(`(?is)<title>([^<]*)</title>`)
	viewportRe = regexp.MustCompile(`(?is)<meta\s[^>]*name="viewport"[^>]*content="[^"]*width=device-width`)
	charsetRe  = regexp.MustCompile(`(?i)<meta\s+charset="utf-8"`)
	idRe       = regexp.MustCompile(`\sid="([^"]+)"`)
	cssURLRe   = regexp.MustCompile(`url\(\s*['"]?([^'")]+)`)
	// lookupRe finds the ids a script looks up by name.
	lookupRe    = regexp.MustCompile(`(?:byId|getElementById)\(\s*['"]([^'"]+)['"]\s*\)`)
	scriptSrcRe = regexp.MustCompile(`(?i)<script\b[^>]*\ssrc="/static/([^"]+)"`)
	pageRoutes  = map[string]bool{"/": true, "/account": true, "/offline": true, "/badge": true, "/admin": true, "/app": true, "/app/manifest.webmanifest": true}
	jsForbidden = []string{"innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval(", "new Function", "console.log"}
)

// TestHTMLIsCSPClean checks what the server's Content-Security-Policy
// (script-src 'self'; style-src 'self') would block: inline scripts, inline
// event handlers, style attributes and style elements. It also checks the
// basics every page needs.
func TestHTMLIsCSPClean(t *testing.T) {
	files := readAll(t)
	for _, name := range htmlFiles(files) {
		doc := files[name]
		for _, m := range scriptRe.FindAllStringSubmatch(doc, -1) {
			if !srcAttrRe.MatchString(m[1]) {
				t.Errorf("%s: <script%s> has no src", name, m[1])
			}
			if strings.TrimSpace(m[2]) != "" {
				t.Errorf("%s: inline script content %.40q", name, m[2])
			}
		}
		if strings.Contains(strings.ToLower(doc), "<style") {
			t.Errorf("%s: has a <style> element", name)
		}
		if strings.Contains(strings.ToLower(doc), "javascript:") {
			t.Errorf("%s: has a javascript: URL", name)
		}
		for _, tag := range tagRe.FindAllString(doc, -1) {
			if m := badAttrRe.FindString(quotedRe.ReplaceAllString(tag, `""`)); m != "" {
				t.Errorf("%s: attribute%s in %.60s", name, m, tag)
			}
		}
		if !langRe.MatchString(doc) {
			t.Errorf("%s: no <html lang=...>", name)
		}
		if m := titleRe.FindStringSubmatch(doc); m == nil || strings.TrimSpace(m[1]) == "" {
			t.Errorf("%s: no <title>", name)
		}
		if !viewportRe.MatchString(doc) {
			t.Errorf("%s: no viewport meta with width=device-width", name)
		}
		if !charsetRe.MatchString(doc) {
			t.Errorf("%s: no <meta charset=\"utf-8\">", name)
		}
		seen := map[string]bool{}
		for _, m := range idRe.FindAllStringSubmatch(doc, -1) {
			if seen[m[1]] {
				t.Errorf("%s: duplicate id %q", name, m[1])
			}
			seen[m[1]] = true
		}
	}
}

// TestReferencesExist checks that every URL a page or the CSS names is
// either one of the embedded files under /static/, a page route or a
// fragment, and that nothing is loaded from another origin.
func TestReferencesExist(t *testing.T) {
	files := readAll(t)
	check := func(from, ref string) {
		switch {
		case strings.HasPrefix(ref, "#"), pageRoutes[ref], strings.HasPrefix(ref, "data:"):
		case strings.HasPrefix(ref, "/static/"):
			p := path.Clean(strings.TrimPrefix(ref, "/static/"))
			if _, ok := files[p]; !ok {
				t.Errorf("%s: %s is not in Files()", from, ref)
			}
		default:
			t.Errorf("%s: reference %q is neither /static/ nor a page route", from, ref)
		}
	}
	n := 0
	for _, name := range htmlFiles(files) {
		for _, m := range refRe.FindAllStringSubmatch(files[name], -1) {
			check(name, m[1])
			n++
		}
	}
	for name, body := range files {
		if !strings.HasSuffix(name, ".css") {
			continue
		}
		if strings.Contains(body, "@import") {
			t.Errorf("%s: uses @import", name)
		}
		for _, m := range cssURLRe.FindAllStringSubmatch(body, -1) {
			check(name, strings.TrimSpace(m[1]))
		}
	}
	if n == 0 {
		t.Fatal("found no references at all; the pattern is broken")
	}
}

// pageScripts returns, for every page, the scripts its <script src> tags
// load, in order.
func pageScripts(files map[string]string) map[string][]string {
	scripts := map[string][]string{}
	for _, page := range htmlFiles(files) {
		for _, m := range scriptSrcRe.FindAllStringSubmatch(files[page], -1) {
			scripts[page] = append(scripts[page], path.Clean(m[1]))
		}
	}
	return scripts
}

// TestScriptsMatchPages checks, for every page and every script its
// <script src> tags load, that each element the script looks up by id
// (byId, getElementById) exists in that page. common.js, loaded first by
// every page that runs a script, looks up no id of its own. Every script
// is loaded by some page, so none escapes the check. It also checks that
// no script builds HTML from strings.
func TestScriptsMatchPages(t *testing.T) {
	files := readAll(t)
	loaded := map[string]bool{}
	lookups := 0
	for page, scripts := range pageScripts(files) {
		if strings.HasPrefix(page, "app/") {
			// The phone web app is ES modules importing each other, not
			// page scripts over common.js; its own tests check its ids
			// (TestPhoneAppIDs).
			continue
		}
		ids := map[string]bool{}
		for _, m := range idRe.FindAllStringSubmatch(files[page], -1) {
			ids[m[1]] = true
		}
		// app/open.js, the camera-app landing pages' one module, is the
		// phone web app's (TestPhoneAppIDs); it tolerates a missing link.
		scripts = slices.DeleteFunc(slices.Clone(scripts), func(s string) bool {
			loaded[s] = true
			return s == "app/open.js"
		})
		if len(scripts) == 0 {
			continue
		}
		if scripts[0] != "common.js" {
			t.Errorf("%s: loads %s before common.js, which the page scripts use", page, scripts[0])
		}
		for _, script := range scripts {
			loaded[script] = true
			body, ok := files[script]
			if !ok {
				t.Errorf("%s: loads %s, which is not in Files()", page, script)
				continue
			}
			for _, m := range lookupRe.FindAllStringSubmatch(body, -1) {
				lookups++
				if script == "common.js" {
					t.Errorf("common.js: looks up %q; it is shared by every page, so the page scripts pass it their elements", m[1])
				} else if !ids[m[1]] {
					t.Errorf("%s: looks up id %q, which is not in %s", script, m[1], page)
				}
			}
		}
	}
	if lookups == 0 {
		t.Fatal("found no id look-ups at all; the pattern is broken")
	}
	for name := range files {
		if strings.HasSuffix(name, ".js") && !loaded[name] && !strings.HasPrefix(name, "app/") && !strings.HasPrefix(name, "vendor/") {
			t.Errorf("%s: no page loads it", name)
		}
	}
	for name, body := range files {
		// Vendored files are upstream's, byte for byte (vendor/fetch.sh).
		if !strings.HasSuffix(name, ".js") || strings.HasPrefix(name, "vendor/") {
			continue
		}
		for _, bad := range jsForbidden {
			if strings.Contains(body, bad) {
				t.Errorf("%s: uses %s", name, bad)
			}
		}
	}
}

// TestScanPageIsStatic checks that the page a camera app opens calls no
// API: the PSK in its URL goes nowhere but, in a URL fragment, to the phone
// web app of the same browser (app/open.js), which the person then uses.
func TestScanPageIsStatic(t *testing.T) {
	files := readAll(t)
	doc := files[webclient.ScanPage]
	for _, bad := range []string{"/api/", "/ws/", "<form", "<img"} {
		if strings.Contains(doc, bad) {
			t.Errorf("scan.html contains %q", bad)
		}
	}
	scripts := scriptRe.FindAllStringSubmatch(doc, -1)
	if len(scripts) != 1 || !strings.Contains(scripts[0][1], `src="/static/app/open.js"`) {
		t.Errorf("scan.html must load exactly /static/app/open.js, has %q", scripts)
	}
	for _, bad := range []string{"fetch(", "WebSocket", "/api/", "/ws/", "XMLHttpRequest", "sendBeacon"} {
		if strings.Contains(files["app/open.js"], bad) {
			t.Errorf("app/open.js contains %q", bad)
		}
	}
	if !strings.Contains(files["app/open.js"], "'/app#open='") {
		t.Error("app/open.js must hand the code to the app in the URL fragment")
	}
	if !strings.Contains(doc, `name="referrer" content="no-referrer"`) {
		t.Error("scan.html must not send its URL (with the PSK) as a referrer")
	}
}

// TestContract pins the ids and attributes that browser tests and the
// server rely on.
func TestContract(t *testing.T) {
	files := readAll(t)
	want := map[string][]string{
		webclient.LoginPage: {
			`<main id="login"`, `data-state="connecting"`,
			`id="qr" alt="QR code to scan with the qrauth app"`,
			`id="signup-form"`, `id="signup-name"`, `id="signup-email" name="email" type="email"`,
			`id="status"`, `aria-live="polite"`,
			`<label for="signup-name">`, `<label for="signup-email">`,
			`data-state="waiting"`, `data-state="scanned"`, `data-state="signup"`, `data-state="approved"`,
			`data-state="denied"`, `data-state="expired"`, `data-state="error"`, `data-state="reconnecting"`,
			`src="/static/login.js"`,
		},
		webclient.AccountPage: {
			`<main id="account"`, `id="user-name"`, `id="user-email"`, `id="sessions"`, `id="devices"`,
			`id="link-phone"`, `id="link-qr"`, `id="link-qr-img"`, `id="logout"`,
			`id="profile-form"`, `<label for="profile-name">`, `<label for="profile-email">`,
			`src="/static/account.js"`, `id="account-extensions"`,
		},
	}
	for page, needles := range want {
		for _, s := range needles {
			if !strings.Contains(files[page], s) {
				t.Errorf("%s: missing %s", page, s)
			}
		}
	}
	for _, state := range []string{"waiting", "scanned", "signup", "approved", "denied", "expired", "error", "connecting", "reconnecting"} {
		if !strings.Contains(files[webclient.LoginPage], `<section data-state="`+state+`"`) {
			t.Errorf("index.html: no <section data-state=%q>", state)
		}
	}
}

// TestPhoneAppIDs checks that every element the phone web app's modules
// look up by id exists in its one page, app/index.html.
func TestPhoneAppIDs(t *testing.T) {
	files := readAll(t)
	idsOf := func(page string) map[string]bool {
		ids := map[string]bool{}
		for _, m := range idRe.FindAllStringSubmatch(files[page], -1) {
			ids[m[1]] = true
		}
		return ids
	}
	lookups := 0
	for name, body := range files {
		if !strings.HasPrefix(name, "app/") || !strings.HasSuffix(name, ".js") {
			continue
		}
		page := "app/index.html"
		if name == "app/open.js" {
			page = "scan.html" // the camera-app landing page that offers set-up
		}
		for _, m := range lookupRe.FindAllStringSubmatch(body, -1) {
			lookups++
			if !idsOf(page)[m[1]] {
				t.Errorf("%s: looks up id %q, which is not in %s", name, m[1], page)
			}
		}
	}
	if lookups == 0 {
		t.Fatal("found no id look-ups in the phone web app; the pattern is broken")
	}
}
