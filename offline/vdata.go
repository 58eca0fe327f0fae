package offline

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"io"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/qrauth/qrauth"
)

// Verification data is the text of an offline challenge QR code. It must
// fit a version-10 QR code at error correction M with the longest allowed
// context. That symbol holds 213 bytes in byte mode (216 data codewords
// less the 4-bit mode and 16-bit count), so a 200-byte context leaves 13
// bytes for everything else, and the whole text stays printable so that
// every scanner hands it over unchanged. A text beyond ASCII is drawn with a
// UTF-8 ECI designator (12 bits) ahead of its byte-mode segment, so that
// scanners do not guess another character set; that leaves 212 bytes, and
// such a context may hold 199 (MaxContextLenNonASCII):
//
//	offset  length  field
//	0       1       format version, "1"
//	1       1       method: "D" OFFLINE_DEVICE, "P" OFFLINE_PIN
//	2       1       OTP length, "4" to "9"
//	3       8       challenge: 48 random bits, base64url (RFC 4648 §5)
//	11      2       device hint: the first 2 characters of
//	                base64url(SHA-256(device id)), 12 bits
//	13      0-200   context: UTF-8, shown to the person
//
// The code is derived from all of these bytes (see OTP), so a code
// for one challenge, context, method or length never verifies another.

// Layout constants of verification data version 1.
const (
	VDataVersion      = '1'
	VDataHeaderLen    = 13
	VDataChallengeLen = 8
	VDataHintLen      = 2
	// MaxContextLen is the longest context in bytes: plain ASCII.
	MaxContextLen = 200
	// MaxContextLenNonASCII is the longest context, in bytes of UTF-8,
	// that holds any character beyond ASCII: its QR code also carries the
	// UTF-8 ECI designator (see above).
	MaxContextLenNonASCII = MaxContextLen - 1
	// MaxVDataLen is the longest verification data: 213 bytes, the
	// byte-mode capacity of a version-10 QR code at level M.
	MaxVDataLen = VDataHeaderLen + MaxContextLen
)

// VerificationData is the decoded text of an offline challenge.
type VerificationData struct {
	Method    Method
	Digits    int
	Challenge string // 8 base64url characters
	Hint      string // 2 base64url characters, see DeviceHint
	Context   string
}

var offlineMethodCodes = map[Method]byte{Device: 'D', PIN: 'P'}

// NewVerificationData returns verification data for a fresh 48-bit
// challenge from r. It checks every field (see CheckContext).
func NewVerificationData(r io.Reader, m Method, digits int, device qrauth.DeviceID, context string) (*VerificationData, error) {
	b := make([]byte, VDataChallengeLen*6/8)
	if _, err := io.ReadFull(r, b); err != nil {
		return nil, qrauth.Internal(err)
	}
	v := &VerificationData{Method: m, Digits: digits, Challenge: base64.RawURLEncoding.EncodeToString(b),
		Hint: DeviceHint(device), Context: context}
	if _, err := v.Encode(); err != nil {
		return nil, err
	}
	return v, nil
}

// Encode returns the text of v, or an EINVALID error naming the bad field.
func (v *VerificationData) Encode() (string, error) {
	code, ok := offlineMethodCodes[v.Method]
	switch {
	case !ok:
		return "", qrauth.Errorf(qrauth.EINVALID, "invalid_method", "Unknown offline method %q: use OFFLINE_DEVICE or OFFLINE_PIN.", offlineClip(string(v.Method), 40))
	case v.Digits < MinOTPLength || v.Digits > MaxOTPLength:
		return "", qrauth.Errorf(qrauth.EINVALID, "invalid_otp_length", "The code length must be %d to %d digits.", MinOTPLength, MaxOTPLength)
	case !qrauth.ValidToken(v.Challenge, VDataChallengeLen, VDataChallengeLen):
		return "", qrauth.Errorf(qrauth.EINVALID, "invalid_challenge", "The challenge must be %d base64url characters.", VDataChallengeLen)
	case !qrauth.ValidToken(v.Hint, VDataHintLen, VDataHintLen):
		return "", qrauth.Errorf(qrauth.EINVALID, "invalid_device_hint", "The device hint must be %d base64url characters.", VDataHintLen)
	}
	if err := CheckContext(v.Context); err != nil {
		return "", err
	}
	var b strings.Builder
	b.Grow(VDataHeaderLen + len(v.Context))
	b.WriteByte(VDataVersion)
	b.WriteByte(code)
	b.WriteByte(byte('0' + v.Digits))
	b.WriteString(v.Challenge)
	b.WriteString(v.Hint)
	b.WriteString(v.Context)
	return b.String(), nil
}

var errNotOfflineCode = qrauth.Errorf(qrauth.EINVALID, "not_offline_code", "This QR code is not a qrauth offline code.")

// DecodeVerificationData parses the text of a scanned offline challenge.
// Anything that is not exactly the format above is EINVALID: "not_offline_code"
// for a wrong version, method, length, challenge or hint, and the reason of
// CheckContext for a bad context.
func DecodeVerificationData(s string) (*VerificationData, error) {
	if len(s) < VDataHeaderLen || s[0] != VDataVersion {
		return nil, errNotOfflineCode
	}
	var m Method
	for method, code := range offlineMethodCodes {
		if code == s[1] {
			m = method
		}
	}
	if m == "" {
		return nil, errNotOfflineCode
	}
	if s[2] < '0'+MinOTPLength || s[2] > '0'+MaxOTPLength {
		return nil, errNotOfflineCode
	}
	v := &VerificationData{Method: m, Digits: int(s[2] - '0'),
		Challenge: s[3 : 3+VDataChallengeLen], Hint: s[3+VDataChallengeLen : VDataHeaderLen], Context: s[VDataHeaderLen:]}
	if !qrauth.ValidToken(v.Challenge, VDataChallengeLen, VDataChallengeLen) || !qrauth.ValidToken(v.Hint, VDataHintLen, VDataHintLen) {
		return nil, errNotOfflineCode
	}
	if err := CheckContext(v.Context); err != nil {
		return nil, err
	}
	return v, nil
}

var errOfflineContextTooLong = qrauth.Errorf(qrauth.EINVALID, "context_too_long",
	"The transaction context is longer than %d bytes (%d bytes of UTF-8 if it holds characters beyond ASCII): "+
		"an offline code must fit a version-10 QR code. Shorten it.", MaxContextLen, MaxContextLenNonASCII)

// ContextLimit returns the longest a context like s may be, in bytes:
// MaxContextLen if s is plain ASCII, else MaxContextLenNonASCII.
func ContextLimit(s string) int {
	for i := 0; i < len(s); i++ {
		if s[i] >= utf8.RuneSelf {
			return MaxContextLenNonASCII
		}
	}
	return MaxContextLen
}

// CheckContext checks a transaction context: UTF-8 of at most
// ContextLimit bytes, no control characters other than newline, and no
// bidirectional controls, which could make the phone show a text that reads
// differently from what the server signs off. EINVALID "context_too_long",
// "context_not_utf8" or "context_control_character".
func CheckContext(s string) error {
	if len(s) > ContextLimit(s) {
		return errOfflineContextTooLong
	}
	return offlineCheckText(s, "context", "transaction context")
}

// CheckApprovalText checks the text of an online approval like a context,
// with the limit MaxApprovalTextLen. EINVALID "text_empty", "text_too_long",
// "text_not_utf8" or "text_control_character".
func CheckApprovalText(s string) error {
	if strings.TrimSpace(s) == "" {
		return qrauth.Errorf(qrauth.EINVALID, "text_empty", "The transaction text is empty.")
	}
	if len(s) > MaxApprovalTextLen {
		return qrauth.Errorf(qrauth.EINVALID, "text_too_long", "The transaction text is longer than %d bytes of UTF-8.", MaxApprovalTextLen)
	}
	return offlineCheckText(s, "text", "transaction text")
}

func offlineCheckText(s, field, what string) error {
	if !utf8.ValidString(s) {
		return qrauth.Errorf(qrauth.EINVALID, field+"_not_utf8", "The %s is not valid UTF-8.", what)
	}
	for _, r := range s {
		if r != '\n' && (unicode.IsControl(r) || unicode.Is(unicode.Bidi_Control, r)) {
			return qrauth.Errorf(qrauth.EINVALID, field+"_control_character",
				"The %s contains the control character U+%04X; only printable text and line breaks are allowed.", what, r)
		}
	}
	return nil
}

// DeviceHint returns the 2-character hint of a device in
// verification data: the first 12 bits of SHA-256 of the device id, in
// base64url. It lets a phone with several keys pick the right one and say
// "this code is for another phone"; it is not a secret and not unique.
func DeviceHint(id qrauth.DeviceID) string {
	sum := sha256.Sum256([]byte(id))
	return base64.RawURLEncoding.EncodeToString(sum[:3])[:VDataHintLen]
}

// offlineOTPLabel separates the HMAC input from any other use of the key.
const offlineOTPLabel = "qrauth-v1 offline-otp\n"

// OTP derives the one-time code of vdata (the verification data as
// scanned, byte for byte) under a method key, as RFC 4226 derives HOTP
// codes but over the whole verification data instead of a counter:
//
//	mac  = HMAC-SHA256(key, "qrauth-v1 offline-otp\n" || vdata)
//	o    = mac[31] & 0x0f
//	bin  = (mac[o] & 0x7f) << 24 | mac[o+1] << 16 | mac[o+2] << 8 | mac[o+3]
//	code = bin mod 10^digits, in decimal, zero-padded to digits
//
// digits is read from vdata by the caller (VerificationData.Digits).
func OTP(key []byte, vdata string, digits int) string {
	mac := hmac.New(sha256.New, key)
	mac.Write([]byte(offlineOTPLabel))
	mac.Write([]byte(vdata))
	sum := mac.Sum(nil)
	o := sum[len(sum)-1] & 0x0f
	bin := binary.BigEndian.Uint32(sum[o:o+4]) & 0x7fffffff
	mod := uint32(1)
	for range digits {
		mod *= 10
	}
	s := strconv.FormatUint(uint64(bin%mod), 10)
	return strings.Repeat("0", digits-len(s)) + s
}

// ValidOTP reports whether s is a code of exactly digits decimal digits.
func ValidOTP(s string, digits int) bool {
	if len(s) != digits {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}
