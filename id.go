package qrauth

import (
	"crypto/sha256"
	"encoding/base64"
	"io"
	"strings"
)

// UserID identifies a user. It is random and opaque; it never encodes the
// phone number, name or e-mail.
type UserID string

// DeviceID identifies a phone app installation. It is derived from the
// device's public key (see DeviceIDFromKey) so that a device cannot claim an
// id that is not its own.
type DeviceID string

// SessionID is the public identifier of a browser session, shown in session
// lists and used to revoke it. It is not the session token.
type SessionID string

// RandomToken returns n random bytes from r, base64url-encoded without
// padding. Callers pass crypto/rand.Reader outside tests.
func RandomToken(r io.Reader, n int) (string, error) {
	b := make([]byte, n)
	if _, err := io.ReadFull(r, b); err != nil {
		return "", err
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}

// NewUserID returns a fresh random user id.
func NewUserID(r io.Reader) (UserID, error) {
	s, err := RandomToken(r, 16)
	return UserID("u_" + s), err
}

// NewSessionID returns a fresh random session id.
func NewSessionID(r io.Reader) (SessionID, error) {
	s, err := RandomToken(r, 16)
	return SessionID("s_" + s), err
}

// DeviceIDFromKey derives the DeviceID of an Ed25519 public key:
// "d_" followed by base64url (no padding) of the first 16 bytes of
// SHA-256(public key).
func DeviceIDFromKey(pub []byte) DeviceID {
	sum := sha256.Sum256(pub)
	return DeviceID("d_" + base64.RawURLEncoding.EncodeToString(sum[:16]))
}

// HashToken returns SHA-256 of a secret token. Stores and in-memory indexes
// keep only this hash, never the token, so a leaked database or heap dump
// yields no usable tokens. Tokens carry at least 128 bits of entropy, so an
// unsalted hash is enough.
func HashToken(token string) []byte {
	sum := sha256.Sum256([]byte(token))
	return sum[:]
}

// ValidDeviceID reports whether id has the form DeviceIDFromKey produces.
func ValidDeviceID(id DeviceID) bool {
	s := string(id)
	return strings.HasPrefix(s, "d_") && ValidToken(s[2:], 22, 22)
}

// ValidToken reports whether s is base64url without padding, of a length
// in [min, max]: the form of every PSK, nonce, ticket and token.
func ValidToken(s string, min, max int) bool {
	if len(s) < min || len(s) > max {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}
