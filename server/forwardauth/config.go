package forwardauth

import (
	"fmt"
	"net"
	"slices"
	"strings"

	"github.com/qrauth/qrauth"
)

// Config configures the flow. Its zero value is not usable: forward auth
// protects the hosts of at least one domain.
type Config struct {
	// Domains are the domains whose hosts the proxy may ask about and to
	// whose addresses a browser may be sent back after signing in:
	// "example.com" covers example.com and every host below it. Each must
	// be within the session cookie's domain (server.Config.CookieDomain),
	// or the session would never reach the protected hosts.
	Domains []string
	// Rules say which roles may pass per host. A host with no rule admits
	// every signed-in user.
	Rules []Rule
}

// A Rule admits, on Host, the users holding any of Roles.
type Rule struct {
	// Host is a host name ("app.example.com") or every host below a domain
	// ("*.example.com", which does not cover example.com itself).
	Host  string
	Roles []qrauth.Role
}

// ParseRule reads a rule written HOST=ROLE[,ROLE…], as the flag
// -forward-auth-rule takes it: "app.example.com=admin,helpdesk".
func ParseRule(s string) (Rule, error) {
	host, roles, ok := strings.Cut(s, "=")
	if !ok || strings.TrimSpace(roles) == "" {
		return Rule{}, fmt.Errorf("rule %q: want HOST=ROLE[,ROLE…], such as app.example.com=admin,helpdesk", s)
	}
	r := Rule{Host: normHost(host)}
	name, wild := strings.CutPrefix(r.Host, "*.")
	if !validHostName(name) || (!wild && strings.Contains(r.Host, "*")) {
		return Rule{}, fmt.Errorf("rule %q: %q is not a host name (app.example.com) or *.DOMAIN", s, host)
	}
	for _, x := range strings.Split(roles, ",") {
		role := qrauth.Role(strings.TrimSpace(x))
		if !qrauth.ValidRole(role) {
			return Rule{}, fmt.Errorf("rule %q: unknown role %q (roles: %s)", s, role, roleList(qrauth.Roles))
		}
		if !slices.Contains(r.Roles, role) {
			r.Roles = append(r.Roles, role)
		}
	}
	return r, nil
}

func roleList(rs []qrauth.Role) string {
	s := make([]string, len(rs))
	for i, r := range rs {
		s[i] = string(r)
	}
	return strings.Join(s, ", ")
}

// ParseDomains reads a comma-separated list of domains, as the flag
// -forward-auth-domains takes it.
func ParseDomains(s string) ([]string, error) {
	var out []string
	for _, d := range strings.Split(s, ",") {
		d = normHost(d)
		if d == "" {
			continue
		}
		if !validHostName(d) {
			return nil, fmt.Errorf("forward-auth domain %q: want a domain name such as example.com", d)
		}
		if !slices.Contains(out, d) {
			out = append(out, d)
		}
	}
	return out, nil
}

// normHost writes a host name the one way it is compared: lower case,
// without surrounding spaces, leading or trailing dots.
func normHost(h string) string {
	return strings.Trim(strings.ToLower(strings.TrimSpace(h)), ".")
}

// validHostName reports whether h is a DNS name of letters, digits and
// hyphens (no address, port, scheme or path).
func validHostName(h string) bool {
	if h == "" || len(h) > 253 || net.ParseIP(h) != nil {
		return false
	}
	for _, label := range strings.Split(h, ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for _, c := range label {
			if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-') {
				return false
			}
		}
	}
	return true
}

// within reports whether host is domain or below it.
func within(host, domain string) bool {
	return host == domain || strings.HasSuffix(host, "."+domain)
}

// check validates c against the cookie domain (cd; "" is a host-only
// cookie on originHost) and returns it normalised.
func (c Config) check(cd, originHost string) (Config, error) {
	if len(c.Domains) == 0 {
		return c, fmt.Errorf("no domains: give -forward-auth-domains, such as example.com")
	}
	var doms []string
	for _, d := range c.Domains {
		d = normHost(d)
		if !validHostName(d) {
			return c, fmt.Errorf("domain %q: want a domain name such as example.com", d)
		}
		switch {
		case cd != "" && !within(d, cd):
			return c, fmt.Errorf("domain %s is outside the session cookie's domain %s: the session would never reach its hosts", d, cd)
		case cd == "" && d != originHost:
			return c, fmt.Errorf("domain %s: the session cookie is host-only on %s, so it never reaches other hosts; "+
				"set -cookie-domain to a domain containing both, such as %s", d, originHost, suggestParent(d, originHost))
		}
		doms = append(doms, d)
	}
	c.Domains = doms
	for i, r := range c.Rules {
		name := strings.TrimPrefix(r.Host, "*.")
		if !slices.ContainsFunc(doms, func(d string) bool { return within(name, d) }) {
			return c, fmt.Errorf("rule for %s: the host is in none of the forward-auth domains (%s)", r.Host, strings.Join(doms, ", "))
		}
		if len(r.Roles) == 0 {
			return c, fmt.Errorf("rule for %s: names no role", r.Host)
		}
		c.Rules[i].Host = normHost(r.Host)
	}
	return c, nil
}

// suggestParent names the longest common parent of two host names, for a
// message.
func suggestParent(a, b string) string {
	x, y := strings.Split(a, "."), strings.Split(b, ".")
	var common []string
	for i := 1; i <= len(x) && i <= len(y) && x[len(x)-i] == y[len(y)-i]; i++ {
		common = append([]string{x[len(x)-i]}, common...)
	}
	if len(common) < 2 {
		return "example.com"
	}
	return strings.Join(common, ".")
}

// rule returns the rule that governs host: an exact rule wins over a
// wildcard, and a longer wildcard over a shorter one.
func (c Config) rule(host string) (Rule, bool) {
	var best Rule
	found := false
	for _, r := range c.Rules {
		if r.Host == host {
			return r, true
		}
		if d, ok := strings.CutPrefix(r.Host, "*."); ok && strings.HasSuffix(host, "."+d) && (!found || len(r.Host) > len(best.Host)) {
			best, found = r, true
		}
	}
	return best, found
}

// protected reports whether host is within one of the domains.
func (c Config) protected(host string) bool {
	return slices.ContainsFunc(c.Domains, func(d string) bool { return within(host, d) })
}
