package appclient

import (
	"net"
	"net/url"
	"strings"

	"github.com/qrauth/qrauth"
)

// normalizeOrigin returns the canonical form of a web origin
// (scheme://host[:port], lowercase, default port dropped) so that two
// spellings of one origin compare equal. It refuses anything that is not a
// bare http(s) origin.
func normalizeOrigin(s string) (string, bool) {
	u, err := url.Parse(s)
	if err != nil || u.Opaque != "" || u.User != nil || u.RawQuery != "" || u.Fragment != "" ||
		(u.Path != "" && u.Path != "/") || u.Host == "" {
		return "", false
	}
	return canonicalOrigin(u)
}

// canonicalOrigin returns the origin of u, which must be http or https.
func canonicalOrigin(u *url.URL) (string, bool) {
	scheme := strings.ToLower(u.Scheme)
	if scheme != "http" && scheme != "https" {
		return "", false
	}
	host := strings.ToLower(u.Hostname())
	if host == "" {
		return "", false
	}
	port := u.Port()
	if port == "" && strings.HasSuffix(u.Host, ":") {
		return "", false
	}
	if (scheme == "http" && port == "80") || (scheme == "https" && port == "443") {
		port = ""
	}
	if port != "" {
		host = net.JoinHostPort(host, port)
	} else if strings.Contains(host, ":") {
		host = "[" + host + "]" // IPv6 literal
	}
	return scheme + "://" + host, true
}

// sameOrigin reports whether a and b are the same valid origin.
func sameOrigin(a, b string) bool {
	na, ok := normalizeOrigin(a)
	if !ok {
		return false
	}
	nb, ok := normalizeOrigin(b)
	return ok && na == nb
}

// parseCodeURL is the check of every scanned code that carries a URL of
// the server, ORIGIN + path + TOKEN, and returns the token. The origin is
// compared first, so that a code shown by another site (which could be
// relaying someone else's sign-in or transaction) is named as such:
// EINVALID "foreign_origin". Anything else that is not exactly that shape
// (no query, fragment, user info or escapes; a base64url token of 22 to 64
// characters) is notOurs.
func parseCodeURL(origin, s, path string, notOurs error) (string, error) {
	want, ok := normalizeOrigin(origin)
	if !ok {
		return "", qrauth.Errorf(qrauth.EINVALID, "invalid_origin", "The configured server origin %q is not valid; run init again.", origin)
	}
	s = strings.TrimSpace(s)
	u, err := url.Parse(s)
	if err != nil || u.Opaque != "" {
		return "", notOurs
	}
	got, ok := canonicalOrigin(u)
	if !ok {
		return "", notOurs
	}
	if got != want {
		return "", qrauth.Errorf(qrauth.EINVALID, "foreign_origin",
			"This code belongs to %s, not to your server %s. Never approve a code shown by another site.", got, want)
	}
	if u.User != nil || u.RawPath != "" || u.RawQuery != "" || u.ForceQuery || u.Fragment != "" || strings.Contains(s, "#") ||
		!strings.HasPrefix(u.Path, path) {
		return "", notOurs
	}
	tok := u.Path[len(path):]
	if !qrauth.ValidToken(tok, minTokenLen, maxTokenLen) {
		return "", notOurs
	}
	return tok, nil
}

// normalizeServer checks the base URL of a qrauth server as a person typed
// it and returns it without a trailing slash. A path is allowed, for a
// server mounted below a prefix.
func normalizeServer(s string) (string, error) {
	s = strings.TrimSpace(s)
	u, err := url.Parse(s)
	if err != nil || u.Opaque != "" || u.User != nil || u.RawQuery != "" || u.Fragment != "" {
		return "", qrauth.Errorf(qrauth.EINVALID, "invalid_server", "The server must be an http or https URL, such as https://login.example.com.")
	}
	if _, ok := canonicalOrigin(u); !ok {
		return "", qrauth.Errorf(qrauth.EINVALID, "invalid_server", "The server must be an http or https URL, such as https://login.example.com.")
	}
	return strings.TrimRight(u.String(), "/"), nil
}
