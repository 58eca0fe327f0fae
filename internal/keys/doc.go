// Package keys owns qrauth's key hierarchy: every key the server uses is
// derived from the operator's master key here, with HKDF-SHA256 and a label
// that names its purpose, and nowhere else. So the labels are listed once,
// a key leaked from one flow (or a ciphertext moved between flows) is
// useless in another, and nobody holding only a copy of the database can
// derive any of them.
//
// # Hierarchy
//
//	master key (operator, 32 bytes)
//	├─ "qrauth/v1/oath"                      Sealer for OATH secrets (ad: user id)
//	├─ "qrauth/v1/offline"                   Sealer for offline method keys (ad: user, device, method)
//	├─ "qrauth/v1/badge/insecure"            HMAC key of insecure badge tags
//	└─ "qrauth/v1/badge/secure/" + user id   AEAD of a user's secure badges, salt = the password's stamp
//
// The labels are part of the stored data: a changed label would make every
// sealed secret and printed badge unreadable. keys_test.go pins them with
// known answers.
package keys
