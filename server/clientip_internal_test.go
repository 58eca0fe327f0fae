package server

import (
	"net/http/httptest"
	"strings"
	"testing"
)

// TestClientIPExtractor pins the semantics of echo's X-Forwarded-For walk
// as clientIPExtractor configures it: only the listed ranges are trusted
// (not loopback or private addresses), the peer must be one of them for
// the header to count at all, and the right-most address that is not
// itself trusted is the client.
func TestClientIPExtractor(t *testing.T) {
	trusted, err := ParseTrustedProxies("10.0.0.0/24, 192.0.2.7,2001:db8::/32")
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name, peer, xff, want string
		trusted               bool
	}{
		{"no proxies: header ignored", "198.51.100.1:4000", "203.0.113.9", "198.51.100.1", false},
		{"untrusted peer forges", "198.51.100.1:4000", "203.0.113.9", "198.51.100.1", true},
		// Before: any private or loopback peer was believed.
		{"private but unlisted peer forges", "10.0.1.5:4000", "203.0.113.9", "10.0.1.5", true},
		{"loopback peer is not trusted unless listed", "127.0.0.1:4000", "203.0.113.9", "127.0.0.1", true},
		{"trusted peer, one hop", "10.0.0.2:4000", "203.0.113.9", "203.0.113.9", true},
		{"client's own forged entry is left of the real one", "10.0.0.2:4000", "1.2.3.4, 203.0.113.9", "203.0.113.9", true},
		{"chain of trusted proxies", "10.0.0.2:4000", "1.2.3.4, 203.0.113.9, 192.0.2.7, 10.0.0.3", "203.0.113.9", true},
		{"two headers are one list", "10.0.0.2:4000", "1.2.3.4\n203.0.113.9", "203.0.113.9", true},
		{"IPv6 through an IPv6 proxy", "[2001:db8::1]:4000", "2001:db8:1::5, 2a00::9", "2a00::9", true},
		{"garbage in the header: the peer", "10.0.0.2:4000", "203.0.113.9, nonsense", "10.0.0.2", true},
		{"no header: the peer", "10.0.0.2:4000", "", "10.0.0.2", true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			req := httptest.NewRequest("GET", "/", nil)
			req.RemoteAddr = c.peer
			for _, h := range strings.Split(c.xff, "\n") {
				if h != "" {
					req.Header.Add("X-Forwarded-For", h)
				}
			}
			var list = trusted
			if !c.trusted {
				list = nil
			}
			if got := clientIPExtractor(list)(req); got != c.want {
				t.Errorf("peer %s, X-Forwarded-For %q: got %s, want %s", c.peer, c.xff, got, c.want)
			}
		})
	}
}

func TestParseTrustedProxies(t *testing.T) {
	got, err := ParseTrustedProxies("10.1.2.3/8, ::1 ,::ffff:192.0.2.0/120,::ffff:192.0.2.9")
	if err != nil || len(got) != 4 || got[0].String() != "10.0.0.0/8" || got[1].String() != "::1/128" ||
		got[2].String() != "192.0.2.0/24" || got[3].String() != "192.0.2.9/32" {
		t.Fatalf("%v %v", got, err)
	}
	if got, err := ParseTrustedProxies(""); err != nil || got != nil {
		t.Fatalf("empty: %v %v", got, err)
	}
	for _, bad := range []string{"10.0.0.0/33", "10.0.0.300/8", "proxy.example.com", "10.0.0.0/8;", "fe80::1%eth0"} {
		if _, err := ParseTrustedProxies(bad); err == nil || !strings.Contains(err.Error(), "address") {
			t.Errorf("%q: %v", bad, err)
		}
	}
}
