// Package recovery holds the account recovery flow's domain: the one-time
// recovery codes a person keeps on paper, the short-lived link codes the
// helpdesk issues, and the store interface the flow consumes.
//
// # Flow
//
// A person whose only phone is lost enters a recovery code (or a helpdesk
// link code) on a new phone. The phone sends it in a request signed by its
// own new device key (wire.Recover); the server looks the code up by its
// keyed hash, and in one transaction burns it, links the new phone to the
// account and ends every browser session of the account (RedeemRecovery).
package recovery

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"io"
	"strings"
	"time"

	"github.com/qrauth/qrauth"
)

// Code format. A code is CodeLen characters of Crockford's base32 (5 bits
// each: 80 bits from crypto/rand), shown in groups of four.
//
// 80 random bits make guessing hopeless even against the database: a thief
// of the hashes would need 2^79 HMAC evaluations per code on average, and
// online guessing is rate-limited. A slow KDF (argon2, bcrypt) only helps
// against guessing low-entropy secrets such as passwords; here it would
// only cost CPU on every attempt, which an attacker can make us spend.
const (
	CodeLen = 16
	SetSize = 10 // codes in one set of recovery codes
	// MaxFailures is how many wrong codes sent for one account lock its
	// recovery codes (a helpdesk link code still works and lifts the lock).
	MaxFailures = 10
)

const alphabet = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"

// Kinds of code.
const (
	KindRecovery = "recovery_code" // one of the person's set of ten
	KindLink     = "link_code"     // issued by the helpdesk, expires
)

// Audit event types.
const (
	AuditCodesGenerated = "recovery_codes_generated"
	AuditLinkIssued     = "recovery_link_issued"
	AuditRecovered      = "account_recovered"
	AuditLocked         = "recovery_locked"
)

// NewCode returns a fresh code, formatted (XXXX-XXXX-XXXX-XXXX).
func NewCode(r io.Reader) (string, error) {
	var b [CodeLen * 5 / 8]byte
	if _, err := io.ReadFull(r, b[:]); err != nil {
		return "", err
	}
	var sb strings.Builder
	bits := bitReader{b: b[:]}
	for i := range CodeLen {
		if i > 0 && i%4 == 0 {
			sb.WriteByte('-')
		}
		sb.WriteByte(alphabet[bits.next5()])
	}
	return sb.String(), nil
}

// bitReader reads 5-bit groups, most significant bit first: 80 bits do
// not fit a uint64.
type bitReader struct {
	b   []byte
	pos int // bit position
}

func (r *bitReader) next5() byte {
	var v byte
	for range 5 {
		bit := r.b[r.pos/8] >> (7 - r.pos%8) & 1
		v = v<<1 | bit
		r.pos++
	}
	return v
}

// Normalize returns the canonical form of a typed code: upper case, without
// the spaces and hyphens between groups, with Crockford's look-alikes read
// as digits (O as 0, I and L as 1). EINVALID "invalid_recovery_code" if it
// is not CodeLen characters of the alphabet.
func Normalize(s string) (string, error) {
	var sb strings.Builder
	for _, c := range strings.ToUpper(s) {
		switch {
		case c == ' ' || c == '-':
			continue
		case c == 'O':
			c = '0'
		case c == 'I' || c == 'L':
			c = '1'
		}
		if c > 0x7f || strings.IndexByte(alphabet, byte(c)) < 0 || sb.Len() >= CodeLen {
			return "", errInvalidCode()
		}
		sb.WriteRune(c)
	}
	if sb.Len() != CodeLen {
		return "", errInvalidCode()
	}
	return sb.String(), nil
}

func errInvalidCode() error {
	return qrauth.Errorf(qrauth.EINVALID, "invalid_recovery_code",
		"A recovery code is %d letters and digits, such as ABCD-EFGH-JKMN-PQRS.", CodeLen)
}

// Format groups a normalized code in fours.
func Format(code string) string {
	var sb strings.Builder
	for i := 0; i < len(code); i += 4 {
		if i > 0 {
			sb.WriteByte('-')
		}
		sb.WriteString(code[i:min(i+4, len(code))])
	}
	return sb.String()
}

// Hash is the keyed hash under which a code is stored: HMAC-SHA-256 under
// the deployment's recovery secret, of the normalized code. The store sees
// only this; without the secret the hashes do not even allow guessing.
func Hash(key []byte, normalized string) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte("qrauth recovery code v1\x00"))
	m.Write([]byte(normalized))
	return m.Sum(nil)
}

// HashLen is the length of a Hash.
const HashLen = sha256.Size

// LinkCode is a helpdesk's one-time code for one account.
type LinkCode struct {
	Hash      []byte        `json:"-"`
	UserID    qrauth.UserID `json:"user_id"`
	IssuedBy  string        `json:"issued_by"` // "operator" or the helpdesk user's id
	CreatedAt time.Time     `json:"created_at"`
	ExpiresAt time.Time     `json:"expires_at"`
}

// Status is an account's recovery state.
type Status struct {
	UserID      qrauth.UserID `json:"user_id"`
	Remaining   int           `json:"remaining"` // unused recovery codes
	GeneratedAt time.Time     `json:"generated_at"`
	Failures    int           `json:"failures"` // wrong codes since the last success
	Locked      bool          `json:"locked"`
	LockedAt    time.Time     `json:"locked_at"`
}

// Redemption is one use of a code by a new phone.
type Redemption struct {
	Hash   []byte
	Now    time.Time
	Device *qrauth.Device // the new phone; its UserID is the code's account
	IP     string         // for the audit event
}

// Redeemed is what a redemption did.
type Redeemed struct {
	UserID        qrauth.UserID
	Kind          string
	IssuedBy      string // of a link code
	SessionsEnded int
	Remaining     int // recovery codes left
	Event         *qrauth.AuditEvent
}

// Store is what the recovery flow needs of the database. Besides the
// qrauth.Store contract (copies, ENOTFOUND, all-or-nothing with audit):
//   - Codes are known only by their hashes; nothing can read a code back.
//   - After RedeemRecovery returned a code's redemption, no later call
//     finds that code: under concurrent use exactly one redemption of a
//     code succeeds.
type Store interface {
	// ReplaceRecoveryCodes makes hashes the user's only recovery codes
	// (the old set stops working) and clears the failure count and lock.
	// EINVALID if a hash is not HashLen bytes or hashes repeat.
	ReplaceRecoveryCodes(ctx context.Context, id qrauth.UserID, hashes [][]byte, at time.Time, events ...*qrauth.AuditEvent) (*Status, error)
	// FindRecoveryStatus returns the user's status (zero counts for a user
	// who never generated codes); ENOTFOUND "user_not_found".
	FindRecoveryStatus(ctx context.Context, id qrauth.UserID) (*Status, error)
	// CreateLinkCode stores a helpdesk link code.
	CreateLinkCode(ctx context.Context, c *LinkCode, events ...*qrauth.AuditEvent) error
	// RedeemRecovery finds the code of r.Hash and, in one transaction,
	// deletes it, creates r.Device for the code's user (as CreateDevice,
	// with its conflicts), deletes every session of the user, clears the
	// failure count (a link code also lifts the lock) and appends an
	// AuditRecovered event, returned in Redeemed.Event.
	// EUNAUTHORIZED "bad_recovery_code" if no code has that hash,
	// EEXPIRED "link_code_expired" for an expired link code, EFORBIDDEN
	// "recovery_locked" for a recovery code of a locked account,
	// qrauth.ErrAccountDisabled (and the code kept) if an administrator has
	// disabled the account.
	RedeemRecovery(ctx context.Context, r *Redemption) (*Redeemed, error)
	// RecordRecoveryFailure counts a wrong code against the user; at max
	// failures it locks recovery codes and appends onLock (if not nil).
	RecordRecoveryFailure(ctx context.Context, id qrauth.UserID, at time.Time, max int, onLock *qrauth.AuditEvent) (*Status, error)
	// DeleteExpiredLinkCodes removes link codes expired at now.
	DeleteExpiredLinkCodes(ctx context.Context, now time.Time) (int, error)
}
