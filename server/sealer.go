package server

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/sha256"
	"io"

	"github.com/qrauth/qrauth"
)

// sealer encrypts small secrets with AES-256-GCM under a key derived from
// the operator's master key for one purpose, so that a key leaked from one
// flow (or a ciphertext moved between flows) is useless in another.
type sealer struct {
	aead cipher.AEAD
	rand io.Reader
}

// newSealer derives the purpose's key with HKDF-SHA256.
func newSealer(master []byte, purpose string, rand io.Reader) (*sealer, error) {
	key, err := hkdf.Key(sha256.New, master, nil, "qrauth/v1/"+purpose, 32)
	if err != nil {
		return nil, err
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, err
	}
	return &sealer{aead: aead, rand: rand}, nil
}

// seal returns nonce || ciphertext. ad is bound to the ciphertext (for
// example the user id), so a sealed value copied elsewhere does not open.
func (s *sealer) seal(plaintext, ad []byte) ([]byte, error) {
	nonce := make([]byte, s.aead.NonceSize(), s.aead.NonceSize()+len(plaintext)+s.aead.Overhead())
	if _, err := io.ReadFull(s.rand, nonce); err != nil {
		return nil, qrauth.Internal(err)
	}
	return s.aead.Seal(nonce, nonce, plaintext, ad), nil
}

// open reverses seal; a wrong key, ad or a tampered value gives EINVALID
// "sealed_invalid".
func (s *sealer) open(sealed, ad []byte) ([]byte, error) {
	n := s.aead.NonceSize()
	if len(sealed) < n+s.aead.Overhead() {
		return nil, errSealedInvalid
	}
	pt, err := s.aead.Open(nil, sealed[:n], sealed[n:], ad)
	if err != nil {
		return nil, errSealedInvalid
	}
	return pt, nil
}

var errSealedInvalid = qrauth.Errorf(qrauth.EINVALID, "sealed_invalid", "The sealed value cannot be opened: wrong key, wrong owner, or tampered.")
