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
