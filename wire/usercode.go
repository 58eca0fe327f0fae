package wire

import (
	"strings"

	"github.com/qrauth/qrauth"
)

// A user code is the short code the login page shows under its QR code, for
// a phone that cannot scan: 8 characters of Crockford's base32 alphabet
// (digits and capitals without I, L, O and U), shown grouped 4-4 as
// "7K3M-QX9D". It names the same room as the QR code, for as long as that
// code, and once. The phone exchanges it for the QR code's URL
// (POST PathAppCode) and then joins exactly as after a scan, so the signed
// join and decision are unchanged. docs/protocol.md §7.9; the guessing
// arithmetic is in docs/threat-model.md.
const (
	UserCodeAlphabet = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
	UserCodeLength   = 8
)

// maxUserCodeInput bounds what NormalizeUserCode reads: the code, a few
// separators and spaces.
const maxUserCodeInput = 32

// ErrInvalidUserCode refuses text that cannot be a user code at all. It is
// refused before any lookup and counts against no limit: it can name no room.
var ErrInvalidUserCode = qrauth.Errorf(qrauth.EINVALID, "invalid_code",
	"A sign-in code is 8 letters and digits, such as 7K3M-QX9D.")

// NormalizeUserCode returns the canonical form of a typed code: 8
// characters of UserCodeAlphabet, without the dash. It ignores case, spaces
// and dashes, and reads the letters people confuse with digits as those
// digits (O as 0, I and L as 1), as Crockford's base32 does, so "7k3m qx9d"
// and "7K3M-QX9D" are the same code.
func NormalizeUserCode(s string) (string, error) {
	if len(s) > maxUserCodeInput {
		return "", ErrInvalidUserCode
	}
	var b strings.Builder
	for _, c := range s {
		switch {
		case c == ' ' || c == '-' || c == '\t':
			continue
		case c >= 'a' && c <= 'z':
			c -= 'a' - 'A'
		}
		switch c {
		case 'O':
			c = '0'
		case 'I', 'L':
			c = '1'
		}
		if c > 0x7f || !strings.ContainsRune(UserCodeAlphabet, c) {
			return "", ErrInvalidUserCode
		}
		b.WriteRune(c)
	}
	if b.Len() != UserCodeLength {
		return "", ErrInvalidUserCode
	}
	return b.String(), nil
}

// FormatUserCode returns a canonical code as it is shown: "7K3M-QX9D".
func FormatUserCode(code string) string {
	if len(code) != UserCodeLength {
		return code
	}
	return code[:4] + "-" + code[4:]
}

// CodeRequest is the body of POST PathAppCode.
type CodeRequest struct {
	Code string `json:"code"`
}

// CodeResponse is its answer: the URL the room's QR code shows now,
// ORIGIN/q/PSK. The phone checks it like a scanned code (its own origin)
// and joins with its PSK.
type CodeResponse struct {
	URL string `json:"url"`
}
