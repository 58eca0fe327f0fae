package server

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/qrauth/qrauth"
	"github.com/qrauth/qrauth/shared"
)

// Pending sign-ins in a cluster (Config.Shared): the browser's next step
// may reach any instance, so the parked SignIn lives in the shared store,
// under "pending:" and the SHA-256 of the pending cookie (the store never
// holds the cookie itself), until it expires.
//
// They are versioned records (Create/Load/Swap) rather than single-use
// entries (Put/Take): counting an attempt is a compare-and-set of the
// record with the count one higher, retried when another instance counted
// meanwhile, so two wrong answers sent at once to two instances count
// twice and neither is lost. Taking the entry and putting it back would
// leave it absent in between (a concurrent step on another instance would
// be told there is no sign-in) and would lose it if the instance stopped
// in between.

// pendingRetries bounds the compare-and-set rounds of one attempt.
const pendingRetries = 16

// signInJSON is SignIn as the shared store holds it, unexported fields
// included.
type signInJSON struct {
	UserID      qrauth.UserID   `json:"user_id"`
	DeviceID    qrauth.DeviceID `json:"device_id,omitempty"`
	IP          string          `json:"ip,omitempty"`
	UserAgent   string          `json:"user_agent,omitempty"`
	Methods     []string        `json:"methods,omitempty"`
	Identifying []string        `json:"identifying,omitempty"`
	BindHash    []byte          `json:"bind_hash"`
	Expires     time.Time       `json:"expires"`
	Attempts    int             `json:"attempts,omitempty"`
	Scanned     time.Time       `json:"scanned,omitzero"`
}

func (si *SignIn) marshal() ([]byte, error) {
	return json.Marshal(signInJSON{
		UserID: si.UserID, DeviceID: si.DeviceID, IP: si.IP, UserAgent: si.UserAgent,
		Methods: si.Methods, Identifying: si.Identifying,
		BindHash: si.bindHash, Expires: si.expires, Attempts: si.attempts, Scanned: si.scanned,
	})
}

func unmarshalSignIn(b []byte) (*SignIn, error) {
	var j signInJSON
	if err := json.Unmarshal(b, &j); err != nil {
		return nil, err
	}
	if j.UserID == "" || len(j.BindHash) == 0 || j.Expires.IsZero() {
		return nil, errors.New("incomplete record")
	}
	return &SignIn{
		UserID: j.UserID, DeviceID: j.DeviceID, IP: j.IP, UserAgent: j.UserAgent,
		Methods: j.Methods, Identifying: j.Identifying,
		bindHash: j.BindHash, expires: j.Expires, attempts: j.Attempts, scanned: j.Scanned,
	}, nil
}

// pendingKey is the shared key of the pending cookie tok.
func pendingKey(tok string) string {
	h := sha256.Sum256([]byte(tok))
	return "pending:" + hex.EncodeToString(h[:])
}

// pendingTTLFor is how long the store keeps si: until it expires, and at
// least a second (the expiry check on reading decides; the TTL only makes
// sure the record goes).
func (s *Server) pendingTTLFor(si *SignIn) time.Duration {
	return max(si.expires.Sub(s.cfg.Now()), time.Second)
}

// parkShared stores si under the fresh pending cookie tok.
func (s *Server) parkShared(ctx context.Context, tok string, si *SignIn) error {
	v, err := si.marshal()
	if err != nil {
		return qrauth.Internal(err)
	}
	if err := s.cfg.Shared.Create(ctx, pendingKey(tok), v, s.pendingTTLFor(si)); err != nil {
		// A conflict would mean two random 32-byte tokens collided.
		return qrauth.Internal(fmt.Errorf("park a sign-in: %w", err))
	}
	return nil
}

// pendingShared is pendingSignIn (count) or peekSignIn (!count) on the
// shared store, with the same answers: no record, an expired one or one
// past maxPendingAttempts (both then removed), or one bound to another
// browser is errNoPending; otherwise a copy of the sign-in, the attempt
// counted when count. (As in memory, the copy a peek returns carries the
// attempt it did not count.)
func (s *Server) pendingShared(ctx context.Context, tok, bind string, count bool) (*SignIn, error) {
	key := pendingKey(tok)
	for range pendingRetries {
		v, ver, err := s.cfg.Shared.Load(ctx, key)
		if errors.Is(err, shared.ErrNotFound) {
			return nil, errNoPending
		} else if err != nil {
			return nil, qrauth.Internal(fmt.Errorf("read a pending sign-in: %w", err))
		}
		si, err := unmarshalSignIn(v)
		if err != nil {
			return nil, qrauth.Internal(fmt.Errorf("read a pending sign-in: %w", err))
		}
		switch {
		case !s.cfg.Now().Before(si.expires), si.attempts >= maxPendingAttempts:
			if err := s.cfg.Shared.Delete(ctx, key); err != nil {
				return nil, qrauth.Internal(fmt.Errorf("drop a pending sign-in: %w", err))
			}
			return nil, errNoPending
		case subtle.ConstantTimeCompare(si.bindHash, qrauth.HashToken(bind)) != 1:
			return nil, errNoPending
		}
		si.attempts++
		if !count {
			return si, nil
		}
		nv, err := si.marshal()
		if err != nil {
			return nil, qrauth.Internal(err)
		}
		_, err = s.cfg.Shared.Swap(ctx, key, ver, nv, s.pendingTTLFor(si))
		switch {
		case err == nil:
			return si, nil
		case errors.Is(err, shared.ErrConflict):
			continue // another instance counted or re-parked: decide again
		case errors.Is(err, shared.ErrNotFound):
			return nil, errNoPending // dropped meanwhile (used, or expired)
		default:
			return nil, qrauth.Internal(fmt.Errorf("count a pending sign-in attempt: %w", err))
		}
	}
	return nil, qrauth.Internal(errors.New("count a pending sign-in attempt: too much contention"))
}
