// Package oath holds the domain of the OATH flow (server/oathflow): tokens,
// accounts, the store interface the flow consumes (Store, implemented by
// store.DB) and its audit event types.
package oath

import (
	"context"
	"strings"
	"time"

	"github.com/qrauth/qrauth"
)

// ErrNotFound: the user has no OATH account (Store). Compare with
// errors.Is.
var ErrNotFound = &qrauth.Error{Code: qrauth.ENOTFOUND, Reason: "oath_not_found", Message: "This account has no authenticator app enrolled."}

// OATH one-time passwords (RFC 4226 HOTP, RFC 6238 TOTP) as a second
// factor: a person enrols an authenticator app (Google Authenticator,
// FreeOTP, …) by scanning an otpauth:// QR code, and types its current code
// after the QR sign-in.

// Audit event types of the oath flow. Their Detail names the actor
// ("by operator", "by u_…", "by the user") and the token id, never the
// secret or a code.
const (
	AuditSecretAdded   = "oath_secret_added"
	AuditSecretViewed  = "oath_secret_viewed"
	AuditSecretDeleted = "oath_secret_deleted"
	AuditLetterOrdered = "oath_letter_ordered"
	AuditLocked        = "oath_locked"
	AuditUnlocked      = "oath_unlocked"
)

// Kind is the kind of one-time password.
type Kind string

// OATH kinds.
const (
	TOTP Kind = "totp" // RFC 6238: the counter is the time step
	HOTP Kind = "hotp" // RFC 4226: the counter counts button presses
)

// Algorithm is the HMAC hash of a token.
type Algorithm string

// OATH algorithms. SHA1 is what every common app supports.
const (
	SHA1   Algorithm = "SHA1"
	SHA256 Algorithm = "SHA256"
	SHA512 Algorithm = "SHA512"
)

// Sources of an OATH token.
const (
	SourceAccount = "account" // enrolled by the user on the account page
	SourceSignIn  = "signin"  // enrolled during a sign-in that required it
	SourceLetter  = "letter"  // created for an activation letter
)

// Token is one OATH secret and its parameters.
type Token struct {
	// ID names the token in audit events and letters; it is random and
	// says nothing about the secret.
	ID        string    `json:"id"`
	Kind      Kind      `json:"kind"`
	Algorithm Algorithm `json:"algorithm"`
	Digits    int       `json:"digits"`
	// Period is the TOTP time step in seconds; 0 for HOTP.
	Period int `json:"period,omitempty"`
	// Secret is the shared secret sealed by the server (AES-256-GCM under
	// the operator's master key, with the user id as associated data). A
	// store keeps it as opaque bytes and never sees the plain secret.
	Secret    []byte    `json:"secret"`
	Source    string    `json:"source"`
	CreatedAt time.Time `json:"created_at"`
}

// Account is a user's OATH second factor. A user has at most one. The
// account exists once an enrolment has started; it is active once Token is
// set.
type Account struct {
	UserID qrauth.UserID `json:"user_id"`
	// Token is the active token, nil until an enrolment is confirmed or a
	// letter created one.
	Token *Token `json:"token,omitempty"`
	// Pending is a token shown to the user and awaiting its first code.
	// It replaces Token only once confirmed, so a half-done re-enrolment
	// never locks anybody out.
	Pending     *Token    `json:"pending,omitempty"`
	ActivatedAt time.Time `json:"activated_at"`

	// NextCounter is the lowest counter (HOTP) or time step (TOTP) still
	// acceptable. Every accepted code moves it past its own counter, so a
	// code is never accepted twice (replay detection), and for HOTP it is
	// the resynchronised event counter.
	NextCounter uint64 `json:"next_counter"`
	// Offset is the TOTP drift: the time steps by which the token's clock
	// was ahead (positive) or behind at the last accepted code.
	Offset int64 `json:"offset"`

	// Failures counts wrong codes since the last accepted one; at the
	// configured limit the account locks until an administrator unlocks it.
	Failures   int       `json:"failures"`
	LockedAt   time.Time `json:"locked_at"`
	LastUsedAt time.Time `json:"last_used_at"`
}

// Active reports whether a has a confirmed token.
func (a *Account) Active() bool { return a != nil && a.Token != nil }

// Locked reports whether too many wrong codes have locked a.
func (a *Account) Locked() bool { return a != nil && !a.LockedAt.IsZero() }

// Use is an accepted code.
type Use struct {
	// TokenID is the token the code was checked against; a store refuses
	// the use if the token was replaced in the meantime.
	TokenID string
	// Counter is the HOTP counter or TOTP time step the code matched.
	Counter uint64
	// Offset is the new TOTP drift in time steps (0 for HOTP).
	Offset int64
	At     time.Time
}

// Store is the part of Store that the oath flow needs. Its methods
// follow the contract stated on Store. Every method that takes a user id
// returns ENOTFOUND "user_not_found" if there is no such user; methods on an
// account return ENOTFOUND "oath_not_found" if the user has none.
//
// Replay detection lives here: RecordOATHUse and ActivateOATHPending accept
// a counter only if it is at least NextCounter, checked and advanced in one
// transaction, so two requests (or two instances sharing a store) racing
// with the same code cannot both succeed.
type Store interface {
	// FindOATHAccount returns the user's OATH account.
	FindOATHAccount(ctx context.Context, id qrauth.UserID) (*Account, error)

	// PutOATHPending stores t as the user's pending token, creating the
	// account if needed and replacing an earlier pending token. The active
	// token, if any, is untouched.
	PutOATHPending(ctx context.Context, id qrauth.UserID, t *Token, events ...*qrauth.AuditEvent) (*Account, error)

	// ActivateOATHPending makes the pending token with id use.TokenID the
	// active token: it replaces the old one, clears failures and the lock,
	// sets ActivatedAt and LastUsedAt to use.At, NextCounter to
	// use.Counter+1 and Offset to use.Offset. ECONFLICT "oath_pending_changed"
	// if there is no pending token with that id.
	ActivateOATHPending(ctx context.Context, id qrauth.UserID, use Use, events ...*qrauth.AuditEvent) (*Account, error)

	// CreateOATHToken makes t the user's active token, for an account that
	// has none (an activation letter), dropping any pending token.
	// NextCounter, Offset and Failures start at 0. ECONFLICT "oath_exists"
	// if the user already has an active token.
	CreateOATHToken(ctx context.Context, id qrauth.UserID, t *Token, events ...*qrauth.AuditEvent) (*Account, error)

	// RecordOATHUse records an accepted code: NextCounter becomes
	// use.Counter+1, Offset use.Offset, LastUsedAt use.At, Failures 0.
	// ECONFLICT "oath_replayed" if use.Counter < NextCounter, ECONFLICT
	// "oath_changed" if the active token is not use.TokenID, EFORBIDDEN
	// "oath_locked" if the account is locked.
	RecordOATHUse(ctx context.Context, id qrauth.UserID, use Use, events ...*qrauth.AuditEvent) (*Account, error)

	// RecordOATHFailure counts a wrong code against the active token
	// tokenID. When Failures reaches limit (limit > 0) the account locks
	// at at, and then, and only then, onLock events are appended.
	// EFORBIDDEN "oath_locked" if it was already locked, ECONFLICT
	// "oath_changed" if the active token is not tokenID.
	RecordOATHFailure(ctx context.Context, id qrauth.UserID, tokenID string, at time.Time, limit int, onLock ...*qrauth.AuditEvent) (*Account, error)

	// UnlockOATHAccount clears the lock and the failure count. ECONFLICT
	// "oath_not_locked" if the account is not locked.
	UnlockOATHAccount(ctx context.Context, id qrauth.UserID, events ...*qrauth.AuditEvent) (*Account, error)

	// DeleteOATHAccount removes the user's OATH account with its tokens.
	DeleteOATHAccount(ctx context.Context, id qrauth.UserID, events ...*qrauth.AuditEvent) error
}

// NormalizeCode removes the spaces and dashes people type or paste
// ("123 456") and checks that digits digits remain. EINVALID "invalid_code".
func NormalizeCode(code string, digits int) (string, error) {
	var b strings.Builder
	for _, r := range code {
		switch {
		case r == ' ' || r == '-' || r == '\t':
		case r >= '0' && r <= '9' && b.Len() < 16:
			b.WriteRune(r)
		default:
			return "", qrauth.Errorf(qrauth.EINVALID, "invalid_code", "Enter the %d-digit code your authenticator app shows.", digits)
		}
	}
	if b.Len() != digits {
		return "", qrauth.Errorf(qrauth.EINVALID, "invalid_code", "Enter the %d-digit code your authenticator app shows.", digits)
	}
	return b.String(), nil
}
