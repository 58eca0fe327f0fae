package badgeflow

import (
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"io"

	"github.com/qrauth/qrauth"
	"github.com/qrauth/qrauth/badge"
	"github.com/qrauth/qrauth/internal/keys"
)

// Badge payloads (see badge.ParsePayload for the text form):
//
//	insecure: id || HMAC-SHA256(K_i, "QRB1I" || id)[:16]
//	          K_i = keys.BadgeInsecureKey(master key)
//	secure:   id || nonce || AES-256-GCM(K_u, nonce, id, ad = "QRB1S" || id || user id)
//	          K_u = keys.BadgeCredentialAEAD(master key, user id, the password's stamp)
//
// Both keys come from the master key, so a badge of another deployment
// (another master key) never verifies, and nobody holding only a copy of
// the database can print a badge. K_u also depends on the holder's current
// password credential: a new password brings a new stamp, and every secure
// badge sealed under the old one stops opening, with no list to clean.

// badgeKeys holds the deployment's badge keys.
type badgeKeys struct {
	master   []byte
	insecure []byte
	rand     io.Reader
}

func newBadgeKeys(master []byte, rand io.Reader) (*badgeKeys, error) {
	k, err := keys.BadgeInsecureKey(master)
	if err != nil {
		return nil, err
	}
	return &badgeKeys{master: master, insecure: k, rand: rand}, nil
}

func (k *badgeKeys) insecureTag(id []byte) []byte {
	m := hmac.New(sha256.New, k.insecure)
	m.Write([]byte("QRB1I"))
	m.Write(id)
	return m.Sum(nil)[:16]
}

func secureAD(id []byte, uid qrauth.UserID) []byte {
	ad := append([]byte("QRB1S"), id...)
	return append(ad, uid...)
}

// insecurePayload returns the payload of an insecure badge.
func (k *badgeKeys) insecurePayload(id badge.ID) (string, error) {
	raw, ok := id.Bytes()
	if !ok {
		return "", qrauth.Internal(errMalformedBadgeID)
	}
	p := badge.Payload{Kind: badge.Insecure, ID: id, Auth: k.insecureTag(raw)}
	return p.String(), nil
}

// securePayload seals id under the credential of uid whose stamp is given.
func (k *badgeKeys) securePayload(id badge.ID, uid qrauth.UserID, stamp []byte) (string, error) {
	raw, ok := id.Bytes()
	if !ok {
		return "", qrauth.Internal(errMalformedBadgeID)
	}
	aead, err := keys.BadgeCredentialAEAD(k.master, uid, stamp)
	if err != nil {
		return "", qrauth.Internal(err)
	}
	nonce := make([]byte, aead.NonceSize())
	if _, err := io.ReadFull(k.rand, nonce); err != nil {
		return "", qrauth.Internal(err)
	}
	p := badge.Payload{Kind: badge.Secure, ID: id, Auth: aead.Seal(nonce, nonce, raw, secureAD(raw, uid))}
	return p.String(), nil
}

// checkInsecure reports whether p carries the right tag for its id.
func (k *badgeKeys) checkInsecure(p *badge.Payload) bool {
	raw, ok := p.ID.Bytes()
	return ok && hmac.Equal(k.insecureTag(raw), p.Auth)
}

// openSecure reports whether p opens under the credential (uid, stamp)
// and holds its own id.
func (k *badgeKeys) openSecure(p *badge.Payload, uid qrauth.UserID, stamp []byte) bool {
	raw, ok := p.ID.Bytes()
	if !ok {
		return false
	}
	aead, err := keys.BadgeCredentialAEAD(k.master, uid, stamp)
	if err != nil || len(p.Auth) < aead.NonceSize() {
		return false
	}
	n := aead.NonceSize()
	pt, err := aead.Open(nil, p.Auth[:n], p.Auth[n:], secureAD(raw, uid))
	return err == nil && subtle.ConstantTimeCompare(pt, raw) == 1
}

var errMalformedBadgeID = qrauth.Errorf(qrauth.EINTERNAL, "internal", "malformed badge id")
