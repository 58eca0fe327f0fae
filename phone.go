package qrauth

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"strings"
)

// NormalizePhone returns the E.164 form of a phone number: "+" and 8 to 15
// digits. Spaces, dots, dashes, slashes and parentheses are dropped; a
// leading "00" becomes "+". Numbers without a country code are refused,
// because the same local number in two countries must not hash alike.
func NormalizePhone(s string) (string, error) {
	// "+41 (0)79 …" writes the national trunk prefix in brackets; it is
	// not dialled from abroad and must not change the number.
	s = strings.ReplaceAll(strings.TrimSpace(s), "(0)", "")
	if strings.HasPrefix(s, "00") {
		s = "+" + s[2:]
	}
	var b strings.Builder
	for i, r := range s {
		switch {
		case r == '+' && i == 0:
			b.WriteRune(r)
		case r >= '0' && r <= '9':
			b.WriteRune(r)
		case r == ' ' || r == '-' || r == '.' || r == '/' || r == '(' || r == ')':
		default:
			return "", Errorf(EINVALID, "invalid_phone", "The phone number may contain only digits, spaces and + ( ) - . /")
		}
	}
	n := b.String()
	if !strings.HasPrefix(n, "+") || len(n) < 9 || len(n) > 16 {
		return "", Errorf(EINVALID, "invalid_phone", "Give the phone number in international form, such as +41 79 123 45 67.")
	}
	return n, nil
}

// PhoneIDHash returns the PhoneIdHash of an E.164 phone number under the
// deployment's salt: lowercase hex of HMAC-SHA256(key=salt, phone). It is an
// identifier, never a secret: it names an account, it does not prove anything.
func PhoneIDHash(salt []byte, e164 string) string {
	m := hmac.New(sha256.New, salt)
	m.Write([]byte(e164))
	return hex.EncodeToString(m.Sum(nil))
}

// ValidPhoneIDHash reports whether h is 64 lowercase hex digits.
func ValidPhoneIDHash(h string) bool {
	if len(h) != 64 {
		return false
	}
	for i := 0; i < len(h); i++ {
		c := h[i]
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return false
		}
	}
	return true
}
