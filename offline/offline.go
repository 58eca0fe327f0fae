package offline

import (
	"context"
	"time"

	"github.com/qrauth/qrauth"
)

// Method names an offline method of a device.
type Method string

// Offline methods. The names are those of Encap's client and server APIs.
const (
	// Device needs no input on the phone: possession of the phone
	// (and of its key store) is the factor.
	Device Method = "OFFLINE_DEVICE"
	// PIN needs a PIN on the phone. The PIN never leaves the phone
	// and is independent of any other PIN: it unwraps the method key, and a
	// wrong PIN gives a wrong key and so a wrong code, which the server
	// counts as a failed attempt.
	PIN Method = "OFFLINE_PIN"
)

// Methods lists every offline method.
var Methods = []Method{Device, PIN}

// ValidMethod reports whether m is a known method.
func ValidMethod(m Method) bool { return m == Device || m == PIN }

// ParseMethod reads a method given by a client, anywhere one is
// given (JSON bodies, the app API's path, the CLIs). The canonical names
// are OFFLINE_DEVICE and OFFLINE_PIN, which every answer uses; accepted as
// aliases, case-insensitively: "device"/"pin" and "offline-device"/
// "offline-pin" (docs/offline.md, "Method names"). EINVALID
// "invalid_method" otherwise.
func ParseMethod(s string) (Method, error) {
	switch Method(offlineUpper(s)) {
	case Device, "DEVICE", "OFFLINE-DEVICE":
		return Device, nil
	case PIN, "PIN", "OFFLINE-PIN":
		return PIN, nil
	}
	return "", qrauth.Errorf(qrauth.EINVALID, "invalid_method", "Unknown offline method %q: use OFFLINE_DEVICE or OFFLINE_PIN.", offlineClip(s, 40))
}

func offlineUpper(s string) string {
	b := []byte(s)
	for i, c := range b {
		if c >= 'a' && c <= 'z' {
			b[i] = c - 'a' + 'A'
		}
	}
	return string(b)
}

func offlineClip(s string, n int) string {
	if len(s) > n {
		return s[:n] + "…"
	}
	return s
}

// Limits of the offline flow.
const (
	// MinOTPLength and MaxOTPLength bound the configurable code length.
	// Nine digits is the most that a 31-bit truncated HMAC yields evenly
	// enough (RFC 4226 §5.3 allows up to 9 as well).
	MinOTPLength = 4
	MaxOTPLength = 9
	// KeySize is the size of a method key in bytes.
	KeySize = 32
	// MaxApprovalTextLen bounds the text of an online transaction
	// approval. It is not carried in a QR code, only shown on the phone.
	MaxApprovalTextLen = 1000
)

// Audit event types of the offline flow.
const (
	AuditActivated        = "offline_activated"
	AuditDeactivated      = "offline_deactivated"
	AuditVerified         = "offline_verified"
	AuditLocked           = "offline_locked"
	AuditUnlocked         = "offline_unlocked"
	AuditApprovalApproved = "transaction_approved"
	AuditApprovalDenied   = "transaction_denied"
)

// Credential is one activated offline method of one device.
type Credential struct {
	UserID   qrauth.UserID   `json:"user_id"`
	DeviceID qrauth.DeviceID `json:"device_id"`
	Method   Method          `json:"method"`
	// SealedKey is the method key sealed under the operator's master key
	// with the user, device and method as associated data.
	SealedKey []byte `json:"sealed_key"`
	// KeyID changes at every activation, so that a session begun under an
	// older key fails instead of checking codes against the new one.
	KeyID string `json:"key_id"`
	// Failures counts wrong codes since the last success or unlock,
	// across sessions.
	Failures    int       `json:"failures"`
	Locked      bool      `json:"locked"`
	LockedAt    time.Time `json:"locked_at"`
	ActivatedAt time.Time `json:"activated_at"`
	LastUsedAt  time.Time `json:"last_used_at"`
}

// State is the state of an offline session.
type State string

// Offline session states. Pending is the only state that can change; the
// others are final.
const (
	Pending   State = "pending"
	Succeeded State = "succeeded"
	// Failed: the session can no longer succeed because its method
	// was deactivated or activated again with a new key after it began.
	Failed    State = "failed"
	Cancelled State = "cancelled"
	Expired   State = "expired"
	// Locked: the method was locked by too many wrong codes.
	Locked State = "locked"
)

// Purposes of an offline session.
const (
	// ForAPI: begun by a relying site through the REST API.
	ForAPI = "api"
	// ForSignIn: begun by a browser on the "sign in with a code"
	// page, bound to that browser.
	ForSignIn = "signin"
)

// Session is one challenge: begun for a device's method and a
// context, verified with the code the phone derives from it.
type Session struct {
	ID       string          `json:"id"`
	Purpose  string          `json:"purpose"`
	UserID   qrauth.UserID   `json:"user_id"`
	DeviceID qrauth.DeviceID `json:"device_id"`
	Method   Method          `json:"method"`
	KeyID    string          `json:"key_id"`
	// VerificationData is the text of the QR code (see
	// VerificationData); the code is derived from all of it.
	VerificationData string `json:"verification_data"`
	// BindHash is the hash of the bind cookie of the browser that began a
	// sign-in session; ViewTokenHash the hash of the token of the approval
	// page of an API session. Only hashes are stored.
	BindHash      []byte `json:"bind_hash,omitempty"`
	ViewTokenHash []byte `json:"view_token_hash,omitempty"`
	State         State  `json:"state"`
	// Failures counts the wrong codes given to this session.
	Failures  int       `json:"failures"`
	IP        string    `json:"ip,omitempty"`
	CreatedAt time.Time `json:"created_at"`
	ExpiresAt time.Time `json:"expires_at"`
	EndedAt   time.Time `json:"ended_at"`
}

// Status returns the state at now: a pending session past its expiry is
// expired even before anything wrote that down.
func (s *Session) Status(now time.Time) State {
	if s.State == Pending && !now.Before(s.ExpiresAt) {
		return Expired
	}
	return s.State
}

// Attempt is the outcome of checking one code against a session,
// which the store settles atomically (see Store.SettleOfflineAttempt).
type Attempt struct {
	SessionID string
	// KeyID is the key the code was checked against.
	KeyID string
	// OK reports whether the code was right.
	OK bool
	At time.Time
	// MaxFailures is the number of wrong codes that locks the method.
	MaxFailures int
	// OnSuccess, OnLock are appended to the audit log when the attempt
	// succeeds or locks the method; either may be nil.
	OnSuccess, OnLock *qrauth.AuditEvent
}

// ApprovalState is the state of an online transaction approval.
type ApprovalState string

// Approval states; pending is the only one that can change.
const (
	ApprovalPending   ApprovalState = "pending"
	ApprovalApproved  ApprovalState = "approved"
	ApprovalDenied    ApprovalState = "denied"
	ApprovalExpired   ApprovalState = "expired"
	ApprovalCancelled ApprovalState = "cancelled"
)

// Approval is an online transaction approval: a relying site asks a user to
// approve Text; a phone of that user scans ORIGIN/t/TOKEN, shows the text
// and signs a TransactionDecision over its hash.
type Approval struct {
	ID     string        `json:"id"`
	UserID qrauth.UserID `json:"user_id"`
	// DeviceID, when set, is the only device that may decide.
	DeviceID qrauth.DeviceID `json:"device_id,omitempty"`
	Text     string          `json:"text"`
	// TextSHA256 is hex SHA-256 of Text, the value the phone signs.
	TextSHA256 string `json:"text_sha256"`
	// TokenHash is the hash of the token in the QR code; ViewTokenHash of
	// the token of the approval page.
	TokenHash     []byte          `json:"token_hash"`
	ViewTokenHash []byte          `json:"view_token_hash"`
	State         ApprovalState   `json:"state"`
	IP            string          `json:"ip,omitempty"`
	CreatedAt     time.Time       `json:"created_at"`
	ExpiresAt     time.Time       `json:"expires_at"`
	ScannedAt     time.Time       `json:"scanned_at"`
	ScannedBy     qrauth.DeviceID `json:"scanned_by,omitempty"`
	DecidedAt     time.Time       `json:"decided_at"`
	DecidedBy     qrauth.DeviceID `json:"decided_by,omitempty"`
	// Signature is the device's base64url Ed25519 signature over the
	// TransactionDecision that decided it: the record of which text was
	// approved, verifiable later against the device's public key.
	Signature string `json:"signature,omitempty"`
}

// Status returns the state at now, expired for a pending approval past its
// expiry.
func (a *Approval) Status(now time.Time) ApprovalState {
	if a.State == ApprovalPending && !now.Before(a.ExpiresAt) {
		return ApprovalExpired
	}
	return a.State
}

// ApprovalDecision is a signed decision the store records (see
// Store.DecideApproval).
type ApprovalDecision struct {
	State     ApprovalState // approved or denied
	DeviceID  qrauth.DeviceID
	Signature string
	At        time.Time
}

// Store is the part of Store that the offline flow needs. Its methods
// follow the contract stated on Store.
type Store interface {
	// PutOfflineCredential activates c, replacing an earlier activation of
	// the same device and method (which resets its failure count).
	// ENOTFOUND "device_not_found" unless c.DeviceID is a device of
	// c.UserID; ECONFLICT "method_locked" if the method it would replace is
	// locked, so that activating again never lifts a lock.
	PutOfflineCredential(ctx context.Context, c *Credential, events ...*qrauth.AuditEvent) error
	// FindOfflineCredential returns a device's method, ENOTFOUND
	// "offline_method_not_found" if it is not active.
	FindOfflineCredential(ctx context.Context, id qrauth.DeviceID, m Method) (*Credential, error)
	// FindOfflineCredentialsByUser returns the user's active methods, by
	// device id then method.
	FindOfflineCredentialsByUser(ctx context.Context, id qrauth.UserID) ([]*Credential, error)
	// DeleteOfflineCredential deactivates a method; ENOTFOUND
	// "offline_method_not_found" if it is not active.
	DeleteOfflineCredential(ctx context.Context, id qrauth.DeviceID, m Method, events ...*qrauth.AuditEvent) error
	// UnlockOfflineCredential clears the lock and the failure count.
	// ENOTFOUND "offline_method_not_found" if the method is not active.
	UnlockOfflineCredential(ctx context.Context, id qrauth.DeviceID, m Method, events ...*qrauth.AuditEvent) (*Credential, error)

	// CreateOfflineSession stores a new session. ENOTFOUND if its user
	// does not exist; ECONFLICT "session_exists" if its id does.
	CreateOfflineSession(ctx context.Context, s *Session) error
	// FindOfflineSession returns a session whatever its state;
	// ENOTFOUND "offline_session_not_found".
	FindOfflineSession(ctx context.Context, id string) (*Session, error)
	// SettleOfflineAttempt records a checked code in one transaction:
	//   - ENOTFOUND if the session does not exist; ECONFLICT with reason
	//     "session_<state>" if it is not pending (so a verified code can
	//     never be verified again); EEXPIRED "session_expired" at or past
	//     its expiry. None of these change anything or count.
	//   - If the method is no longer active or has another KeyID than
	//     a.KeyID and the session's, the session becomes failed.
	//   - If the method is locked, the session becomes locked.
	//   - If a.OK, the session succeeds and the method's failure count is
	//     reset; a.OnSuccess is appended.
	//   - Otherwise the method's and the session's failure counts grow; at
	//     a.MaxFailures the method is locked, the session becomes locked
	//     and a.OnLock is appended.
	// It returns the session and the method after the change (the method
	// nil when it is no longer active).
	SettleOfflineAttempt(ctx context.Context, a Attempt) (*Session, *Credential, error)
	// CancelOfflineSession ends a pending session as cancelled. Cancelling
	// a cancelled session succeeds again; any other final state, or a
	// pending session at or past its expiry, is ECONFLICT "session_<state>".
	CancelOfflineSession(ctx context.Context, id string, at time.Time) (*Session, error)
	// DeleteOfflineRecords removes sessions and approvals that expired
	// before the given time, and returns how many it removed.
	DeleteOfflineRecords(ctx context.Context, before time.Time) (int, error)

	// CreateApproval stores a new approval. ENOTFOUND if its user does not
	// exist; ECONFLICT "approval_exists" if its id or token hash does.
	CreateApproval(ctx context.Context, a *Approval) error
	// FindApproval returns an approval whatever its state; ENOTFOUND
	// "approval_not_found".
	FindApproval(ctx context.Context, id string) (*Approval, error)
	// FindApprovalByTokenHash looks an approval up by the hash of its QR
	// token; ENOTFOUND "approval_not_found".
	FindApprovalByTokenHash(ctx context.Context, tokenHash []byte) (*Approval, error)
	// ScanApproval notes that device scanned a pending approval (the first
	// scan is kept). ECONFLICT "approval_<state>" if it is not pending,
	// EEXPIRED "approval_expired" past its expiry.
	ScanApproval(ctx context.Context, id string, device qrauth.DeviceID, at time.Time) (*Approval, error)
	// DecideApproval records a decision on a pending approval, with
	// events. ECONFLICT "approval_<state>" if it is not pending, EEXPIRED
	// "approval_expired" at or past its expiry. Cancelling uses the same
	// call with State cancelled and no signature.
	DecideApproval(ctx context.Context, id string, d ApprovalDecision, events ...*qrauth.AuditEvent) (*Approval, error)
}
