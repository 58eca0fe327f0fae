package webclient_test

import (
	"regexp"
	"strings"
	"testing"

	"github.com/qrauth/qrauth/webclient"
)

var featureRe = regexp.MustCompile(`data-feature="([a-z]+)"`)

// TestEveryPageLinksFavicon: the browser tab of every page shows the icon.
func TestEveryPageLinksFavicon(t *testing.T) {
	files := readAll(t)
	if !strings.HasPrefix(files[webclient.Favicon], "<svg") {
		t.Fatalf("%s is not an SVG", webclient.Favicon)
	}
	for _, name := range htmlFiles(files) {
		if !strings.Contains(files[name], `<link rel="icon" href="/static/favicon.svg" type="image/svg+xml">`) {
			t.Errorf("%s does not link the favicon", name)
		}
	}
}

// TestStaticLandingPages: the pages a camera app or a wrong address lands
// on call no API, and each says what it is. The transaction page runs one
// script, the phone web app's hand-over (app/open.js), which only looks
// for a key in this browser and moves the code to /app in the fragment.
func TestStaticLandingPages(t *testing.T) {
	files := readAll(t)
	for page, needles := range map[string][]string{
		webclient.TransactionScanPage: {"transaction approval", `name="referrer" content="no-referrer"`},
		webclient.NotFoundPage:        {"<h1>Page not found</h1>", `href="/"`},
	} {
		doc := files[page]
		if doc == "" {
			t.Fatalf("%s missing", page)
		}
		if page == webclient.TransactionScanPage {
			doc = strings.Replace(doc, `<script type="module" src="/static/app/open.js"></script>`, "", 1)
		}
		for _, bad := range []string{"<script", "/api/", "/ws/", "<form", "sign-in code"} {
			if strings.Contains(doc, bad) {
				t.Errorf("%s contains %q", page, bad)
			}
		}
		for _, s := range needles {
			if !strings.Contains(doc, s) {
				t.Errorf("%s lacks %q", page, s)
			}
		}
	}
}

// TestHandOverCallsNothing: the hand-over script of the camera pages
// contacts no server (the code stays in this browser until the app, with
// the person's consent, answers it).
func TestHandOverCallsNothing(t *testing.T) {
	doc := readAll(t)["app/open.js"]
	if doc == "" {
		t.Fatal("app/open.js missing")
	}
	for _, bad := range []string{"fetch(", "XMLHttpRequest", "WebSocket", "/api/", "/ws/", "sendBeacon"} {
		if strings.Contains(doc, bad) {
			t.Errorf("app/open.js contains %q", bad)
		}
	}
}

// TestFeatureLinks: the server removes the lines of data-feature elements
// for flows that are off, so each such element must sit on one line of its
// own, and the nav that holds them is marked data-features.
func TestFeatureLinks(t *testing.T) {
	files := readAll(t)
	seen := map[string]bool{}
	for name, doc := range files {
		for _, line := range strings.Split(doc, "\n") {
			m := featureRe.FindStringSubmatch(line)
			if m == nil {
				continue
			}
			seen[m[1]] = true
			tag := strings.Fields(strings.TrimSpace(line))[0][1:]
			if !strings.HasSuffix(strings.TrimSpace(line), "</"+tag+">") {
				t.Errorf("%s: data-feature element not on one line: %q", name, line)
			}
		}
	}
	if !seen["badge"] || !seen["offline"] {
		t.Errorf("feature links found: %v", seen)
	}
	if !strings.Contains(files[webclient.LoginPage], `<nav id="other-ways" class="other-ways" aria-label="Other ways to sign in" data-features>`) {
		t.Error("index.html: the other ways nav is not marked data-features")
	}
}
