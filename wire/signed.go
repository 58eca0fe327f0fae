package wire

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"strconv"
	"strings"

	"github.com/qrauth/qrauth"
)

// Decision is what the phone signs. Its canonical bytes (SignedBytes) are
// domain-separated so that a signature made for qrauth decisions cannot be
// replayed as anything else, and bind the origin, the room, the one-time
// nonce, the mode, the device, the phone and the decision.
type Decision struct {
	Origin      string
	Room        string
	Nonce       string
	Mode        string
	DeviceID    qrauth.DeviceID
	PhoneIDHash string
	Decision    string
}

// SignedBytes returns the exact bytes the device signs: a header line and
// one "key=value" line per field, each ending in "\n". No field may contain
// a newline; the server only signs values it validated.
func (d *Decision) SignedBytes() []byte {
	return signedLines("qrauth-v1 decision", [][2]string{
		{"origin", d.Origin},
		{"room", d.Room},
		{"nonce", d.Nonce},
		{"mode", d.Mode},
		{"device", string(d.DeviceID)},
		{"phone", d.PhoneIDHash},
		{"decision", d.Decision},
	})
}

// signedLines returns the signed-bytes format shared by Decision,
// AppRequest and TransactionDecision: the header line, then one
// "key=value" line per field, each ending in "\n".
func signedLines(header string, fields [][2]string) []byte {
	var b bytes.Buffer
	b.WriteString(header)
	b.WriteByte('\n')
	for _, kv := range fields {
		b.WriteString(kv[0])
		b.WriteByte('=')
		b.WriteString(kv[1])
		b.WriteByte('\n')
	}
	return b.Bytes()
}

// Verify checks sig (base64url) against pub. It returns qrauth.EUNAUTHORIZED
// "bad_signature" when the signature does not verify.
func (d *Decision) Verify(pub ed25519.PublicKey, sig string) error {
	s, err := base64.RawURLEncoding.DecodeString(sig)
	if err != nil || len(s) != ed25519.SignatureSize || len(pub) != ed25519.PublicKeySize {
		return qrauth.Errorf(qrauth.EUNAUTHORIZED, "bad_signature", "The phone's signature is not valid.")
	}
	if strings.ContainsAny(d.Origin+d.Room+d.Nonce+d.Mode+string(d.DeviceID)+d.PhoneIDHash+d.Decision, "\n") ||
		!verifyEd25519(pub, d.SignedBytes(), s) {
		return qrauth.Errorf(qrauth.EUNAUTHORIZED, "bad_signature", "The phone's signature is not valid.")
	}
	return nil
}

// Sign signs d with priv and returns the base64url signature.
func (d *Decision) Sign(priv ed25519.PrivateKey) string {
	return base64.RawURLEncoding.EncodeToString(ed25519.Sign(priv, d.SignedBytes()))
}

// Join is what the app signs to join a room (protocol version 2). Its
// canonical bytes (SignedBytes) bind the server's origin, the scanned PSK
// (by its SHA-256 only, so the signed bytes reveal nothing that would let
// anyone join), the device and the phone. The server verifies the
// signature, with the key carried in the join, before it looks anything
// up: whoever gets the challenge holds the device key, and a party that
// only knows a device id and a phone number learns nothing about the
// account. The PSK is single-use, so a join cannot be replayed into
// another room, and the origin keeps it from being relayed to another
// server.
type Join struct {
	Origin      string
	PSK         string // the PSK of the scanned code; only its SHA-256 is signed
	DeviceID    qrauth.DeviceID
	PhoneIDHash string
}

// SignedBytes returns the exact bytes the device signs, in the line format
// of Decision.SignedBytes:
//
//	qrauth-v2 join\n
//	origin=ORIGIN\n
//	psk-sha256=HEX\n
//	device=DEVICE\n
//	phone=PHONEIDHASH\n
func (j *Join) SignedBytes() []byte {
	sum := sha256.Sum256([]byte(j.PSK))
	return signedLines("qrauth-v2 join", [][2]string{
		{"origin", j.Origin},
		{"psk-sha256", hex.EncodeToString(sum[:])},
		{"device", string(j.DeviceID)},
		{"phone", j.PhoneIDHash},
	})
}

// Sign signs j with priv and returns the base64url signature.
func (j *Join) Sign(priv ed25519.PrivateKey) string {
	return base64.RawURLEncoding.EncodeToString(ed25519.Sign(priv, j.SignedBytes()))
}

// Verify checks sig (base64url) against pub, which must be the key of
// j.DeviceID. It returns qrauth.EUNAUTHORIZED "bad_signature" otherwise, whatever
// the cause, so a refusal says nothing about the device or the account.
func (j *Join) Verify(pub ed25519.PublicKey, sig string) error {
	s, err := base64.RawURLEncoding.DecodeString(sig)
	if err != nil || len(s) != ed25519.SignatureSize || len(pub) != ed25519.PublicKeySize ||
		qrauth.DeviceIDFromKey(pub) != j.DeviceID ||
		strings.ContainsAny(j.Origin+string(j.DeviceID)+j.PhoneIDHash, "\n") ||
		!verifyEd25519(pub, j.SignedBytes(), s) {
		return qrauth.Errorf(qrauth.EUNAUTHORIZED, "bad_signature", "The phone's signature is not valid.")
	}
	return nil
}

// Headers of a device-signed HTTP request from the app.
const (
	HeaderDevice    = "X-Qrauth-Device"
	HeaderTime      = "X-Qrauth-Time"  // unix seconds
	HeaderNonce     = "X-Qrauth-Nonce" // 16-64 base64url characters, never reused
	HeaderSignature = "X-Qrauth-Signature"
)

// AppRequestMaxSkew is how far the time of a signed app request may be from
// the server's clock, in seconds. Nonces are remembered at least twice this
// long, so a captured request cannot be replayed.
const AppRequestMaxSkew = 60

// AppRequest is what the app signs to call the HTTP API as a device (list and
// revoke sessions). Path is the request path without query.
type AppRequest struct {
	Method   string
	Path     string
	Time     int64
	Nonce    string
	DeviceID qrauth.DeviceID
}

// SignedBytes returns the exact bytes signed, in the same line format as
// Decision.SignedBytes.
func (r *AppRequest) SignedBytes() []byte {
	return signedLines("qrauth-v1 request", [][2]string{
		{"method", r.Method},
		{"path", r.Path},
		{"time", strconv.FormatInt(r.Time, 10)},
		{"nonce", r.Nonce},
		{"device", string(r.DeviceID)},
	})
}

// Sign returns the base64url signature of r under priv.
func (r *AppRequest) Sign(priv ed25519.PrivateKey) string {
	return base64.RawURLEncoding.EncodeToString(ed25519.Sign(priv, r.SignedBytes()))
}

// Verify checks sig against pub; qrauth.EUNAUTHORIZED "bad_signature" otherwise.
func (r *AppRequest) Verify(pub ed25519.PublicKey, sig string) error {
	s, err := base64.RawURLEncoding.DecodeString(sig)
	if err != nil || len(s) != ed25519.SignatureSize || len(pub) != ed25519.PublicKeySize ||
		!qrauth.ValidToken(r.Nonce, 16, 64) || bytes.ContainsAny([]byte(r.Method+r.Path), "\n") ||
		!verifyEd25519(pub, r.SignedBytes(), s) {
		return qrauth.Errorf(qrauth.EUNAUTHORIZED, "bad_signature", "The request signature is not valid.")
	}
	return nil
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
	DeviceID      qrauth.DeviceID
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

// Verify checks sig (base64url) against pub; qrauth.EUNAUTHORIZED "bad_signature"
// otherwise.
func (d *TransactionDecision) Verify(pub ed25519.PublicKey, sig string) error {
	s, err := base64.RawURLEncoding.DecodeString(sig)
	if err != nil || len(s) != ed25519.SignatureSize || len(pub) != ed25519.PublicKeySize ||
		strings.ContainsAny(d.Origin+d.TransactionID+d.TextSHA256+string(d.DeviceID)+d.Decision, "\n") ||
		(d.Decision != DecisionApprove && d.Decision != DecisionDeny) ||
		!verifyEd25519(pub, d.SignedBytes(), s) {
		return qrauth.Errorf(qrauth.EUNAUTHORIZED, "bad_signature", "The phone's signature over the transaction is not valid.")
	}
	return nil
}

// verifyEd25519 is the one signature check of every signed qrauth message:
// a weak key (see qrauth.CheckPublicKey) verifies nothing, whatever the signature.
func verifyEd25519(pub ed25519.PublicKey, msg, sig []byte) bool {
	return qrauth.CheckPublicKey(pub) == nil && len(sig) == ed25519.SignatureSize && ed25519.Verify(pub, msg, sig)
}
