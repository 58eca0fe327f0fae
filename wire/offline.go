package wire

import (
	"time"

	"github.com/qrauth/qrauth"
	"github.com/qrauth/qrauth/offline"
)

// OfflineActivation is the server's answer to an activation: the method
// key, sent this once over the signed, TLS-protected call and never again.
type OfflineActivation struct {
	Method   offline.Method  `json:"method"`
	DeviceID qrauth.DeviceID `json:"device_id"`
	UserID   qrauth.UserID   `json:"user_id"`
	Origin   string          `json:"origin"`
	// Key is the 32-byte method key, base64url without padding.
	Key   string `json:"key"`
	KeyID string `json:"key_id"`
	// OTPLength and MaxAttempts are the deployment's settings at
	// activation, for information: the length of each code is read from
	// its verification data.
	OTPLength   int       `json:"otp_length"`
	MaxAttempts int       `json:"max_attempts"`
	ActivatedAt time.Time `json:"activated_at"`
}

// OfflineMethodInfo is one of the device's methods as it lists them.
type OfflineMethodInfo struct {
	Method            offline.Method `json:"method"`
	KeyID             string         `json:"key_id"`
	Locked            bool           `json:"locked"`
	RemainingAttempts int            `json:"remaining_attempts"`
	ActivatedAt       time.Time      `json:"activated_at"`
	// LastUsedAt is omitted while the method was never used: no answer
	// carries Go's zero time (0001-01-01) for "never".
	LastUsedAt time.Time `json:"last_used_at,omitzero"`
}

// TransactionInfo is what the phone fetches for a scanned transaction
// code: the text to show and what to sign.
type TransactionInfo struct {
	ID         string    `json:"id"`
	Origin     string    `json:"origin"`
	Text       string    `json:"text"`
	TextSHA256 string    `json:"text_sha256"`
	CreatedAt  time.Time `json:"created_at"`
	ExpiresAt  time.Time `json:"expires_at"`
}

// TransactionDecisionRequest is the body the phone posts to decide a
// transaction: the decision and its signature (see TransactionDecision).
type TransactionDecisionRequest struct {
	Decision  string `json:"decision"`
	Signature string `json:"signature"`
}

// DecodeTransactionDecisionRequest parses the body strictly: one JSON
// object, a known decision and a base64url signature of the right length.
func DecodeTransactionDecisionRequest(data []byte) (*TransactionDecisionRequest, error) {
	var r TransactionDecisionRequest
	if err := decodeStrict(data, &r); err != nil {
		if err == ErrInvalidUTF8 {
			return nil, err
		}
		return nil, qrauth.Errorf(qrauth.EINVALID, "malformed_body", `The body must be JSON: {"decision": "approve" or "deny", "signature": "..."}.`)
	}
	if r.Decision != DecisionApprove && r.Decision != DecisionDeny {
		return nil, qrauth.Errorf(qrauth.EINVALID, "invalid_decision", `The decision must be "approve" or "deny".`)
	}
	if !qrauth.ValidToken(r.Signature, 86, 86) { // 64 bytes in base64url
		return nil, qrauth.Errorf(qrauth.EUNAUTHORIZED, "bad_signature", "The phone's signature over the transaction is not valid.")
	}
	return &r, nil
}
