package qrauth

import "time"

// Audit event types.
const (
	AuditSignUp        = "signup"
	AuditSignIn        = "signin"
	AuditDenied        = "denied"
	AuditSignOut       = "signout"
	AuditRevoked       = "session_revoked"
	AuditDeviceLinked  = "device_linked"
	AuditDeviceRemoved = "device_removed"
	AuditRolesChanged  = "roles_changed"
	AuditProfile       = "profile_changed"
	AuditUserDisabled  = "user_disabled"
	AuditUserEnabled   = "user_enabled"
	// AuditUserDeleted is kept when an account is deleted. It names no
	// user: the account's own events lose their user, device, session,
	// address and detail at the same time (see Store.DeleteUser).
	AuditUserDeleted  = "user_deleted"
	AuditUserExported = "user_exported"
	AuditBackup       = "backup" // the operator took an online backup
)

// AuditEvent is one entry of the append-only audit log. Seq is assigned by
// the store, increasing, never reused. Detail never holds a secret.
type AuditEvent struct {
	Seq       uint64    `json:"seq"`
	Time      time.Time `json:"time"`
	Type      string    `json:"type"`
	UserID    UserID    `json:"user_id,omitempty"`
	DeviceID  DeviceID  `json:"device_id,omitempty"`
	SessionID SessionID `json:"session_id,omitempty"`
	IP        string    `json:"ip,omitempty"`
	Detail    string    `json:"detail,omitempty"`
	// Actor is who performed an administrative action: "operator" or the
	// administrator's user id. Empty for what people do to their own
	// account. It outlives the deletion of the account acted on, so the
	// log keeps who did what even then.
	Actor string `json:"actor,omitempty"`
}
