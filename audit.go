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
	AuditBackup        = "backup" // the operator took an online backup
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
}
