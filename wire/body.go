package wire

import (
	"time"

	"github.com/qrauth/qrauth"
	"github.com/qrauth/qrauth/offline"
)

// SessionInfo is one signed-in browser of an account, as the session lists
// show it: the browser's own list (GET PathSessions) and the device-signed
// list of the app (GET PathAppSessions).
type SessionInfo struct {
	ID         qrauth.SessionID `json:"id"`
	IP         string           `json:"ip"`
	Browser    string           `json:"browser"`
	OS         string           `json:"os"`
	UserAgent  string           `json:"user_agent"`
	CreatedAt  time.Time        `json:"created_at"`
	LastSeenAt time.Time        `json:"last_seen_at"`
	ExpiresAt  time.Time        `json:"expires_at"`
	// Current marks the session of the browser that asks; always false in
	// the app's list.
	Current bool `json:"current"`
}

// SessionList is the answer of GET PathAppSessions.
type SessionList struct {
	Sessions []SessionInfo `json:"sessions"`
}

// OfflineMethodList is the answer of GET PathAppOffline: the device's
// methods and the deployment's settings.
type OfflineMethodList struct {
	MaxAttempts int                 `json:"max_attempts"`
	Methods     []OfflineMethodInfo `json:"methods"`
	OTPLength   int                 `json:"otp_length"`
}

// TransactionDecisionResponse is the answer to a TransactionDecisionRequest
// (POST PathAppApproval): the transaction and its state after the decision.
type TransactionDecisionResponse struct {
	ID     string                `json:"id"`
	Status offline.ApprovalState `json:"status"`
}
