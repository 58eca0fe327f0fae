package qrauth_test

import (
	"testing"

	"github.com/qrauth/qrauth"
)

func TestNormalizePhone(t *testing.T) {
	for in, want := range map[string]string{
		"+41 79 123 45 67":    "+41791234567",
		"0041 79 123 45 67":   "+41791234567",
		"+41 (0)79 123 45 67": "+41791234567",
		"+1 (202) 555-0100":   "+12025550100",
		"079 123 45 67":       "",
		"+41 79 ABC":          "",
		"+1234":               "",
	} {
		got, err := qrauth.NormalizePhone(in)
		if got != want || (want == "") != (err != nil) {
			t.Errorf("%q: %q %v, want %q", in, got, err, want)
		}
	}
	a := qrauth.PhoneIDHash([]byte("salt"), "+41791234567")
	if !qrauth.ValidPhoneIDHash(a) || a == qrauth.PhoneIDHash([]byte("other salt"), "+41791234567") {
		t.Fatal("hash not salted or malformed")
	}
}
