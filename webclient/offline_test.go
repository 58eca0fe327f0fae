package webclient_test

import (
	"strings"
	"testing"
)

// TestOfflinePagesMatchScripts checks the offline flow's pages like
// TestScriptsMatchPages checks the core's: every id a script looks up
// exists in its page, and the page loads the script.
func TestOfflinePagesMatchScripts(t *testing.T) {
	files := readAll(t)
	for script, page := range map[string]string{"offline.js": "offline.html", "approve.js": "approve.html"} {
		if !strings.Contains(files[page], `src="/static/`+script+`"`) {
			t.Errorf("%s does not load %s", page, script)
		}
		ids := map[string]bool{}
		for _, m := range idRe.FindAllStringSubmatch(files[page], -1) {
			ids[m[1]] = true
		}
		n := 0
		for _, m := range byIDRe.FindAllStringSubmatch(files[script], -1) {
			n++
			if !ids[m[1]] {
				t.Errorf("%s: byId(%q) is not an id in %s", script, m[1], page)
			}
		}
		if n == 0 {
			t.Errorf("%s: found no byId calls; the pattern is broken", script)
		}
	}
	// The contract the Chromium test and the login page rely on.
	for page, needles := range map[string][]string{
		"offline.html": {`<main id="offline"`, `data-state="identify"`, `id="identifier"`, `id="offline-qr"`, `id="otp"`,
			`autocomplete="one-time-code"`, `<label for="identifier">`, `<label for="otp">`, `href="/static/offline.css"`},
		"approve.html": {`<main id="approve"`, `id="tx-text"`, `id="tx-qr"`, `id="tx-otp"`, `<label for="tx-otp">`,
			`name="referrer" content="no-referrer"`},
		"index.html": {`<a href="/offline"`},
	} {
		for _, s := range needles {
			if !strings.Contains(files[page], s) {
				t.Errorf("%s: missing %s", page, s)
			}
		}
	}
}
