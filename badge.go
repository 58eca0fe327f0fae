package qrauth

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"io"
	"strings"
	"time"
	"unicode/utf8"
)

// Printed login badges (as RapidIdentity's QR codes) and passwords, the
// optional credential that secure badges are sealed under. See
// docs/badge.md for the flows and the policy.

// Audit event types of the badge flow and of passwords. Details name the
// actor and the badge, never a password or a badge payload.
const (
	AuditPasswordSet     = "password_set"     // a first password
	AuditPasswordChanged = "password_changed" // a new password replaced the old one
	AuditPasswordRemoved = "password_removed"
	AuditBadgeIssued     = "badge_issued"
	AuditBadgeRevoked    = "badge_revoked"
)

// BadgeKind says what a badge replaces at sign-in.
type BadgeKind string

// Badge kinds.
const (
	// BadgeInsecure stands in for a username only: it identifies its
	// holder and never expires, so a second factor must follow it.
	BadgeInsecure BadgeKind = "insecure"
	// BadgeSecure stands in for username and password: it is sealed under
	// a key derived from the holder's current password credential, so a
	// password change invalidates it.
	BadgeSecure BadgeKind = "secure"
)

// ValidBadgeKind reports whether k is a known kind.
func ValidBadgeKind(k BadgeKind) bool { return k == BadgeInsecure || k == BadgeSecure }

// BadgeID identifies a badge: "b_" and 16 random bytes in base64url. It is
// stable for the badge's life, opaque, and never derived from the
// username, e-mail or PhoneIdHash.
type BadgeID string

// badgeIDLen is the length of the random part of a BadgeID, in bytes.
const badgeIDLen = 16

// NewBadgeID returns a fresh random badge id.
func NewBadgeID(r io.Reader) (BadgeID, error) {
	b := make([]byte, badgeIDLen)
	if _, err := io.ReadFull(r, b); err != nil {
		return "", err
	}
	return BadgeIDFromBytes(b), nil
}

// BadgeIDFromBytes is the BadgeID of 16 raw bytes, as a badge payload
// carries them.
func BadgeIDFromBytes(b []byte) BadgeID {
	return BadgeID("b_" + base64.RawURLEncoding.EncodeToString(b))
}

// Bytes returns the 16 raw bytes of id, or false if id is not of the form
// NewBadgeID makes.
func (id BadgeID) Bytes() ([]byte, bool) {
	s, ok := strings.CutPrefix(string(id), "b_")
	if !ok || len(s) != 22 {
		return nil, false
	}
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil || len(b) != badgeIDLen || BadgeIDFromBytes(b) != id {
		return nil, false
	}
	return b, true
}

// Badge is the record of one issued badge. The payload printed on it is
// not stored: it is made again from the id only by a server holding the
// deployment's master key.
type Badge struct {
	ID     BadgeID   `json:"id"`
	UserID UserID    `json:"user_id"`
	Kind   BadgeKind `json:"kind"`
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
	BadgePrefixInsecure = "QRB1I."
	BadgePrefixSecure   = "QRB1S."
	// MaxBadgePayloadLen bounds what a scan may send.
	MaxBadgePayloadLen = 256
)

// Lengths of the authenticator after the id: a 16-byte tag, or a GCM
// nonce, the sealed 16-byte id and a 16-byte GCM tag.
const (
	badgeInsecureAuthLen = 16
	badgeSecureAuthLen   = 12 + badgeIDLen + 16
)

// BadgePayload is a parsed badge payload.
type BadgePayload struct {
	Kind BadgeKind
	ID   BadgeID
	// Auth is the tag (insecure) or nonce || ciphertext (secure).
	Auth []byte
}

// String returns the payload text.
func (p *BadgePayload) String() string {
	prefix := BadgePrefixInsecure
	if p.Kind == BadgeSecure {
		prefix = BadgePrefixSecure
	}
	raw, _ := p.ID.Bytes()
	return prefix + base64.RawURLEncoding.EncodeToString(append(raw, p.Auth...))
}

// ParseBadgePayload parses the text of a scanned QR code. It returns
// EINVALID "not_a_badge" for text that is not a badge of any kind (another
// QR code held to the camera) and ErrBadgeInvalid for a badge prefix
// followed by anything but the exact bytes of that kind.
func ParseBadgePayload(s string) (*BadgePayload, error) {
	notBadge := Errorf(EINVALID, "not_a_badge", "This QR code is not a qrauth badge.")
	if len(s) > MaxBadgePayloadLen {
		return nil, notBadge
	}
	var p BadgePayload
	var rest string
	var authLen int
	if r, ok := strings.CutPrefix(s, BadgePrefixInsecure); ok {
		p.Kind, rest, authLen = BadgeInsecure, r, badgeInsecureAuthLen
	} else if r, ok := strings.CutPrefix(s, BadgePrefixSecure); ok {
		p.Kind, rest, authLen = BadgeSecure, r, badgeSecureAuthLen
	} else {
		return nil, notBadge
	}
	// Go's base64 skips \r and \n even in strict mode; a badge is one
	// canonical string, so anything but the alphabet is refused first.
	if !ValidToken(rest, 0, len(rest)) {
		return nil, ErrBadgeInvalid
	}
	b, err := base64.RawURLEncoding.Strict().DecodeString(rest)
	if err != nil || len(b) != badgeIDLen+authLen {
		return nil, ErrBadgeInvalid
	}
	p.ID = BadgeIDFromBytes(b[:badgeIDLen])
	p.Auth = bytes.Clone(b[badgeIDLen:])
	return &p, nil
}

// ErrBadgeInvalid is the one answer for a badge that is damaged, altered,
// unknown or issued by another deployment: telling these apart would only
// help someone forging badges.
var ErrBadgeInvalid = Errorf(EUNAUTHORIZED, "badge_invalid",
	"This badge is not valid here: it may be damaged or altered, or it was issued by another service.")

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
	UserID    UserID         `json:"user_id"`
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
		return Errorf(EINVALID, "invalid_password", "The password contains characters that cannot be used.")
	case utf8.RuneCountInString(pw) < MinPasswordChars:
		return Errorf(EINVALID, "password_too_short", "The password must have at least %d characters.", MinPasswordChars)
	case len(pw) > MaxPasswordBytes:
		return Errorf(EINVALID, "password_too_long", "The password must be at most %d bytes long.", MaxPasswordBytes)
	}
	return nil
}

// BadgeStore is the part of Store that the badge flow needs. Its methods
// follow the contract stated on Store.
type BadgeStore interface {
	// SetPassword stores p as the password of p.UserID. It replaces the
	// current password only if that one's Stamp equals prevStamp; with a
	// nil prevStamp the user must have no password yet. So two changes
	// that race cannot both win, and a change never overwrites a password
	// its caller has not checked. ENOTFOUND "user_not_found" if the user
	// does not exist; ECONFLICT "password_changed" if the current
	// password is not the one prevStamp names (or exists when prevStamp
	// is nil); EINVALID "invalid_argument" if p lacks a salt, hash or
	// stamp.
	SetPassword(ctx context.Context, p *Password, prevStamp []byte, events ...*AuditEvent) error
	// FindPassword returns the user's password credential, ENOTFOUND
	// "no_password" if the user has none (or does not exist).
	FindPassword(ctx context.Context, id UserID) (*Password, error)
	// DeletePassword removes the user's password if its Stamp equals
	// prevStamp. ENOTFOUND "no_password" if there is none; ECONFLICT
	// "password_changed" if the stamp differs.
	DeletePassword(ctx context.Context, id UserID, prevStamp []byte, events ...*AuditEvent) error

	// CreateBadge stores the record of a newly issued badge. ENOTFOUND
	// "user_not_found" if b.UserID does not exist; ECONFLICT
	// "badge_exists" if b.ID does; EINVALID "invalid_argument" for an
	// unknown kind or an insecure badge with an expiry.
	CreateBadge(ctx context.Context, b *Badge, events ...*AuditEvent) error
	// FindBadgeByID returns a badge record, revoked or not. ENOTFOUND
	// "badge_not_found".
	FindBadgeByID(ctx context.Context, id BadgeID) (*Badge, error)
	// FindBadgesByUser returns the user's badges, revoked ones included,
	// oldest first.
	FindBadgesByUser(ctx context.Context, id UserID) ([]*Badge, error)
	// RevokeBadge marks a badge revoked at at by by and returns it.
	// ENOTFOUND "badge_not_found"; ECONFLICT "badge_revoked" if it was
	// revoked already (the first revocation's record stays).
	RevokeBadge(ctx context.Context, id BadgeID, at time.Time, by string, events ...*AuditEvent) (*Badge, error)
}
