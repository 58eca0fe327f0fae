package server_test

import (
	"net/netip"
	"testing"
	"time"

	"golang.org/x/time/rate"
)

// TestForwardedForOnlyFromTrustedProxies drives the per-address limit on
// typed codes over real loopback requests: a client that is not a listed
// proxy cannot escape the limit by writing a different X-Forwarded-For on
// each request, while behind a listed proxy each forwarded address has a
// budget of its own.
func TestForwardedForOnlyFromTrustedProxies(t *testing.T) {
	limits := func(c *testConfig) {
		c.CodeRate, c.CodeBurst = rate.Every(time.Hour), 2
		c.CodeGlobalRate, c.CodeGlobalBurst = rate.Inf, 100
	}
	t.Run("untrusted peer", func(t *testing.T) {
		// Loopback is private, and was trusted before: now only a listed
		// range is.
		srv := MustOpenServer(t, func(c *testConfig) {
			limits(c)
			c.TrustedProxies = []netip.Prefix{netip.MustParsePrefix("192.0.2.0/24")}
		})
		wrong := otherCode(newBrowser(t, srv).open().UserCode)
		for _, ip := range []string{"203.0.113.1", "203.0.113.2"} {
			if st, reason, _ := postCode(t, srv, ip, wrong); st != 404 {
				t.Fatalf("wrong code from %s: %d %s", ip, st, reason)
			}
		}
		if st, reason, _ := postCode(t, srv, "203.0.113.3", wrong); st != 429 || reason != "rate_limited" {
			t.Fatalf("forged X-Forwarded-For escaped the limit: %d %s", st, reason)
		}
	})
	t.Run("trusted peer", func(t *testing.T) {
		srv := MustOpenServer(t, func(c *testConfig) {
			limits(c)
			c.TrustedProxies = []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}
		})
		wrong := otherCode(newBrowser(t, srv).open().UserCode)
		// The client wrote 198.51.100.1 itself; the proxy appended the
		// real address. Each real address gets its own two guesses.
		for _, xff := range []string{"198.51.100.1, 203.0.113.1", "198.51.100.1, 203.0.113.1", "198.51.100.1, 203.0.113.2"} {
			if st, reason, _ := postCode(t, srv, xff, wrong); st != 404 {
				t.Fatalf("wrong code via %q: %d %s", xff, st, reason)
			}
		}
		if st, reason, _ := postCode(t, srv, "198.51.100.7, 203.0.113.1", wrong); st != 429 || reason != "rate_limited" {
			t.Fatalf("third guess of 203.0.113.1: %d %s", st, reason)
		}
	})
}
