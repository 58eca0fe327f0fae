package qrauth

import (
	"net/mail"
	"strings"
	"time"
	"unicode/utf8"
)

// User is an account. Every profile field is optional: an account can exist
// with nothing but a phone.
type User struct {
	ID          UserID    `json:"id"`
	Name        string    `json:"name"`
	Email       string    `json:"email"`
	PhoneIDHash string    `json:"phone_id_hash"`
	CreatedAt   time.Time `json:"created_at"`
	Roles       []Role    `json:"roles,omitempty"`
	// Disabled is set while an administrator has disabled the account.
	// Records written before accounts could be disabled have no such
	// field and read as enabled.
	Disabled *Disabled `json:"disabled,omitempty"`
}

// Disabled records why and by whom an account was disabled.
type Disabled struct {
	At     time.Time `json:"at"`
	By     string    `json:"by"`
	Reason string    `json:"reason,omitempty"`
}

// MaxDisableReasonLen is the longest reason for disabling an account, in
// bytes.
const MaxDisableReasonLen = 200

// NormalizeDisableReason trims a reason for disabling an account and
// checks it: one line of UTF-8, at most MaxDisableReasonLen bytes.
func NormalizeDisableReason(reason string) (string, error) {
	reason = strings.TrimSpace(reason)
	if !utf8.ValidString(reason) || len(reason) > MaxDisableReasonLen || strings.ContainsAny(reason, "\x00\r\n") {
		return "", Errorf(EINVALID, "invalid_reason", "The reason must be at most %d characters on one line.", MaxDisableReasonLen)
	}
	return reason, nil
}

// CheckEnabled returns ErrAccountDisabled if an administrator has disabled
// the account. Every way in (a phone's join, a sign-in step, a session, a
// device-signed request) asks it.
func (u *User) CheckEnabled() error {
	if u.Disabled != nil {
		return ErrAccountDisabled
	}
	return nil
}

// Profile holds the fields a person may fill in at sign-up.
type Profile struct {
	Name  string `json:"name"`
	Email string `json:"email"`
}

// Limits of profile fields, in bytes.
const (
	MaxNameLen  = 100
	MaxEmailLen = 254
)

// Normalize trims the fields and validates them. Both fields may be empty.
func (p *Profile) Normalize() error {
	p.Name = strings.TrimSpace(p.Name)
	p.Email = strings.TrimSpace(p.Email)
	if !utf8.ValidString(p.Name) || len(p.Name) > MaxNameLen || strings.ContainsAny(p.Name, "\x00\r\n") {
		return Errorf(EINVALID, "invalid_name", "The name must be at most %d characters on one line.", MaxNameLen)
	}
	if p.Email != "" {
		a, err := mail.ParseAddress(p.Email)
		if err != nil || a.Address != p.Email || len(p.Email) > MaxEmailLen {
			return Errorf(EINVALID, "invalid_email", "That does not look like an e-mail address (name@example.com).")
		}
	}
	return nil
}
