package qrauth

import (
	"bytes"
	"crypto/ed25519"

	"filippo.io/edwards25519"
)

// errWeakPublicKey is the refusal of a key that cannot be trusted to sign:
// see CheckPublicKey.
var errWeakPublicKey = Errorf(EINVALID, "weak_public_key",
	"The device's public key is not a valid Ed25519 key (a small-order or non-canonical point); create a new key on the phone.")

// CheckPublicKey reports whether pub is an Ed25519 public key qrauth
// accepts: 32 bytes, the canonical encoding of a curve point, and a point
// whose order is not a divisor of 8. It returns nil for a good key and an
// *Error EINVALID "weak_public_key" otherwise.
//
// A small-order key is refused because Go's ed25519.Verify, like RFC 8032,
// accepts for such a key signatures that anyone can make without any
// private key (for the identity point, R = identity and S = 0 verify for
// every message): an account registered with one could be signed in to by
// anyone. A non-canonical encoding is refused because two byte strings
// would name one key (and one of them give another DeviceID). Every
// signature check calls it, so a record stored before this check existed
// signs nothing; `qrauthd check` uses it to report such records.
func CheckPublicKey(pub []byte) error {
	if len(pub) != ed25519.PublicKeySize {
		return errWeakPublicKey
	}
	p, err := new(edwards25519.Point).SetBytes(pub)
	if err != nil {
		return errWeakPublicKey
	}
	// SetBytes accepts some non-canonical encodings (y ≥ p, or x = 0 with
	// the sign bit set): the canonical one is what Bytes gives back.
	if !bytes.Equal(p.Bytes(), pub) {
		return errWeakPublicKey
	}
	if new(edwards25519.Point).MultByCofactor(p).Equal(edwards25519.NewIdentityPoint()) == 1 {
		return errWeakPublicKey
	}
	return nil
}

// verifyEd25519 is the one signature check of every signed qrauth message:
// a weak key (see CheckPublicKey) verifies nothing, whatever the signature.
func verifyEd25519(pub ed25519.PublicKey, msg, sig []byte) bool {
	return CheckPublicKey(pub) == nil && len(sig) == ed25519.SignatureSize && ed25519.Verify(pub, msg, sig)
}
