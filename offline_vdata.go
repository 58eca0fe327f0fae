package qrauth

import (
	"crypto/ed25519"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"io"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Verification data is the text of an offline challenge QR code. It must
// fit a version-10 QR code at error correction M with the longest allowed
// context. That symbol holds 213 bytes in byte mode (216 data codewords
// less the 4-bit mode and 16-bit count), so a 200-byte context leaves 13
// bytes for everything else, and the whole text stays printable so that
// every scanner hands it over unchanged:
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
// The code is derived from all of these bytes (see OfflineOTP), so a code
// for one challenge, context, method or length never verifies another.

// Layout constants of verification data version 1.
const (
	VDataVersion      = '1'
	VDataHeaderLen    = 13
	VDataChallengeLen = 8
	VDataHintLen      = 2
	// MaxContextLen is the longest context in bytes of UTF-8.
	MaxContextLen = 200
	// MaxVDataLen is the longest verification data: 213 bytes, the
	// byte-mode capacity of a version-10 QR code at level M.
	MaxVDataLen = VDataHeaderLen + MaxContextLen
)

// VerificationData is the decoded text of an offline challenge.
type VerificationData struct {
	Method    OfflineMethod
	Digits    int
	Challenge string // 8 base64url characters
	Hint      string // 2 base64url characters, see OfflineDeviceHint
	Context   string
}

var offlineMethodCodes = map[OfflineMethod]byte{OfflineDevice: 'D', OfflinePIN: 'P'}

// NewVerificationData returns verification data for a fresh 48-bit
// challenge from r. It checks every field (see CheckContext).
func NewVerificationData(r io.Reader, m OfflineMethod, digits int, device DeviceID, context string) (*VerificationData, error) {
	b := make([]byte, VDataChallengeLen*6/8)
	if _, err := io.ReadFull(r, b); err != nil {
		return nil, Internal(err)
	}
	v := &VerificationData{Method: m, Digits: digits, Challenge: base64.RawURLEncoding.EncodeToString(b),
		Hint: OfflineDeviceHint(device), Context: context}
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
		return "", Errorf(EINVALID, "invalid_method", "Unknown offline method %q: use OFFLINE_DEVICE or OFFLINE_PIN.", offlineClip(string(v.Method), 40))
	case v.Digits < MinOTPLength || v.Digits > MaxOTPLength:
		return "", Errorf(EINVALID, "invalid_otp_length", "The code length must be %d to %d digits.", MinOTPLength, MaxOTPLength)
	case !ValidToken(v.Challenge, VDataChallengeLen, VDataChallengeLen):
		return "", Errorf(EINVALID, "invalid_challenge", "The challenge must be %d base64url characters.", VDataChallengeLen)
	case !ValidToken(v.Hint, VDataHintLen, VDataHintLen):
		return "", Errorf(EINVALID, "invalid_device_hint", "The device hint must be %d base64url characters.", VDataHintLen)
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

var errNotOfflineCode = Errorf(EINVALID, "not_offline_code", "This QR code is not a qrauth offline code.")

// DecodeVerificationData parses the text of a scanned offline challenge.
// Anything that is not exactly the format above is EINVALID: "not_offline_code"
// for a wrong version, method, length, challenge or hint, and the reason of
// CheckContext for a bad context.
func DecodeVerificationData(s string) (*VerificationData, error) {
	if len(s) < VDataHeaderLen || s[0] != VDataVersion {
		return nil, errNotOfflineCode
	}
	var m OfflineMethod
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
	if !ValidToken(v.Challenge, VDataChallengeLen, VDataChallengeLen) || !ValidToken(v.Hint, VDataHintLen, VDataHintLen) {
		return nil, errNotOfflineCode
	}
	if err := CheckContext(v.Context); err != nil {
		return nil, err
	}
	return v, nil
}

var errOfflineContextTooLong = Errorf(EINVALID, "context_too_long",
	"The transaction context is longer than %d bytes of UTF-8 (an offline code must fit a version-10 QR code). Shorten it.", MaxContextLen)

// CheckContext checks a transaction context: UTF-8 of at most
// MaxContextLen bytes, no control characters other than newline, and no
// bidirectional controls, which could make the phone show a text that reads
// differently from what the server signs off. EINVALID "context_too_long",
// "context_not_utf8" or "context_control_character".
func CheckContext(s string) error {
	if len(s) > MaxContextLen {
		return errOfflineContextTooLong
	}
	return offlineCheckText(s, "context", "transaction context")
}

// CheckApprovalText checks the text of an online approval like a context,
// with the limit MaxApprovalTextLen. EINVALID "text_empty", "text_too_long",
// "text_not_utf8" or "text_control_character".
func CheckApprovalText(s string) error {
	if strings.TrimSpace(s) == "" {
		return Errorf(EINVALID, "text_empty", "The transaction text is empty.")
	}
	if len(s) > MaxApprovalTextLen {
		return Errorf(EINVALID, "text_too_long", "The transaction text is longer than %d bytes of UTF-8.", MaxApprovalTextLen)
	}
	return offlineCheckText(s, "text", "transaction text")
}

func offlineCheckText(s, field, what string) error {
	if !utf8.ValidString(s) {
		return Errorf(EINVALID, field+"_not_utf8", "The %s is not valid UTF-8.", what)
	}
	for _, r := range s {
		if r != '\n' && (unicode.IsControl(r) || unicode.Is(unicode.Bidi_Control, r)) {
			return Errorf(EINVALID, field+"_control_character",
				"The %s contains the control character U+%04X; only printable text and line breaks are allowed.", what, r)
		}
	}
	return nil
}

// OfflineDeviceHint returns the 2-character hint of a device in
// verification data: the first 12 bits of SHA-256 of the device id, in
// base64url. It lets a phone with several keys pick the right one and say
// "this code is for another phone"; it is not a secret and not unique.
func OfflineDeviceHint(id DeviceID) string {
	sum := sha256.Sum256([]byte(id))
	return base64.RawURLEncoding.EncodeToString(sum[:3])[:VDataHintLen]
}

// offlineOTPLabel separates the HMAC input from any other use of the key.
const offlineOTPLabel = "qrauth-v1 offline-otp\n"

// OfflineOTP derives the one-time code of vdata (the verification data as
// scanned, byte for byte) under a method key, as RFC 4226 derives HOTP
// codes but over the whole verification data instead of a counter:
//
//	mac  = HMAC-SHA256(key, "qrauth-v1 offline-otp\n" || vdata)
//	o    = mac[31] & 0x0f
//	bin  = (mac[o] & 0x7f) << 24 | mac[o+1] << 16 | mac[o+2] << 8 | mac[o+3]
//	code = bin mod 10^digits, in decimal, zero-padded to digits
//
// digits is read from vdata by the caller (VerificationData.Digits).
func OfflineOTP(key []byte, vdata string, digits int) string {
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

// TransactionDecision is what a phone signs to approve or deny an online
// transaction (dynamic linking). Its bytes are domain-separated from the
// sign-in Decision and from AppRequest, and bind the origin, the
// transaction, the SHA-256 of the exact text shown, the device and the
// decision.
type TransactionDecision struct {
	Origin        string
	TransactionID string
	TextSHA256    string // lowercase hex
	DeviceID      DeviceID
	Decision      string // DecisionApprove or DecisionDeny
}

// TextSHA256 returns the lowercase hex SHA-256 of a transaction text.
func TextSHA256(text string) string {
	sum := sha256.Sum256([]byte(text))
	return hex.EncodeToString(sum[:])
}

// SignedBytes returns the exact bytes signed, in the line format of
// Decision.SignedBytes:
//
//	qrauth-v1 transaction\n
//	origin=ORIGIN\n
//	transaction=ID\n
//	text-sha256=HEX\n
//	device=DEVICE\n
//	decision=approve|deny\n
func (d *TransactionDecision) SignedBytes() []byte {
	return signedLines("qrauth-v1 transaction", [][2]string{
		{"origin", d.Origin},
		{"transaction", d.TransactionID},
		{"text-sha256", d.TextSHA256},
		{"device", string(d.DeviceID)},
		{"decision", d.Decision},
	})
}

// Sign returns the base64url signature of d under priv.
func (d *TransactionDecision) Sign(priv ed25519.PrivateKey) string {
	return base64.RawURLEncoding.EncodeToString(ed25519.Sign(priv, d.SignedBytes()))
}

// Verify checks sig (base64url) against pub; EUNAUTHORIZED "bad_signature"
// otherwise.
func (d *TransactionDecision) Verify(pub ed25519.PublicKey, sig string) error {
	s, err := base64.RawURLEncoding.DecodeString(sig)
	if err != nil || len(s) != ed25519.SignatureSize || len(pub) != ed25519.PublicKeySize ||
		strings.ContainsAny(d.Origin+d.TransactionID+d.TextSHA256+string(d.DeviceID)+d.Decision, "\n") ||
		(d.Decision != DecisionApprove && d.Decision != DecisionDeny) ||
		!verifyEd25519(pub, d.SignedBytes(), s) {
		return Errorf(EUNAUTHORIZED, "bad_signature", "The phone's signature over the transaction is not valid.")
	}
	return nil
}
