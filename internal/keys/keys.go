package keys

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/sha256"
	"io"

	"github.com/qrauth/qrauth"
)

// labelPrefix versions the whole hierarchy.
const labelPrefix = "qrauth/v1/"

// Purpose names what a Sealer's key is for; it is the key's HKDF label
// after "qrauth/v1/".
type Purpose string

// Purposes of sealers.
const (
	OATH    Purpose = "oath"    // OATH token secrets
	Offline Purpose = "offline" // offline method keys
)

// Labels of the badge keys, after "qrauth/v1/".
const (
	badgeInsecureLabel = "badge/insecure"
	badgeSecureLabel   = "badge/secure/" // + user id
)

// userCodeLabel is the label of UserCodeSealer's key, after "qrauth/v1/".
const userCodeLabel = "user-code/url"

// KeySize is the size of every derived key: AES-256 and HMAC-SHA256.
const KeySize = 32

// derive returns HKDF-SHA256(master, salt, "qrauth/v1/"+label).
func derive(master, salt []byte, label string) ([]byte, error) {
	return hkdf.Key(sha256.New, master, salt, labelPrefix+label, KeySize)
}

func newGCM(key []byte) (cipher.AEAD, error) {
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(block)
}

// BadgeInsecureKey returns the HMAC key of insecure badge tags.
func BadgeInsecureKey(master []byte) ([]byte, error) {
	return derive(master, nil, badgeInsecureLabel)
}

// BadgeCredentialAEAD returns the AES-256-GCM AEAD of one user's current
// password credential: its key depends on the user and on the password's
// stamp, so a new password (a new stamp) makes every secure badge sealed
// under the old one unreadable, with no list to clean.
func BadgeCredentialAEAD(master []byte, uid qrauth.UserID, stamp []byte) (cipher.AEAD, error) {
	key, err := derive(master, stamp, badgeSecureLabel+string(uid))
	if err != nil {
		return nil, err
	}
	return newGCM(key)
}

// UserCodeSealer seals what a typed user code stands for (the URL of its
// room's QR code, in a cluster's shared state) under a key derived from
// the code itself, which only the browser shows and only the person typing
// it knows: a reader of the shared state cannot open it without the code.
func UserCodeSealer(code string, rand io.Reader) (*Sealer, error) {
	key, err := derive([]byte(code), nil, userCodeLabel)
	if err != nil {
		return nil, err
	}
	aead, err := newGCM(key)
	if err != nil {
		return nil, err
	}
	return &Sealer{aead: aead, rand: rand}, nil
}

// Sealer encrypts small secrets with AES-256-GCM under the key of one
// purpose.
type Sealer struct {
	aead cipher.AEAD
	rand io.Reader
}

// NewSealer derives the purpose's key from master. Nonces are read from
// rand.
func NewSealer(master []byte, p Purpose, rand io.Reader) (*Sealer, error) {
	key, err := derive(master, nil, string(p))
	if err != nil {
		return nil, err
	}
	aead, err := newGCM(key)
	if err != nil {
		return nil, err
	}
	return &Sealer{aead: aead, rand: rand}, nil
}

// Seal returns nonce || ciphertext. ad is bound to the ciphertext (for
// example the user id), so a sealed value copied elsewhere does not open.
func (s *Sealer) Seal(plaintext, ad []byte) ([]byte, error) {
	nonce := make([]byte, s.aead.NonceSize(), s.aead.NonceSize()+len(plaintext)+s.aead.Overhead())
	if _, err := io.ReadFull(s.rand, nonce); err != nil {
		return nil, qrauth.Internal(err)
	}
	return s.aead.Seal(nonce, nonce, plaintext, ad), nil
}

// Open reverses Seal; a wrong key, ad or a tampered value gives
// ErrSealedInvalid.
func (s *Sealer) Open(sealed, ad []byte) ([]byte, error) {
	n := s.aead.NonceSize()
	if len(sealed) < n+s.aead.Overhead() {
		return nil, ErrSealedInvalid
	}
	pt, err := s.aead.Open(nil, sealed[:n], sealed[n:], ad)
	if err != nil {
		return nil, ErrSealedInvalid
	}
	return pt, nil
}

// ErrSealedInvalid is EINVALID "sealed_invalid".
var ErrSealedInvalid = qrauth.Errorf(qrauth.EINVALID, "sealed_invalid", "The sealed value cannot be opened: wrong key, wrong owner, or tampered.")
