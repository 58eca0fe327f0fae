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
