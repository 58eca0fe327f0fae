package webclient_test

import (
	"strings"
	"testing"
)

// TestBadgePage checks that the badge page loads its script and style and
// has what they and the browser tests rely on, and that the login page links
// to it. TestScriptsMatchPages checks the ids badge.js looks up.
func TestBadgePage(t *testing.T) {
	files := readAll(t)
	page, script := files["badge.html"], files["badge.js"]
	if page == "" || script == "" || files["badge.css"] == "" {
		t.Fatal("badge.html, badge.js or badge.css missing")
	}
	for _, s := range []string{`src="/static/badge.js"`, `href="/static/badge.css"`, `<main id="badge"`,
		`<video id="badge-video"`, `id="badge-file" class="visually-hidden" type="file" accept="image/*"`,
		`<label for="badge-file"`, `<label for="badge-password">`, `autocomplete="current-password"`} {
		if !strings.Contains(page, s) {
			t.Errorf("badge.html: missing %s", s)
		}
	}
	for _, state := range []string{"loading", "off", "start", "camera", "nocamera", "checking", "second", "done", "error"} {
		if !strings.Contains(page, `<section data-state="`+state+`"`) {
			t.Errorf("badge.html: no <section data-state=%q>", state)
		}
	}
	if !strings.Contains(files["index.html"], `<a href="/badge"`) {
		t.Error("index.html does not link to /badge")
	}
}
