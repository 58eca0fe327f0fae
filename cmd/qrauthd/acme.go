package main

import (
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/http"
	"path/filepath"
	"strings"

	"golang.org/x/crypto/acme"
	"golang.org/x/crypto/acme/autocert"
	"golang.org/x/net/idna"
)

// ACME is the -acme-* set-up: certificates obtained and renewed by
// golang.org/x/crypto/acme/autocert from Let's Encrypt or another ACME CA.
type ACME struct {
	// Domains are the names to get certificates for; none means ACME is
	// off.
	Domains []string
	// Cache is the directory of the account key and certificates; empty
	// means acme/ next to the database.
	Cache string
	// Directory is the CA's directory URL.
	Directory string
	// Email is given to the CA for expiry notices; may be empty.
	Email string
	// HTTPClient talks to the CA (Go API only: tests trust their test CA's
	// root with it); nil means the system's roots.
	HTTPClient *http.Client
}

// acmeFlags adds the -acme-* flags to fs.
func (m *Main) acmeFlags(fs *flag.FlagSet) {
	fs.Func("acme-domain", "get and renew certificates for these comma-separated names from an ACME CA (Let's Encrypt) and serve HTTPS; "+
		"port 443 of each name must reach -addr, as the CA checks with TLS-ALPN-01; not with -tls-cert (QRAUTH_ACME_DOMAIN)", m.setACMEDomains)
	fs.StringVar(&m.ACME.Cache, "acme-cache", env("ACME_CACHE", ""), "directory of the ACME account key and certificates (default: acme/ next to -data); back it up (QRAUTH_ACME_CACHE)")
	fs.StringVar(&m.ACME.Directory, "acme-directory", env("ACME_DIRECTORY", acme.LetsEncryptURL), "the ACME CA's directory URL (QRAUTH_ACME_DIRECTORY)")
	fs.StringVar(&m.ACME.Email, "acme-email", env("ACME_EMAIL", ""), "contact address given to the ACME CA for expiry and policy notices (QRAUTH_ACME_EMAIL)")
}

// setACMEDomains reads -acme-domain: names as in a certificate, lower
// case, without port or wildcard (TLS-ALPN-01 cannot prove a wildcard).
func (m *Main) setACMEDomains(list string) error {
	m.ACME.Domains = nil
	for _, d := range strings.Split(list, ",") {
		d = strings.TrimSpace(d)
		if d == "" {
			continue
		}
		name, err := idna.Lookup.ToASCII(d)
		if err != nil || strings.ContainsAny(name, ":/*") || net.ParseIP(name) != nil || !strings.Contains(name, ".") {
			return fmt.Errorf("%q is not a domain name such as login.example.com", d)
		}
		m.ACME.Domains = append(m.ACME.Domains, name)
	}
	return nil
}

// checkACME is afterParse's part for ACME.
func (m *Main) checkACME() error {
	if len(m.ACME.Domains) == 0 {
		return nil
	}
	if m.TLSCert != "" {
		return errors.New("give -acme-domain or -tls-cert/-tls-key, not both")
	}
	if !strings.HasPrefix(m.ACME.Directory, "https://") {
		return fmt.Errorf("-acme-directory %q: want an https:// URL", m.ACME.Directory)
	}
	return nil
}

// acmeTLS returns the TLS set-up of ACME: autocert answers TLS-ALPN-01
// challenges on the same listener (its NextProtos carry acme-tls/1), so no
// port 80 listener is needed, and refuses names outside -acme-domain
// before asking the CA for anything. It also fills in the default origin
// (acmeOrigin).
func (m *Main) acmeTLS() *tls.Config {
	cache := m.ACME.Cache
	if cache == "" {
		cache = defaultACMECache(m.DataPath)
	}
	mgr := &autocert.Manager{
		// Giving -acme-domain is accepting the CA's terms (README says so).
		Prompt:     autocert.AcceptTOS,
		Cache:      autocert.DirCache(cache), // made with mode 0700
		HostPolicy: autocert.HostWhitelist(m.ACME.Domains...),
		Email:      m.ACME.Email,
		Client:     &acme.Client{DirectoryURL: m.ACME.Directory, HTTPClient: m.ACME.HTTPClient, UserAgent: "qrauthd"},
	}
	if m.Config.Origin == "" {
		m.Config.Origin = acmeOrigin(m.ACME.Domains[0], m.Config.Addr)
	}
	return mgr.TLSConfig()
}

// acmeOrigin is the origin when -origin is not given: the first domain,
// with the port of addr unless it is 443. With port 0 (tests) it is empty,
// for the server to derive from the real listener.
func acmeOrigin(domain, addr string) string {
	_, port, err := net.SplitHostPort(addr)
	switch {
	case err != nil || port == "0":
		return ""
	case port == "443":
		return "https://" + domain
	}
	return "https://" + net.JoinHostPort(domain, port)
}

// defaultACMECache is where the ACME files go without -acme-cache: next to
// the database, so that one backup of the data directory holds both.
func defaultACMECache(dataPath string) string {
	return filepath.Join(filepath.Dir(dataPath), "acme")
}
