package badge

import (
	"context"
	"time"

	"github.com/qrauth/qrauth"
)

// Store is the part of the store that the badge flow consumes (passwords
// and badge records). Its methods follow the contract stated on
// qrauth.Store; the bbolt store implements it and store/storetest.RunBadge
// is its conformance suite.
type Store interface {
	// SetPassword stores p as the password of p.UserID. It replaces the
	// current password only if that one's Stamp equals prevStamp; with a
	// nil prevStamp the user must have no password yet. So two changes
	// that race cannot both win, and a change never overwrites a password
	// its caller has not checked. ENOTFOUND "user_not_found" if the user
	// does not exist; ECONFLICT "password_changed" if the current
	// password is not the one prevStamp names (or exists when prevStamp
	// is nil); EINVALID "invalid_argument" if p lacks a salt, hash or
	// stamp.
	SetPassword(ctx context.Context, p *Password, prevStamp []byte, events ...*qrauth.AuditEvent) error
	// FindPassword returns the user's password credential, ENOTFOUND
	// "no_password" if the user has none (or does not exist).
	FindPassword(ctx context.Context, id qrauth.UserID) (*Password, error)
	// DeletePassword removes the user's password if its Stamp equals
	// prevStamp. ENOTFOUND "no_password" if there is none; ECONFLICT
	// "password_changed" if the stamp differs.
	DeletePassword(ctx context.Context, id qrauth.UserID, prevStamp []byte, events ...*qrauth.AuditEvent) error

	// CreateBadge stores the record of a newly issued badge. ENOTFOUND
	// "user_not_found" if b.UserID does not exist; ECONFLICT
	// "badge_exists" if b.ID does; EINVALID "invalid_argument" for an
	// unknown kind or an insecure badge with an expiry.
	CreateBadge(ctx context.Context, b *Badge, events ...*qrauth.AuditEvent) error
	// FindBadgeByID returns a badge record, revoked or not. ENOTFOUND
	// "badge_not_found".
	FindBadgeByID(ctx context.Context, id ID) (*Badge, error)
	// FindBadgesByUser returns the user's badges, revoked ones included,
	// oldest first.
	FindBadgesByUser(ctx context.Context, id qrauth.UserID) ([]*Badge, error)
	// RevokeBadge marks a badge revoked at at by by and returns it.
	// ENOTFOUND "badge_not_found"; ECONFLICT "badge_revoked" if it was
	// revoked already (the first revocation's record stays).
	RevokeBadge(ctx context.Context, id ID, at time.Time, by string, events ...*qrauth.AuditEvent) (*Badge, error)
}
