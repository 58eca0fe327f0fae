package badge

import (
	"bytes"
	"encoding/base64"
	"io"
	"strings"
	"time"

	"github.com/qrauth/qrauth"
)

// Audit event types of the badge flow and of passwords. Details name the
// actor and the badge, never a password or a badge payload.
const (
	AuditPasswordSet     = "password_set"     // a first password
	AuditPasswordChanged = "password_changed" // a new password replaced the old one
	AuditPasswordRemoved = "password_removed"
	AuditIssued          = "badge_issued"
	AuditRevoked         = "badge_revoked"
)

// Kind says what a badge replaces at sign-in.
type Kind string

// Badge kinds.
const (
	// Insecure stands in for a username only: it identifies its
	// holder and never expires, so a second factor must follow it.
	Insecure Kind = "insecure"
	// Secure stands in for username and password: it is sealed under
	// a key derived from the holder's current password credential, so a
	// password change invalidates it.
	Secure Kind = "secure"
)

// ValidKind reports whether k is a known kind.
func ValidKind(k Kind) bool { return k == Insecure || k == Secure }

// ID identifies a badge: "b_" and 16 random bytes in base64url. It is
// stable for the badge's life, opaque, and never derived from the
// username, e-mail or PhoneIdHash.
type ID string

// badgeIDLen is the length of the random part of an ID, in bytes.
const badgeIDLen = 16

// NewID returns a fresh random badge id.
func NewID(r io.Reader) (ID, error) {
	b := make([]byte, badgeIDLen)
	if _, err := io.ReadFull(r, b); err != nil {
		return "", err
	}
	return IDFromBytes(b), nil
}

// IDFromBytes is the ID of 16 raw bytes, as a badge payload
// carries them.
func IDFromBytes(b []byte) ID {
	return ID("b_" + base64.RawURLEncoding.EncodeToString(b))
}

// Bytes returns the 16 raw bytes of id, or false if id is not of the form
// NewID makes.
func (id ID) Bytes() ([]byte, bool) {
	s, ok := strings.CutPrefix(string(id), "b_")
	if !ok || len(s) != 22 {
		return nil, false
	}
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil || len(b) != badgeIDLen || IDFromBytes(b) != id {
		return nil, false
	}
	return b, true
}

// Badge is the record of one issued badge. The payload printed on it is
// not stored: it is made again from the id only by a server holding the
// deployment's master key.
type Badge struct {
	ID     ID            `json:"id"`
	UserID qrauth.UserID `json:"user_id"`
	Kind   Kind          `json:"kind"`
	// CreatedBy is who issued it: "self", "operator" or the issuing
	// user's id.
	CreatedBy string    `json:"created_by"`
	CreatedAt time.Time `json:"created_at"`
	// ExpiresAt is zero for "never"; insecure badges never expire.
	ExpiresAt time.Time `json:"expires_at,omitzero"`
	// Credential is, for a secure badge, the CredentialFingerprint of the
	// password credential it was sealed under. It only lets the server
	// say "the password changed" instead of "not valid"; the seal itself
	// is what refuses the badge.
	Credential []byte    `json:"credential,omitempty"`
	RevokedAt  time.Time `json:"revoked_at,omitzero"`
	RevokedBy  string    `json:"revoked_by,omitempty"`
}

// Revoked reports whether b has been revoked.
func (b *Badge) Revoked() bool { return !b.RevokedAt.IsZero() }

// Expired reports whether b has an expiry that has passed at now.
func (b *Badge) Expired(now time.Time) bool { return !b.ExpiresAt.IsZero() && !now.Before(b.ExpiresAt) }

// Active reports whether b may still sign anyone in (as far as its record
// goes: a secure badge also needs the password it was sealed under).
func (b *Badge) Active(now time.Time) bool { return !b.Revoked() && !b.Expired(now) }

// Badge payloads: the text of a badge's QR code. Two forms, each a prefix
// and base64url (no padding) of fixed-length bytes:
//
//	QRB1I.<id[16] || tag[16]>                  insecure: tag = HMAC under the deployment's badge key
//	QRB1S.<id[16] || nonce[12] || sealed[32]>  secure: AES-256-GCM of id under the holder's credential key
//
// The server checks the tag or opens the seal; this package only parses.
const (
	PrefixInsecure = "QRB1I."
	PrefixSecure   = "QRB1S."
	// MaxPayloadLen bounds what a scan may send.
	MaxPayloadLen = 256
)

// Lengths of the authenticator after the id: a 16-byte tag, or a GCM
// nonce, the sealed 16-byte id and a 16-byte GCM tag.
const (
	badgeInsecureAuthLen = 16
	badgeSecureAuthLen   = 12 + badgeIDLen + 16
)

// Payload is a parsed badge payload.
type Payload struct {
	Kind Kind
	ID   ID
	// Auth is the tag (insecure) or nonce || ciphertext (secure).
	Auth []byte
}

// String returns the payload text.
func (p *Payload) String() string {
	prefix := PrefixInsecure
	if p.Kind == Secure {
		prefix = PrefixSecure
	}
	raw, _ := p.ID.Bytes()
	return prefix + base64.RawURLEncoding.EncodeToString(append(raw, p.Auth...))
}

// ParsePayload parses the text of a scanned QR code. It returns
// EINVALID "not_a_badge" for text that is not a badge of any kind (another
// QR code held to the camera) and ErrInvalid for a badge prefix
// followed by anything but the exact bytes of that kind.
func ParsePayload(s string) (*Payload, error) {
	notBadge := qrauth.Errorf(qrauth.EINVALID, "not_a_badge", "This QR code is not a qrauth badge.")
	if len(s) > MaxPayloadLen {
		return nil, notBadge
	}
	var p Payload
	var rest string
	var authLen int
	if r, ok := strings.CutPrefix(s, PrefixInsecure); ok {
		p.Kind, rest, authLen = Insecure, r, badgeInsecureAuthLen
	} else if r, ok := strings.CutPrefix(s, PrefixSecure); ok {
		p.Kind, rest, authLen = Secure, r, badgeSecureAuthLen
	} else {
		return nil, notBadge
	}
	// Go's base64 skips \r and \n even in strict mode; a badge is one
	// canonical string, so anything but the alphabet is refused first.
	if !qrauth.ValidToken(rest, 0, len(rest)) {
		return nil, ErrInvalid
	}
	b, err := base64.RawURLEncoding.Strict().DecodeString(rest)
	if err != nil || len(b) != badgeIDLen+authLen {
		return nil, ErrInvalid
	}
	p.ID = IDFromBytes(b[:badgeIDLen])
	p.Auth = bytes.Clone(b[badgeIDLen:])
	return &p, nil
}

// ErrInvalid is the one answer for a badge that is damaged, altered,
// unknown or issued by another deployment: telling these apart would only
// help someone forging badges.
var ErrInvalid = qrauth.Errorf(qrauth.EUNAUTHORIZED, "badge_invalid",
	"This badge is not valid here: it may be damaged or altered, or it was issued by another service.")
