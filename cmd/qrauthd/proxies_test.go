package main

import (
	"strings"
	"testing"
)

// TestTrustProxyRemoved: -trust-proxy believed any private peer; given as
// a flag (anywhere) or as its variable it now stops the start with one
// line that names its replacement.
func TestTrustProxyRemoved(t *testing.T) {
	for _, args := range [][]string{{"-trust-proxy"}, {"--trust-proxy=false"}, {"-origin", "https://a.example", "-trust-proxy"}} {
		code, out, errOut := runCLI(t, args...)
		if code != 2 || out != "" || strings.Count(errOut, "\n") != 1 || !strings.Contains(errOut, "-trusted-proxies") ||
			!strings.Contains(errOut, "-trust-proxy was removed") {
			t.Errorf("%v: exit %d, stdout %q, stderr %q", args, code, out, errOut)
		}
	}
	t.Setenv("QRAUTH_TRUST_PROXY", "true")
	code, _, errOut := runCLI(t, "-addr", "127.0.0.1:0")
	if code != 2 || !strings.Contains(errOut, "QRAUTH_TRUST_PROXY") || !strings.Contains(errOut, "-trusted-proxies") {
		t.Errorf("environment: exit %d, stderr %q", code, errOut)
	}
}

// TestBadTrustedProxies: a range that does not parse is refused at start,
// naming the flag and the bad item, and a good list reaches the server.
func TestBadTrustedProxies(t *testing.T) {
	code, _, errOut := runCLI(t, "-trusted-proxies", "10.0.0.0/8,10.0.0.300/24")
	if code != 2 || !strings.Contains(errOut, "-trusted-proxies") || !strings.Contains(errOut, `"10.0.0.300/24"`) {
		t.Errorf("exit %d, stderr %q", code, errOut)
	}
	t.Setenv("QRAUTH_TRUSTED_PROXIES", "nope")
	if code, _, errOut := runCLI(t); code != 2 || !strings.Contains(errOut, "QRAUTH_TRUSTED_PROXIES") {
		t.Errorf("environment: exit %d, stderr %q", code, errOut)
	}
	m := NewMain()
	if err := m.ParseFlags([]string{"-trusted-proxies", "10.0.0.0/24, ::1"}, nil); err != nil {
		t.Fatal(err)
	}
	if got := m.Config.TrustedProxies; len(got) != 2 || got[0].String() != "10.0.0.0/24" || got[1].String() != "::1/128" {
		t.Errorf("parsed %v", got)
	}
}
