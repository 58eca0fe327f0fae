package qrauth

import (
	"context"
	"time"
)

// Store is the durable state the server needs. The bbolt implementation in
// package store is the embedded default; every implementation must pass the
// conformance suite in store/storetest.
//
// Contract shared by all methods:
//   - Lookups of missing records return an *Error with code ENOTFOUND.
//   - A method that fails changes nothing.
//   - Audit events passed to a mutating method are appended in the same
//     transaction as the change: both happen or neither does. The store
//     assigns each event its Seq.
//   - Returned values are copies; callers may modify them.
//   - A method that returned nil has made its change durable.
type Store interface {
	// Secret returns the named deployment secret (such as the phone salt),
	// creating it with create on first use. Concurrent callers get the same
	// value.
	Secret(ctx context.Context, name string, create func() ([]byte, error)) ([]byte, error)

	// CreateUser creates u with its first device d and indexes d's
	// PhoneIDHash to u. ECONFLICT "phone_taken" if that hash already belongs
	// to a user, ECONFLICT "device_exists" if d.ID exists, ECONFLICT
	// "user_exists" if u.ID exists.
	CreateUser(ctx context.Context, u *User, d *Device, events ...*AuditEvent) error
	FindUserByID(ctx context.Context, id UserID) (*User, error)
	// FindUserByPhoneIDHash looks a user up by any PhoneIDHash of any of
	// the user's devices.
	FindUserByPhoneIDHash(ctx context.Context, phoneIDHash string) (*User, error)
	// UpdateProfile replaces the user's name and e-mail.
	UpdateProfile(ctx context.Context, id UserID, p Profile, events ...*AuditEvent) (*User, error)
	// SetRoles replaces the user's roles.
	SetRoles(ctx context.Context, id UserID, roles []Role, events ...*AuditEvent) (*User, error)
	// DisableUser marks the user disabled with d and, in the same
	// transaction, ends every session of the user (and what a relying
	// site holds through them: OpenID Connect tokens and requests). It
	// returns the user and how many sessions ended. Disabling a disabled
	// user replaces d. CreateSession refuses a disabled user's session
	// with ErrAccountDisabled, so no sign-in under way outlives it.
	DisableUser(ctx context.Context, id UserID, d Disabled, events ...*AuditEvent) (*User, int, error)
	// EnableUser clears the user's Disabled. Enabling an enabled user
	// changes nothing but still appends events.
	EnableUser(ctx context.Context, id UserID, events ...*AuditEvent) (*User, error)
	// DeleteUser removes the user and everything of theirs, core and
	// flows alike, in one transaction: devices, every phone hash indexed
	// to them (the number can sign up afresh), sessions, addresses, offline
	// credentials, sessions and approvals, OATH, passwords, badges, OpenID
	// Connect requests, tokens and consents. The user's audit events stay,
	// in their place in the sequence, but lose their user, device, session,
	// address and detail (they keep time, type and actor). ENOTFOUND if the
	// user does not exist.
	DeleteUser(ctx context.Context, id UserID, events ...*AuditEvent) error
	// ListUsers returns up to limit users (0 means 100, at most 1000)
	// with ids greater than after, in id order.
	ListUsers(ctx context.Context, after UserID, limit int) ([]*User, error)

	// CreateDevice adds d to the existing user d.UserID and indexes its
	// PhoneIDHash to that user. ENOTFOUND if the user does not exist,
	// ECONFLICT "device_exists" if d.ID exists, ECONFLICT "phone_taken" if
	// the hash belongs to another user.
	CreateDevice(ctx context.Context, d *Device, events ...*AuditEvent) error
	FindDeviceByID(ctx context.Context, id DeviceID) (*Device, error)
	// FindDevicesByUser returns the user's devices, oldest first.
	FindDevicesByUser(ctx context.Context, id UserID) ([]*Device, error)
	// DeleteDevice removes a device: its key no longer signs anything in.
	// Its PhoneIDHash stays indexed to the user. ENOTFOUND if it does not
	// exist.
	DeleteDevice(ctx context.Context, id DeviceID, events ...*AuditEvent) error
	// RemoveDevice is DeleteDevice that also ends, in the same
	// transaction, every session the device approved: an administrator
	// removing a phone takes back what it let in. It returns how many
	// sessions ended.
	RemoveDevice(ctx context.Context, id DeviceID, events ...*AuditEvent) (int, error)
	// TouchDevice sets the device's LastSeenAt.
	TouchDevice(ctx context.Context, id DeviceID, at time.Time) error

	// CreateSession stores s, records s.IP as an address the user has
	// signed in from (see KnownAddress) and sets LastSeenAt of s.DeviceID
	// (if set) to s.CreatedAt. ENOTFOUND if the user does not exist,
	// ErrAccountDisabled if the user is disabled, ECONFLICT
	// "session_exists" if s.ID or s.TokenHash exists.
	CreateSession(ctx context.Context, s *Session, events ...*AuditEvent) error
	FindSessionByID(ctx context.Context, id SessionID) (*Session, error)
	// FindSessionByTokenHash returns the session whatever its expiry; the
	// caller checks Expired.
	FindSessionByTokenHash(ctx context.Context, tokenHash []byte) (*Session, error)
	// FindSessionsByUser returns the user's sessions, newest first,
	// including expired ones not yet purged.
	FindSessionsByUser(ctx context.Context, id UserID) ([]*Session, error)
	// TouchSession sets the session's LastSeenAt.
	TouchSession(ctx context.Context, id SessionID, at time.Time) error
	// DeleteSession removes a session. ENOTFOUND if it does not exist.
	DeleteSession(ctx context.Context, id SessionID, events ...*AuditEvent) error
	// DeleteExpiredSessions removes sessions expired at now and returns
	// how many it removed.
	DeleteExpiredSessions(ctx context.Context, now time.Time) (int, error)

	// KnownAddress reports whether a session of the user was ever created
	// from ip.
	KnownAddress(ctx context.Context, id UserID, ip string) (bool, error)

	// AppendAudit appends events to the audit log.
	AppendAudit(ctx context.Context, events ...*AuditEvent) error
	// ListAudit returns events in Seq order matching f.
	ListAudit(ctx context.Context, f AuditFilter) ([]*AuditEvent, error)

	// Close flushes and releases the store.
	Close() error

	// The flows beside the core consume their own store interfaces
	// (badge.Store, oath.Store, offline.Store, oidc.Store) and are given the
	// store that implements them (store.DB implements all).
}

// AuditFilter selects audit events. Zero fields do not filter. Limit 0
// means 100; at most 1000 are returned.
type AuditFilter struct {
	UserID   UserID
	AfterSeq uint64
	Limit    int
}
