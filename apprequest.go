package qrauth

import (
	"bytes"
	"crypto/ed25519"
	"encoding/base64"
	"strconv"
)

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
	DeviceID DeviceID
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

// Verify checks sig against pub; EUNAUTHORIZED "bad_signature" otherwise.
func (r *AppRequest) Verify(pub ed25519.PublicKey, sig string) error {
	s, err := base64.RawURLEncoding.DecodeString(sig)
	if err != nil || len(s) != ed25519.SignatureSize || len(pub) != ed25519.PublicKeySize ||
		!ValidToken(r.Nonce, 16, 64) || bytes.ContainsAny([]byte(r.Method+r.Path), "\n") ||
		!verifyEd25519(pub, r.SignedBytes(), s) {
		return Errorf(EUNAUTHORIZED, "bad_signature", "The request signature is not valid.")
	}
	return nil
}

// Discovery is the document served at /.well-known/qrauth for apps.
type Discovery struct {
	ProtocolVersion int    `json:"protocol_version"`
	Origin          string `json:"origin"`
	PhoneSalt       string `json:"phone_salt"` // base64url; key of PhoneIDHash
	QRPrefix        string `json:"qr_prefix"`  // ORIGIN/q/
	AppSocket       string `json:"app_socket"` // ws(s) URL
	SessionsURL     string `json:"sessions_url"`
}
