package badge

import (
	"crypto/sha256"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/qrauth/qrauth"
)

// PasswordAlgorithm is the only password hash in use.
const PasswordAlgorithm = "argon2id"

// PasswordParams are the argon2id parameters a hash was made with. They are
// stored with each hash so that the defaults can be raised later without
// breaking existing passwords.
type PasswordParams struct {
	Time    uint32 `json:"t"`
	Memory  uint32 `json:"m"` // KiB
	Threads uint8  `json:"p"`
	KeyLen  uint32 `json:"l"`
}

// Password is a user's password credential. Only the argon2id hash is
// kept, with its per-user random salt and its parameters.
type Password struct {
	UserID    qrauth.UserID  `json:"user_id"`
	Algorithm string         `json:"alg"`
	Params    PasswordParams `json:"params"`
	Salt      []byte         `json:"salt"`
	Hash      []byte         `json:"hash"`
	// Stamp is 32 random bytes, new whenever the password itself changes
	// and kept when only the hash is redone with stronger parameters.
	// Secure badges are sealed under a key derived from it, so a password
	// change invalidates them all at once.
	Stamp []byte    `json:"stamp"`
	SetAt time.Time `json:"set_at"`
}

// CredentialFingerprint names a password credential (by its stamp)
// without revealing it: the first 8 bytes of SHA-256("qrauth badge
// credential" || stamp).
func CredentialFingerprint(stamp []byte) []byte {
	h := sha256.New()
	h.Write([]byte("qrauth badge credential"))
	h.Write(stamp)
	return h.Sum(nil)[:8]
}

// Password limits, in characters and bytes.
const (
	MinPasswordChars = 8
	MaxPasswordBytes = 1024
)

// CheckPassword checks a new password: valid UTF-8, at least
// MinPasswordChars characters, at most MaxPasswordBytes bytes, no NUL.
// Passwords are taken as typed: no trimming, any script, spaces allowed.
func CheckPassword(pw string) error {
	switch {
	case !utf8.ValidString(pw) || strings.ContainsRune(pw, 0):
		return qrauth.Errorf(qrauth.EINVALID, "invalid_password", "The password contains characters that cannot be used.")
	case utf8.RuneCountInString(pw) < MinPasswordChars:
		return qrauth.Errorf(qrauth.EINVALID, "password_too_short", "The password must have at least %d characters.", MinPasswordChars)
	case len(pw) > MaxPasswordBytes:
		return qrauth.Errorf(qrauth.EINVALID, "password_too_long", "The password must be at most %d bytes long.", MaxPasswordBytes)
	}
	return nil
}
