package webclient_test

import (
	"strings"
	"testing"
)

// TestOfflinePagesMatchScripts checks that the offline flow's pages load
// their scripts and have what those and the browser tests rely on.
// TestScriptsMatchPages checks the ids the scripts look up.
func TestOfflinePagesMatchScripts(t *testing.T) {
	files := readAll(t)
	for script, page := range map[string]string{"offline.js": "offline.html", "approve.js": "approve.html"} {
		if !strings.Contains(files[page], `src="/static/`+script+`"`) {
			t.Errorf("%s does not load %s", page, script)
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
