package qrauth

import "time"

// Session is a signed-in browser. The store keeps only TokenHash, the
// SHA-256 of the cookie value, so reading the database does not let anyone
// sign in.
type Session struct {
	ID         SessionID `json:"id"`
	UserID     UserID    `json:"user_id"`
	TokenHash  []byte    `json:"token_hash"`
	DeviceID   DeviceID  `json:"device_id"` // the phone that approved it
	IP         string    `json:"ip"`
	UserAgent  string    `json:"user_agent"`
	CreatedAt  time.Time `json:"created_at"`
	ExpiresAt  time.Time `json:"expires_at"`
	LastSeenAt time.Time `json:"last_seen_at"`
}

// Expired reports whether s is no longer valid at now.
func (s *Session) Expired(now time.Time) bool { return !now.Before(s.ExpiresAt) }
