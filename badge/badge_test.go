package badge_test

import (
	"bytes"
	"crypto/rand"
	"strings"
	"testing"
	"time"

	"github.com/qrauth/qrauth"
	"github.com/qrauth/qrauth/badge"
)

func TestBadgeID(t *testing.T) {
	id, err := badge.NewID(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	raw, ok := id.Bytes()
	if !ok || len(raw) != 16 || badge.IDFromBytes(raw) != id || !strings.HasPrefix(string(id), "b_") {
		t.Fatalf("id %q bytes %x %v", id, raw, ok)
	}
	for _, bad := range []badge.ID{"", "b_", "x_" + id[2:], id + "A", id[:len(id)-1], badge.ID("b_" + strings.Repeat("*", 22))} {
		if _, ok := bad.Bytes(); ok {
			t.Errorf("%q accepted", bad)
		}
	}
}

func TestParsePayload(t *testing.T) {
	id := badge.IDFromBytes(bytes.Repeat([]byte{1}, 16))
	ins := badge.Payload{Kind: badge.Insecure, ID: id, Auth: bytes.Repeat([]byte{2}, 16)}
	sec := badge.Payload{Kind: badge.Secure, ID: id, Auth: bytes.Repeat([]byte{3}, 44)}
	for _, p := range []badge.Payload{ins, sec} {
		got, err := badge.ParsePayload(p.String())
		if err != nil || got.Kind != p.Kind || got.ID != p.ID || !bytes.Equal(got.Auth, p.Auth) {
			t.Fatalf("round trip of %s: %+v %v", p.String(), got, err)
		}
	}
	if n := len(sec.String()); n > 90 {
		t.Fatalf("secure payload of %d characters: keep it small for the QR code", n)
	}
	for text, reason := range map[string]string{
		"":                                       "not_a_badge",
		"https://example.com/q/abc":              "not_a_badge",
		"qrb1i." + ins.String()[6:]:              "not_a_badge", // prefixes are exact
		strings.Repeat("Q", 300):                 "not_a_badge",
		ins.String() + "AA":                      "badge_invalid",
		ins.String()[:len(ins.String())-2]:       "badge_invalid",
		badge.PrefixSecure + "AAAA":              "badge_invalid",
		badge.PrefixInsecure + "!!!!":            "badge_invalid",
		ins.String()[:len(ins.String())-1] + "B": "badge_invalid", // non-canonical trailing bits
	} {
		_, err := badge.ParsePayload(text)
		if qrauth.ErrorReason(err) != reason {
			t.Errorf("%.40q: %v, want %s", text, err, reason)
		}
	}
}

func TestBadgeRecord(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	b := &badge.Badge{ExpiresAt: now.Add(time.Hour)}
	if !b.Active(now) || b.Expired(now) || !b.Expired(now.Add(time.Hour)) {
		t.Fatal("expiry")
	}
	b.ExpiresAt = time.Time{}
	if b.Expired(now.AddDate(100, 0, 0)) {
		t.Fatal("a badge without expiry expired")
	}
	b.RevokedAt = now
	if b.Active(now) || !b.Revoked() {
		t.Fatal("revocation")
	}
	if bytes.Equal(badge.CredentialFingerprint([]byte("a")), badge.CredentialFingerprint([]byte("b"))) {
		t.Fatal("fingerprints collide")
	}
}

func TestCheckPassword(t *testing.T) {
	for pw, reason := range map[string]string{
		"correct horse":                    "",
		"ünïcødé!":                         "",
		"        ":                         "", // taken as typed
		"short":                            "password_too_short",
		"ab\x00cdefgh":                     "invalid_password",
		"\xff\xfe\xfd\xfc\xfb\xfa\xf9\xf8": "invalid_password",
		strings.Repeat("x", 1025):          "password_too_long",
	} {
		if got := qrauth.ErrorReason(badge.CheckPassword(pw)); got != reason {
			t.Errorf("%.20q: %q, want %q", pw, got, reason)
		}
	}
}

func FuzzParsePayload(f *testing.F) {
	id := badge.IDFromBytes(bytes.Repeat([]byte{9}, 16))
	f.Add((&badge.Payload{Kind: badge.Insecure, ID: id, Auth: make([]byte, 16)}).String())
	f.Add((&badge.Payload{Kind: badge.Secure, ID: id, Auth: make([]byte, 44)}).String())
	f.Add("QRB1S.")
	f.Add("https://example.com")
	f.Fuzz(func(t *testing.T, s string) {
		p, err := badge.ParsePayload(s)
		if err != nil {
			if r := qrauth.ErrorReason(err); r != "not_a_badge" && r != "badge_invalid" {
				t.Fatalf("reason %s", r)
			}
			return
		}
		// Anything accepted is canonical: it prints back to itself.
		if p.String() != s {
			t.Fatalf("%q parses to %+v, which prints as %q", s, p, p.String())
		}
		if _, ok := p.ID.Bytes(); !ok {
			t.Fatalf("malformed id %q", p.ID)
		}
	})
}
