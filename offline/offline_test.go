package offline_test

import (
	"bytes"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/qrauth/qrauth"
	"github.com/qrauth/qrauth/offline"
)

func TestVerificationDataRoundTrip(t *testing.T) {
	dev := qrauth.DeviceIDFromKey(make([]byte, 32))
	for _, ctx := range []string{"", "Sign in at login.example.com", strings.Repeat("€", 66), strings.Repeat("é", 99) + "a",
		strings.Repeat("a", 200), "Pay CHF 100.00\nto CH93 0076 2011 6238 5295 7"} {
		v, err := offline.NewVerificationData(bytes.NewReader(make([]byte, 6)), offline.PIN, 8, dev, ctx)
		if err != nil {
			t.Fatal(err)
		}
		s, err := v.Encode()
		if err != nil {
			t.Fatal(err)
		}
		if len(s) > offline.MaxVDataLen || !strings.HasPrefix(s, "1P8AAAAAAAA"+offline.DeviceHint(dev)) {
			t.Fatalf("encoded %q (%d bytes)", s, len(s))
		}
		got, err := offline.DecodeVerificationData(s)
		if err != nil {
			t.Fatal(err)
		}
		if *got != *v {
			t.Fatalf("decoded %+v, want %+v", got, v)
		}
	}
}

// TestVerificationDataDocExample decodes the example of docs/offline.md.
func TestVerificationDataDocExample(t *testing.T) {
	v, err := offline.DecodeVerificationData("1P6q3X9a-Z_kSPay CHF 120.00 to Muster AG")
	if err != nil {
		t.Fatal(err)
	}
	want := offline.VerificationData{Method: offline.PIN, Digits: 6, Challenge: "q3X9a-Z_", Hint: "kS", Context: "Pay CHF 120.00 to Muster AG"}
	if *v != want || offline.DeviceHint("d_AAAAAAAAAAAAAAAAAAAAAA") != "kS" {
		t.Fatalf("%+v", v)
	}
}

func TestVerificationDataRefused(t *testing.T) {
	good := "1D6AbCdEfGhXy"
	cases := []struct{ name, s, reason string }{
		{"Empty", "", "not_offline_code"},
		{"Short", good[:12], "not_offline_code"},
		{"URL", "https://login.example.com/q/AAAAAAAAAAAAAAAAAAAAAA", "not_offline_code"},
		{"Version", "2" + good[1:], "not_offline_code"},
		{"Method", "1X" + good[2:], "not_offline_code"},
		{"Digits3", "1D3" + good[3:], "not_offline_code"},
		{"DigitsColon", "1D:" + good[3:], "not_offline_code"},
		{"Challenge", "1D6AbCdE=GhXy", "not_offline_code"},
		{"Hint", "1D6AbCdEfGhX.", "not_offline_code"},
		{"TooLong", good + strings.Repeat("a", 201), "context_too_long"},
		{"NotUTF8", good + "\xff", "context_not_utf8"},
		{"Escape", good + "\x1b[2J", "context_control_character"},
		{"Bidi", good + "Pay \u202eFHC 001", "context_control_character"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := offline.DecodeVerificationData(tc.s)
			if qrauth.ErrorCode(err) != qrauth.EINVALID || qrauth.ErrorReason(err) != tc.reason {
				t.Fatalf("err %v, want %s", err, tc.reason)
			}
		})
	}
	if _, err := offline.DecodeVerificationData(good + strings.Repeat("a", 200)); err != nil {
		t.Fatalf("200 bytes of context: %v", err)
	}
	if _, err := offline.DecodeVerificationData(good + "line one\nline two"); err != nil {
		t.Fatalf("newline in context: %v", err)
	}
}

// TestOfflineOTP pins the derivation, so that a change to it (which would
// break every phone and token in the field) cannot go unnoticed. The
// vectors were computed independently with Python's hmac module.
func TestOfflineOTP(t *testing.T) {
	key := []byte("0123456789abcdef0123456789abcdef")
	vdata := "1D6AbCdEfGhXySign in at login.example.com"
	cases := []struct {
		digits int
		want   string
	}{
		{4, "4162"}, {6, "444162"}, {9, "356444162"},
	}
	for _, tc := range cases {
		if got := offline.OTP(key, vdata, tc.digits); got != tc.want || len(got) != tc.digits {
			t.Errorf("OfflineOTP(%d) = %q, want %q", tc.digits, got, tc.want)
		}
	}
	// Every byte matters: another context, challenge or key gives another code.
	base := offline.OTP(key, vdata, 9)
	for _, other := range []string{vdata + ".", "1D6AbCdEfGhXz" + vdata[13:], "1P" + vdata[2:]} {
		if offline.OTP(key, other, 9) == base {
			t.Errorf("same code for %q", other)
		}
	}
	if offline.OTP(append([]byte{1}, key[1:]...), vdata, 9) == base {
		t.Error("same code under another key")
	}
}

func TestValidOTP(t *testing.T) {
	for _, tc := range []struct {
		s    string
		n    int
		want bool
	}{{"123456", 6, true}, {"12345", 6, false}, {"12345a", 6, false}, {"０12345", 6, false}, {"0000", 4, true}} {
		if got := offline.ValidOTP(tc.s, tc.n); got != tc.want {
			t.Errorf("ValidOTP(%q, %d) = %v", tc.s, tc.n, got)
		}
	}
}

// FuzzDecodeVerificationData: whatever a QR code holds, decoding never
// panics, refuses with EINVALID, and anything accepted encodes back to the
// very same text and fits the version-10 budget.
func FuzzDecodeVerificationData(f *testing.F) {
	f.Add("1D6AbCdEfGhXySign in at login.example.com")
	f.Add("1P9AAAAAAAAAA" + strings.Repeat("€", 66))
	f.Add("1D4--------__")
	f.Add("https://login.example.com/q/AAAAAAAAAAAAAAAAAAAAAA")
	f.Add("1D6AbCdEfGhXy\u202e")
	f.Fuzz(func(t *testing.T, s string) {
		v, err := offline.DecodeVerificationData(s)
		if err != nil {
			if qrauth.ErrorCode(err) != qrauth.EINVALID {
				t.Fatalf("code %s", qrauth.ErrorCode(err))
			}
			return
		}
		if len(s) > offline.VDataHeaderLen+offline.ContextLimit(s) || !utf8.ValidString(s) {
			t.Fatalf("accepted %d bytes %q", len(s), s)
		}
		back, err := v.Encode()
		if err != nil || back != s {
			t.Fatalf("re-encoded %q, %v; want %q", back, err, s)
		}
	})
}

// FuzzDecodeTransactionDecisionRequest: the phone's decision body is
// refused with a typed error or carries a known decision and a signature
// of the right size.
// TestContextLimit: a context beyond ASCII leaves room for the UTF-8 ECI
// of its QR code, so it may hold one byte less than a plain ASCII one.
func TestContextLimit(t *testing.T) {
	for _, tc := range []struct {
		ctx string
		ok  bool
	}{
		{strings.Repeat("a", 200), true},
		{strings.Repeat("a", 201), false},
		{strings.Repeat("a", 198) + "é", false},
		{strings.Repeat("a", 197) + "é", true},
		{strings.Repeat("é", 100), false},
	} {
		if err := offline.CheckContext(tc.ctx); (err == nil) != tc.ok {
			t.Errorf("%d bytes: %v", len(tc.ctx), err)
		}
	}
}
