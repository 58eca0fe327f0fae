package oath_test

import (
	"strings"
	"testing"

	"github.com/qrauth/qrauth"
	"github.com/qrauth/qrauth/oath"
)

func TestNormalizeOATHCode(t *testing.T) {
	for in, want := range map[string]string{
		"123456": "123456", " 123 456 ": "123456", "123-456": "123456", "12345678": "",
		"12345": "", "12345a": "", "١٢٣٤٥٦": "", "": "", "123\n456": "",
	} {
		got, err := oath.NormalizeCode(in, 6)
		if got != want || (want == "") != (err != nil) {
			t.Errorf("NormalizeCode(%q) = %q, %v; want %q", in, got, err, want)
		}
		if err != nil && qrauth.ErrorReason(err) != "invalid_code" {
			t.Errorf("NormalizeCode(%q): %v", in, err)
		}
	}
}

// FuzzNormalizeOATHCode: whatever a browser sends, the result is either
// an invalid_code error or exactly digits ASCII digits.
func FuzzNormalizeOATHCode(f *testing.F) {
	for _, s := range []string{"123456", "123 456", "12345678", "", "abc", "1\x002"} {
		f.Add(s, 6)
		f.Add(s, 8)
	}
	f.Fuzz(func(t *testing.T, code string, digits int) {
		got, err := oath.NormalizeCode(code, digits)
		if err != nil {
			if qrauth.ErrorReason(err) != "invalid_code" {
				t.Fatalf("error %v", err)
			}
			return
		}
		if len(got) != digits || strings.Trim(got, "0123456789") != "" {
			t.Fatalf("NormalizeCode(%q, %d) = %q", code, digits, got)
		}
	})
}
