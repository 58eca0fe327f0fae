package main

import (
	"flag"
	"strings"

	"github.com/qrauth/qrauth/server/forwardauth"
)

// forwardAuthFlags adds the cookie domain and the forward-auth flags to fs.
// Forward auth is on when it has domains.
func (m *Main) forwardAuthFlags(fs *flag.FlagSet, e *flagEnv) {
	fs.StringVar(&m.Config.CookieDomain, "cookie-domain", env("COOKIE_DOMAIN", ""),
		"put the session cookie on this domain, e.g. example.com, so one sign-in covers every host below it; "+
			"default: host-only (QRAUTH_COOKIE_DOMAIN)")
	c := &m.ForwardAuth
	domains := func(s string) error {
		d, err := forwardauth.ParseDomains(s)
		c.Domains = d
		return err
	}
	if v := env("FORWARD_AUTH_DOMAINS", ""); v != "" {
		if err := domains(v); err != nil {
			e.fail("FORWARD_AUTH_DOMAINS", err)
		}
	}
	fs.Func("forward-auth-domains", "answer reverse proxies' forward-auth requests for the hosts of these comma-separated domains, "+
		"and return browsers only there after sign-in; each within -cookie-domain (QRAUTH_FORWARD_AUTH_DOMAINS)", domains)
	rule := func(s string) error {
		r, err := forwardauth.ParseRule(s)
		if err == nil {
			c.Rules = append(c.Rules, r)
		}
		return err
	}
	for _, v := range strings.Fields(env("FORWARD_AUTH_RULES", "")) {
		if err := rule(v); err != nil {
			e.fail("FORWARD_AUTH_RULES", err)
		}
	}
	rulesSet := false
	fs.Func("forward-auth-rule", "HOST=ROLE[,ROLE…]: only users with one of the roles pass to HOST (or *.DOMAIN); repeatable; "+
		"hosts without a rule admit every signed-in user (QRAUTH_FORWARD_AUTH_RULES, space-separated)", func(s string) error {
		if !rulesSet {
			// Flags win over the environment: the first flag drops its rules.
			rulesSet, c.Rules = true, nil
		}
		return rule(s)
	})
}
