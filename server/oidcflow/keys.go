package oidcflow

import (
	"context"
	"crypto"
	"crypto/aes"
	"crypto/cipher"
	"crypto/ed25519"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/qrauth/qrauth"
	"github.com/qrauth/qrauth/oidc"
	"github.com/zitadel/oidc/v3/pkg/op"
)

// sealKeyName is the store secret that seals the signing keys when the
// operator configured no master key (as the bind cookie's key lives there).
const sealKeyName = "oidc_key_seal"

// keyring holds the provider's signing keys in memory, opened.
type keyring struct {
	mu   sync.RWMutex
	aead cipher.AEAD
	keys []*liveKey // active and retired-but-verifying
}

type liveKey struct {
	rec  *oidc.SigningKey
	priv crypto.Signer
}

func (k *liveKey) ID() string { return k.rec.ID }
func (k *liveKey) SignatureAlgorithm() jose.SignatureAlgorithm {
	return jose.SignatureAlgorithm(k.rec.Alg)
}
func (k *liveKey) Algorithm() jose.SignatureAlgorithm { return jose.SignatureAlgorithm(k.rec.Alg) }
func (k *liveKey) Use() string                        { return "sig" }

// Key is the private key for signing (op.SigningKey) and, through
// publicKey, the public one for the key set.
func (k *liveKey) Key() any { return k.priv }

type publicKey struct{ *liveKey }

func (k publicKey) Key() any { return k.priv.Public() }

// newSealAEAD derives the sealing key: from the master key if there is one,
// else from the store's secret area.
func newSealAEAD(ctx context.Context, master []byte, st qrauth.Store, rnd io.Reader) (cipher.AEAD, error) {
	ikm := master
	if len(ikm) == 0 {
		var err error
		ikm, err = st.Secret(ctx, sealKeyName, func() ([]byte, error) {
			b := make([]byte, 32)
			_, err := io.ReadFull(rnd, b)
			return b, err
		})
		if err != nil {
			return nil, err
		}
	}
	key, err := hkdf.Key(sha256.New, ikm, nil, "qrauth/v1/oidc-signing-keys", 32)
	if err != nil {
		return nil, err
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(block)
}

func (kr *keyring) seal(rnd io.Reader, id string, der []byte) ([]byte, error) {
	nonce := make([]byte, kr.aead.NonceSize())
	if _, err := io.ReadFull(rnd, nonce); err != nil {
		return nil, err
	}
	return kr.aead.Seal(nonce, nonce, der, []byte(id)), nil
}

func (kr *keyring) open(rec *oidc.SigningKey) (*liveKey, error) {
	n := kr.aead.NonceSize()
	if len(rec.Private) < n+kr.aead.Overhead() {
		return nil, errors.New("sealed key too short")
	}
	der, err := kr.aead.Open(nil, rec.Private[:n], rec.Private[n:], []byte(rec.ID))
	if err != nil {
		return nil, fmt.Errorf("signing key %s does not open (another master key?): %w", rec.ID, err)
	}
	p, err := x509.ParsePKCS8PrivateKey(der)
	if err != nil {
		return nil, err
	}
	s, ok := p.(crypto.Signer)
	if !ok {
		return nil, errors.New("signing key is not a signer")
	}
	return &liveKey{rec: rec, priv: s}, nil
}

func newKeyRecord(kr *keyring, rnd io.Reader, alg string, now time.Time) (*oidc.SigningKey, error) {
	var priv any
	var err error
	switch alg {
	case oidc.AlgRS256:
		priv, err = rsa.GenerateKey(rand.Reader, 2048) // rsa ignores a custom reader's determinism anyway
	case oidc.AlgEdDSA:
		_, priv, err = ed25519.GenerateKey(rnd)
	default:
		err = fmt.Errorf("unknown algorithm %q", alg)
	}
	if err != nil {
		return nil, err
	}
	der, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		return nil, err
	}
	idb := make([]byte, 12)
	if _, err := io.ReadFull(rnd, idb); err != nil {
		return nil, err
	}
	id := base64.RawURLEncoding.EncodeToString(idb)
	sealed, err := kr.seal(rnd, id, der)
	if err != nil {
		return nil, err
	}
	return &oidc.SigningKey{ID: id, Alg: alg, Private: sealed, CreatedAt: now}, nil
}

// load reads the keys, drops those past their verification time, and
// generates an active key of each algorithm that has none (first start,
// or after rotate). With rotate, the active keys are retired first and
// verify for grace more.
func (kr *keyring) load(ctx context.Context, st oidc.Store, rnd io.Reader, now time.Time, rotate bool, grace time.Duration) error {
	recs, err := st.ListOIDCKeys(ctx)
	if err != nil {
		return err
	}
	var keep []*oidc.SigningKey
	var live []*liveKey
	have := map[string]bool{}
	changed := false
	for _, r := range recs {
		if !r.RetiredAt.IsZero() && !now.Before(r.VerifyUntil) {
			changed = true
			continue
		}
		if rotate && r.RetiredAt.IsZero() {
			r.RetiredAt, r.VerifyUntil = now, now.Add(grace)
			changed = true
		}
		lk, err := kr.open(r)
		if err != nil {
			return err
		}
		keep = append(keep, r)
		live = append(live, lk)
		if r.RetiredAt.IsZero() {
			have[r.Alg] = true
		}
	}
	for _, alg := range []string{oidc.AlgRS256, oidc.AlgEdDSA} {
		if have[alg] {
			continue
		}
		r, err := newKeyRecord(kr, rnd, alg, now)
		if err != nil {
			return err
		}
		lk, err := kr.open(r)
		if err != nil {
			return err
		}
		keep, live, changed = append(keep, r), append(live, lk), true
	}
	if changed {
		if err := st.PutOIDCKeys(ctx, keep); err != nil {
			return err
		}
	}
	kr.mu.Lock()
	kr.keys = live
	kr.mu.Unlock()
	return nil
}

// signer returns the newest active key of alg.
func (kr *keyring) signer(alg string) (op.SigningKey, error) {
	kr.mu.RLock()
	defer kr.mu.RUnlock()
	for i := len(kr.keys) - 1; i >= 0; i-- {
		if k := kr.keys[i]; k.rec.Alg == alg && k.rec.RetiredAt.IsZero() {
			return k, nil
		}
	}
	return nil, fmt.Errorf("no active %s key", alg)
}

// publicKeys are the keys of the JWKS: active and retired ones still
// within their verification time.
func (kr *keyring) publicKeys(now time.Time) []op.Key {
	kr.mu.RLock()
	defer kr.mu.RUnlock()
	out := make([]op.Key, 0, len(kr.keys))
	for _, k := range kr.keys {
		if k.rec.RetiredAt.IsZero() || now.Before(k.rec.VerifyUntil) {
			out = append(out, publicKey{k})
		}
	}
	return out
}
