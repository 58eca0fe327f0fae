package wire

import (
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"strings"
	"time"

	"github.com/qrauth/qrauth"
)

// Paths of the recovery flow (docs/recovery.md).
const (
	PathAppRecover        = "/api/app/recover" // signed by the new phone's own key (Recover)
	PathRecovery          = "/api/recovery"    // session: the account's recovery status
	PathRecoveryCodes     = "/api/recovery/codes"
	PathAdminRecoveryUser = "/admin/api/recovery/users/:id"
	PathAdminRecoveryLink = "/admin/api/recovery/users/:id/link"
)

const (
	// RecoverFragment starts the fragment of a link code's QR code:
	// ORIGIN/app#recover=CODE.
	RecoverFragment         = "recover="
	recoverHeader           = "qrauth-v1 recover"
	recoverBadSignatureText = "The new phone's signature is not valid."
)

// Recover is what a new phone signs to join an account with a recovery
// code or a helpdesk link code. The phone has no registered key yet, so it
// proves only that it holds the key it asks to register: the server
// verifies the signature with the key in the request, whose DeviceID must
// be DeviceID, before it looks the code up. The code enters the signed
// bytes as its SHA-256 only, so signed bytes in a log never give it away;
// the code is single-use, so a captured request cannot be replayed, and
// the origin keeps it from being relayed to another server.
type Recover struct {
	Origin      string
	Code        string // normalized (recovery.Normalize); only its SHA-256 is signed
	DeviceID    qrauth.DeviceID
	PhoneIDHash string
	DeviceName  string
}

// SignedBytes returns the exact bytes signed, in the line format of
// Decision.SignedBytes:
//
//	qrauth-v1 recover\n
//	origin=ORIGIN\n
//	code-sha256=HEX\n
//	device=DEVICE\n
//	phone=PHONEIDHASH\n
//	name=DEVICE NAME\n
func (r *Recover) SignedBytes() []byte {
	sum := sha256.Sum256([]byte(r.Code))
	return signedLines(recoverHeader, [][2]string{
		{"origin", r.Origin},
		{"code-sha256", hex.EncodeToString(sum[:])},
		{"device", string(r.DeviceID)},
		{"phone", r.PhoneIDHash},
		{"name", r.DeviceName},
	})
}

// Sign returns the base64url signature of r under priv.
func (r *Recover) Sign(priv ed25519.PrivateKey) string {
	return base64.RawURLEncoding.EncodeToString(ed25519.Sign(priv, r.SignedBytes()))
}

// Verify checks sig (base64url) against pub, which must be the key of
// r.DeviceID. It returns qrauth.EUNAUTHORIZED "bad_signature" otherwise.
func (r *Recover) Verify(pub ed25519.PublicKey, sig string) error {
	s, err := base64.RawURLEncoding.DecodeString(sig)
	if err != nil || len(s) != ed25519.SignatureSize || len(pub) != ed25519.PublicKeySize ||
		qrauth.DeviceIDFromKey(pub) != r.DeviceID ||
		strings.ContainsAny(r.Origin+string(r.DeviceID)+r.PhoneIDHash+r.DeviceName, "\n") ||
		!verifyEd25519(pub, r.SignedBytes(), s) {
		return qrauth.Errorf(qrauth.EUNAUTHORIZED, "bad_signature", recoverBadSignatureText)
	}
	return nil
}

// RecoverRequest is the body of POST PathAppRecover.
type RecoverRequest struct {
	Code        string          `json:"code"` // as typed or scanned; the server normalizes it
	DeviceID    qrauth.DeviceID `json:"device_id"`
	PublicKey   string          `json:"public_key"` // base64url, 32 bytes
	PhoneIDHash string          `json:"phone_id_hash"`
	DeviceName  string          `json:"device_name"`
	Signature   string          `json:"signature"` // of Recover, base64url
}

// RecoverResponse is its answer.
type RecoverResponse struct {
	UserID        qrauth.UserID `json:"user_id"`
	Account       AccountInfo   `json:"account"`
	Device        DeviceInfo    `json:"device"`
	Kind          string        `json:"kind"`           // recovery_code or link_code
	SessionsEnded int           `json:"sessions_ended"` // browser sessions signed out
	Remaining     int           `json:"remaining"`      // recovery codes left
}

// RecoveryStatus is the answer of GET PathRecovery and of the admin
// status route.
type RecoveryStatus struct {
	Remaining   int       `json:"remaining"`
	GeneratedAt time.Time `json:"generated_at,omitzero"`
	Failures    int       `json:"failures"`
	Locked      bool      `json:"locked"`
}

// RecoveryCodes is the answer of POST PathRecoveryCodes: the new set,
// shown this once.
type RecoveryCodes struct {
	Codes  []string       `json:"codes"`
	Status RecoveryStatus `json:"status"`
}

// LinkCodeResponse is the answer of POST PathAdminRecoveryLink.
type LinkCodeResponse struct {
	UserID    qrauth.UserID `json:"user_id"`
	Code      string        `json:"code"`
	URL       string        `json:"url"` // what the QR code encodes
	QR        string        `json:"qr"`  // PNG data URL of URL
	ExpiresAt time.Time     `json:"expires_at"`
}

// RecoverURL is what a link code's QR code encodes: the phone web app with
// the code in the fragment, which never reaches a server log.
func RecoverURL(origin, code string) string {
	return strings.TrimRight(origin, "/") + PathPhoneApp + "#" + RecoverFragment + code
}
