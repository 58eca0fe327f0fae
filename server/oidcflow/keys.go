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
	"log/slog"
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
//
// Alone (reload 0), the instance is the only one that changes the keys:
// they are read at Mount and after a rotation, and a rotated key signs at
// once.
//
// In a cluster every instance keeps the keys in memory, and another may
// make or rotate them. Two rules keep the instances' key sets one:
//   - keys are only ever changed through oidc.Store.UpdateOIDCKeys, a
//     compare-and-set: of two instances starting together on an empty
//     store, the second finds the first's keys in the transaction and
//     adopts them instead of storing its own;
//   - a request reads the keys again when those in memory are older than
//     reload (Config.KeyReload), so a served key set is never older than
//     that; and a rotation gives the new key a SignFrom 2×reload ahead,
//     its predecessor signing until then. By the time anyone signs with
//     the new key, every instance has published it for at least reload
//     (the other reload is margin for clocks and slow reads). Verifiers
//     accept both meanwhile, as both are in every key set.
//
// A reload that fails (the database is away) keeps the keys in memory and
// is tried again a period later: the old key goes on signing, which every
// instance still publishes.
type keyring struct {
	aead   cipher.AEAD
	st     oidc.Store
	rnd    io.Reader
	now    func() time.Time
	grace  time.Duration
	reload time.Duration
	log    *slog.Logger

	loadMu sync.Mutex // one load at a time

	mu     sync.RWMutex
	keys   []*liveKey // active, waiting to sign, and retired-but-verifying
	readAt time.Time  // when the keys were last read (or tried)
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

// signDelay is how far ahead of a rotation its new keys start signing.
func (kr *keyring) signDelay() time.Duration { return 2 * kr.reload }

// load reads the keys, drops those past their verification time, and
// generates an active key of each algorithm that has none (first start,
// or after rotate). With rotate, the active keys are retired, at once
// alone and after signDelay in a cluster, and verify for grace more. It
// returns when the new keys sign (zero without rotate).
func (kr *keyring) load(ctx context.Context, rotate bool) (time.Time, error) {
	kr.loadMu.Lock()
	defer kr.loadMu.Unlock()
	return kr.loadLocked(ctx, rotate)
}

func (kr *keyring) loadLocked(ctx context.Context, rotate bool) (time.Time, error) {
	now := kr.now()
	kr.mu.Lock()
	kr.readAt = now
	kr.mu.Unlock()
	recs, err := kr.st.ListOIDCKeys(ctx)
	if err != nil {
		return time.Time{}, err
	}
	signFrom := now.Add(kr.signDelay())
	fresh := map[string]*oidc.SigningKey{}
	for attempt := 0; ; attempt++ {
		_, missing, changed := nextKeys(recs, now, rotate, signFrom, kr.grace, fresh)
		if !changed {
			break
		}
		if len(missing) > 0 {
			if attempt == 3 {
				return time.Time{}, errors.New("the signing keys keep changing under this instance")
			}
			// Made outside the transaction: an RSA key takes a while, and
			// another instance's may make this one's unneeded.
			for _, alg := range missing {
				if fresh[alg], err = newKeyRecord(kr, kr.rnd, alg, now); err != nil {
					return time.Time{}, err
				}
			}
		}
		var short bool
		stored, err := kr.st.UpdateOIDCKeys(ctx, func(have []*oidc.SigningKey) ([]*oidc.SigningKey, error) {
			out, missing, _ := nextKeys(have, now, rotate, signFrom, kr.grace, fresh)
			if short = len(missing) > 0; short {
				return have, nil // changes nothing; made outside, then tried again
			}
			return out, nil
		})
		if err != nil {
			return time.Time{}, err
		}
		recs = stored
		if !short {
			break
		}
	}
	var live []*liveKey
	for _, r := range recs {
		if !r.RetiredAt.IsZero() && !now.Before(r.VerifyUntil) {
			continue // another instance's clock says it still verifies
		}
		lk, err := kr.open(r)
		if err != nil {
			return time.Time{}, err
		}
		live = append(live, lk)
	}
	kr.mu.Lock()
	kr.keys = live
	kr.mu.Unlock()
	if !rotate {
		return time.Time{}, nil
	}
	return signFrom, nil
}

// nextKeys is the key set recs should become at now: without the keys
// past their verification time, the active ones retired if rotate, and a
// new active key of each algorithm that has none, taken from fresh. It
// names the algorithms fresh lacks, and reports whether anything changes.
// recs is left as it was.
func nextKeys(recs []*oidc.SigningKey, now time.Time, rotate bool, signFrom time.Time, grace time.Duration,
	fresh map[string]*oidc.SigningKey) (out []*oidc.SigningKey, missing []string, changed bool) {
	have, retired := map[string]bool{}, map[string]bool{}
	for _, r := range recs {
		if !r.RetiredAt.IsZero() && !now.Before(r.VerifyUntil) {
			changed = true
			continue
		}
		c := *r
		if rotate && c.RetiredAt.IsZero() {
			// It signs until the new key does. One still waiting for its
			// turn (rotated twice in a row) signs in between, or never.
			c.RetiredAt = signFrom
			if c.SignFrom.After(signFrom) {
				c.SignFrom = signFrom
			}
			c.VerifyUntil = signFrom.Add(grace)
			retired[c.Alg], changed = true, true
		}
		out = append(out, &c)
		if c.RetiredAt.IsZero() {
			have[c.Alg] = true
		}
	}
	for _, alg := range []string{oidc.AlgRS256, oidc.AlgEdDSA} {
		if have[alg] {
			continue
		}
		changed = true
		f := fresh[alg]
		if f == nil {
			missing = append(missing, alg)
			continue
		}
		c := *f
		c.SignFrom = time.Time{}
		if retired[alg] && signFrom.After(now) {
			c.SignFrom = signFrom // the predecessor signs until then
		}
		out = append(out, &c)
	}
	return out, missing, changed
}

// refresh reads the keys again if those in memory are older than reload
// (in a cluster only). A failure is logged and keeps them.
func (kr *keyring) refresh(ctx context.Context) {
	if kr.reload <= 0 {
		return
	}
	due := func() bool {
		kr.mu.RLock()
		defer kr.mu.RUnlock()
		return !kr.now().Before(kr.readAt.Add(kr.reload))
	}
	if !due() {
		return
	}
	kr.loadMu.Lock()
	defer kr.loadMu.Unlock()
	if !due() {
		return // another request read them meanwhile
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	if _, err := kr.loadLocked(ctx, false); err != nil {
		kr.log.Warn("oidc: re-reading the signing keys failed; the keys in memory stay in use", "err", err)
	}
}

// signer returns the key of alg that signs now: the newest whose time has
// come and that is not retired.
func (kr *keyring) signer(ctx context.Context, alg string) (op.SigningKey, error) {
	kr.refresh(ctx)
	now := kr.now()
	kr.mu.RLock()
	defer kr.mu.RUnlock()
	for i := len(kr.keys) - 1; i >= 0; i-- {
		if k := kr.keys[i]; k.rec.Alg == alg && k.rec.SignsAt(now) {
			return k, nil
		}
	}
	return nil, fmt.Errorf("no active %s key", alg)
}

// publicKeys are the keys of the JWKS: active ones (including those
// waiting for their SignFrom) and retired ones still within their
// verification time.
func (kr *keyring) publicKeys(ctx context.Context) []op.Key {
	kr.refresh(ctx)
	now := kr.now()
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
