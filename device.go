package qrauth

import (
	"crypto/ed25519"
	"strings"
	"time"
	"unicode/utf8"
)

// Device is a phone app installation registered to a user. Its credential is
// an Ed25519 key pair created on the phone; the server keeps only the public
// key.
type Device struct {
	ID          DeviceID          `json:"id"`
	UserID      UserID            `json:"user_id"`
	Name        string            `json:"name"`
	PublicKey   ed25519.PublicKey `json:"public_key"`
	PhoneIDHash string            `json:"phone_id_hash"`
	CreatedAt   time.Time         `json:"created_at"`
	LastSeenAt  time.Time         `json:"last_seen_at"`
}

// MaxDeviceNameLen is the longest device name accepted, in bytes.
const MaxDeviceNameLen = 64

// NormalizeDeviceName trims a device name and checks it; an empty name
// becomes "Phone".
func NormalizeDeviceName(name string) (string, error) {
	name = strings.TrimSpace(name)
	if !utf8.ValidString(name) || len(name) > MaxDeviceNameLen || strings.ContainsAny(name, "\x00\r\n") {
		return "", Errorf(EINVALID, "invalid_device_name", "The device name must be at most %d characters on one line.", MaxDeviceNameLen)
	}
	if name == "" {
		name = "Phone"
	}
	return name, nil
}
