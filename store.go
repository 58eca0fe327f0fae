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
	// TouchDevice sets the device's LastSeenAt.
	TouchDevice(ctx context.Context, id DeviceID, at time.Time) error

	// CreateSession stores s, records s.IP as an address the user has
	// signed in from (see KnownAddress) and sets LastSeenAt of s.DeviceID
	// (if set) to s.CreatedAt. ENOTFOUND if the user does not exist,
	// ECONFLICT "session_exists" if s.ID or s.TokenHash exists.
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
