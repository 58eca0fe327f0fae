package store

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/qrauth/qrauth"
	"github.com/qrauth/qrauth/recovery"
	bolt "go.etcd.io/bbolt"
)

// Buckets of the recovery flow:
//
//	recovery_codes          code hash (HMAC-SHA-256) → recoveryCode
//	recovery_codes_by_user  UserID "/" code hash → kind
//	recovery_state          UserID → recoveryState
//
// Codes of both kinds live in one bucket so that one lookup of the hash
// finds whichever kind the phone sent; the by-user index lets a new set
// replace the old one and count what is left.
var (
	bucketRecoveryCodes       = []byte("recovery_codes")
	bucketRecoveryCodesByUser = []byte("recovery_codes_by_user")
	bucketRecoveryState       = []byte("recovery_state")
)

var _ recovery.Store = (*DB)(nil)

type recoveryCode struct {
	UserID    qrauth.UserID `json:"user_id"`
	Kind      string        `json:"kind"`
	IssuedBy  string        `json:"issued_by,omitempty"`
	CreatedAt time.Time     `json:"created_at"`
	ExpiresAt time.Time     `json:"expires_at,omitzero"` // link codes only
}

type recoveryState struct {
	GeneratedAt time.Time `json:"generated_at"`
	Failures    int       `json:"failures"`
	Locked      bool      `json:"locked"`
	LockedAt    time.Time `json:"locked_at"`
}

func errBadRecoveryCode() error {
	return qrauth.Errorf(qrauth.EUNAUTHORIZED, "bad_recovery_code", "That recovery code is not valid, or it was already used.")
}

// ReplaceRecoveryCodes implements recovery.Store.
func (db *DB) ReplaceRecoveryCodes(ctx context.Context, id qrauth.UserID, hashes [][]byte, at time.Time, events ...*qrauth.AuditEvent) (*recovery.Status, error) {
	if err := checkUserID(id); err != nil {
		return nil, err
	}
	seen := map[string]bool{}
	for _, h := range hashes {
		if len(h) != recovery.HashLen || seen[string(h)] {
			return nil, invalidf("recovery code hashes must be %d distinct bytes", recovery.HashLen)
		}
		seen[string(h)] = true
	}
	var st *recovery.Status
	err := db.update(ctx, false, events, func(tx *bolt.Tx) error {
		if tx.Bucket(bucketUsers).Get([]byte(id)) == nil {
			return errUserNotFound()
		}
		codes, byUser := tx.Bucket(bucketRecoveryCodes), tx.Bucket(bucketRecoveryCodesByUser)
		var old [][]byte
		if err := scanUser(byUser, id, func(k, v []byte) error {
			if string(v) == recovery.KindRecovery {
				old = append(old, bytes.Clone(k))
			}
			return nil
		}); err != nil {
			return err
		}
		prefix := len(userPrefix(id))
		for _, k := range old {
			if err := codes.Delete(k[prefix:]); err != nil {
				return err
			} else if err := byUser.Delete(k); err != nil {
				return err
			}
		}
		for _, h := range hashes {
			if codes.Get(h) != nil {
				// 2^-256 by chance: a caller that passes a hash it used before.
				return qrauth.Errorf(qrauth.ECONFLICT, "recovery_code_exists", "A recovery code is already in use; generate a new set.")
			}
			c := recoveryCode{UserID: id, Kind: recovery.KindRecovery, CreatedAt: at}
			if err := put(codes, h, &c); err != nil {
				return err
			} else if err := byUser.Put(userKey(id, h), []byte(recovery.KindRecovery)); err != nil {
				return err
			}
		}
		if err := put(tx.Bucket(bucketRecoveryState), []byte(id), &recoveryState{GeneratedAt: at}); err != nil {
			return err
		}
		var err error
		st, err = recoveryStatus(tx, id)
		return err
	})
	if err != nil {
		return nil, err
	}
	return st, nil
}

// FindRecoveryStatus implements recovery.Store.
func (db *DB) FindRecoveryStatus(ctx context.Context, id qrauth.UserID) (*recovery.Status, error) {
	var st *recovery.Status
	err := db.view(ctx, func(tx *bolt.Tx) error {
		if checkUserID(id) != nil || tx.Bucket(bucketUsers).Get([]byte(id)) == nil {
			return errUserNotFound()
		}
		var err error
		st, err = recoveryStatus(tx, id)
		return err
	})
	if err != nil {
		return nil, err
	}
	return st, nil
}

func recoveryStatus(tx *bolt.Tx, id qrauth.UserID) (*recovery.Status, error) {
	s, err := get[recoveryState](tx.Bucket(bucketRecoveryState), []byte(id))
	if err != nil {
		return nil, err
	} else if s == nil {
		s = &recoveryState{}
	}
	st := &recovery.Status{UserID: id, GeneratedAt: s.GeneratedAt, Failures: s.Failures, Locked: s.Locked, LockedAt: s.LockedAt}
	err = scanUser(tx.Bucket(bucketRecoveryCodesByUser), id, func(_, v []byte) error {
		if string(v) == recovery.KindRecovery {
			st.Remaining++
		}
		return nil
	})
	return st, err
}

// CreateLinkCode implements recovery.Store.
func (db *DB) CreateLinkCode(ctx context.Context, c *recovery.LinkCode, events ...*qrauth.AuditEvent) error {
	if c == nil || len(c.Hash) != recovery.HashLen || c.ExpiresAt.IsZero() || c.IssuedBy == "" {
		return invalidf("CreateLinkCode needs a hash, an expiry and an issuer")
	} else if err := checkUserID(c.UserID); err != nil {
		return err
	}
	rec := recoveryCode{UserID: c.UserID, Kind: recovery.KindLink, IssuedBy: c.IssuedBy, CreatedAt: c.CreatedAt, ExpiresAt: c.ExpiresAt}
	h := bytes.Clone(c.Hash)
	return db.update(ctx, true, events, func(tx *bolt.Tx) error {
		if tx.Bucket(bucketUsers).Get([]byte(rec.UserID)) == nil {
			return errUserNotFound()
		} else if tx.Bucket(bucketRecoveryCodes).Get(h) != nil {
			return qrauth.Errorf(qrauth.ECONFLICT, "recovery_code_exists", "That code is already in use.")
		}
		if err := put(tx.Bucket(bucketRecoveryCodes), h, &rec); err != nil {
			return err
		}
		return tx.Bucket(bucketRecoveryCodesByUser).Put(userKey(rec.UserID, h), []byte(recovery.KindLink))
	})
}

// RedeemRecovery implements recovery.Store. Everything happens in one
// write transaction: bbolt serializes writers, so of two concurrent
// redemptions of a code the second finds it gone.
func (db *DB) RedeemRecovery(ctx context.Context, r *recovery.Redemption) (*recovery.Redeemed, error) {
	if r == nil || r.Device == nil || r.Device.ID == "" || r.Device.PhoneIDHash == "" {
		return nil, invalidf("RedeemRecovery needs a hash and a device")
	}
	if len(r.Hash) != recovery.HashLen {
		return nil, errBadRecoveryCode()
	}
	var out *recovery.Redeemed
	var p *pendingEvents
	err := db.update(ctx, false, nil, func(tx *bolt.Tx) error {
		out = nil
		codes, byUser := tx.Bucket(bucketRecoveryCodes), tx.Bucket(bucketRecoveryCodesByUser)
		c, err := get[recoveryCode](codes, r.Hash)
		if err != nil {
			return err
		} else if c == nil {
			return errBadRecoveryCode()
		}
		state, err := get[recoveryState](tx.Bucket(bucketRecoveryState), []byte(c.UserID))
		if err != nil {
			return err
		} else if state == nil {
			state = &recoveryState{}
		}
		switch c.Kind {
		case recovery.KindLink:
			if !r.Now.Before(c.ExpiresAt) {
				return qrauth.Errorf(qrauth.EEXPIRED, "link_code_expired", "This link code has expired. Ask the helpdesk for a new one.")
			}
			// The helpdesk has checked who the person is: the lock goes.
			state.Locked, state.LockedAt = false, time.Time{}
		case recovery.KindRecovery:
			if state.Locked {
				return qrauth.Errorf(qrauth.EFORBIDDEN, "recovery_locked",
					"Recovery codes of this account are locked after too many wrong codes. Ask the helpdesk for a link code.")
			}
		default:
			return fmt.Errorf("recovery code of unknown kind %q", c.Kind)
		}
		dev := *r.Device
		dev.UserID = c.UserID
		if u, err := findUser(tx, dev.UserID); err != nil {
			return err
		} else if err := u.CheckEnabled(); err != nil {
			// A disabled account is not recovered, and the code stays.
			return err
		} else if tx.Bucket(bucketDevices).Get([]byte(dev.ID)) != nil {
			return errDeviceExists()
		} else if owner := tx.Bucket(bucketUsersByPhone).Get([]byte(dev.PhoneIDHash)); owner != nil && string(owner) != string(dev.UserID) {
			return errPhoneTaken()
		}
		if err := codes.Delete(r.Hash); err != nil {
			return err
		} else if err := byUser.Delete(userKey(c.UserID, r.Hash)); err != nil {
			return err
		}
		if err := putDevice(tx, &dev); err != nil {
			return err
		}
		var sessions []*qrauth.Session
		if err := scanUser(tx.Bucket(bucketSessionsByUser), c.UserID, func(_, v []byte) error {
			s, err := findSession(tx, qrauth.SessionID(v))
			if err != nil {
				return err
			}
			sessions = append(sessions, s)
			return nil
		}); err != nil {
			return err
		}
		for _, s := range sessions {
			if err := deleteSession(tx, s); err != nil {
				return err
			}
		}
		state.Failures = 0
		if err := put(tx.Bucket(bucketRecoveryState), []byte(c.UserID), state); err != nil {
			return err
		}
		st, err := recoveryStatus(tx, c.UserID)
		if err != nil {
			return err
		}
		detail := fmt.Sprintf("%s; new phone %q; %d sessions ended", c.Kind, dev.Name, len(sessions))
		if c.IssuedBy != "" {
			detail = fmt.Sprintf("%s issued by %s; new phone %q; %d sessions ended", c.Kind, c.IssuedBy, dev.Name, len(sessions))
		}
		ev := &qrauth.AuditEvent{Time: r.Now, Type: recovery.AuditRecovered, UserID: c.UserID, DeviceID: dev.ID, IP: r.IP, Detail: detail}
		// The event names the account, known only now: it is written
		// here rather than passed to update.
		if p, err = newPendingEvents([]*qrauth.AuditEvent{ev}); err != nil {
			return err
		} else if err := p.write(tx); err != nil {
			return err
		}
		out = &recovery.Redeemed{UserID: c.UserID, Kind: c.Kind, IssuedBy: c.IssuedBy,
			SessionsEnded: len(sessions), Remaining: st.Remaining, Event: ev}
		return nil
	})
	if err != nil {
		return nil, err
	}
	p.commit(db.obs)
	return out, nil
}

// RecordRecoveryFailure implements recovery.Store.
func (db *DB) RecordRecoveryFailure(ctx context.Context, id qrauth.UserID, at time.Time, max int, onLock *qrauth.AuditEvent) (*recovery.Status, error) {
	if err := checkUserID(id); err != nil {
		return nil, err
	} else if max < 1 {
		return nil, invalidf("max failures must be at least 1")
	}
	var st *recovery.Status
	var p *pendingEvents
	err := db.update(ctx, true, nil, func(tx *bolt.Tx) error {
		p = nil
		if tx.Bucket(bucketUsers).Get([]byte(id)) == nil {
			return errUserNotFound()
		}
		s, err := get[recoveryState](tx.Bucket(bucketRecoveryState), []byte(id))
		if err != nil {
			return err
		} else if s == nil {
			s = &recoveryState{}
		}
		s.Failures++
		if !s.Locked && s.Failures >= max {
			s.Locked, s.LockedAt = true, at
			if onLock != nil {
				if p, err = newPendingEvents([]*qrauth.AuditEvent{onLock}); err != nil {
					return err
				} else if err := p.write(tx); err != nil {
					return err
				}
			}
		}
		if err := put(tx.Bucket(bucketRecoveryState), []byte(id), s); err != nil {
			return err
		}
		st, err = recoveryStatus(tx, id)
		return err
	})
	if err != nil {
		return nil, err
	}
	if p != nil {
		p.commit(db.obs)
	}
	return st, nil
}

// DeleteExpiredLinkCodes implements recovery.Store. It finds expired
// link codes in a read transaction, so that the janitor's call every 30 s
// costs no write (and no fsync) when there is nothing to delete. Link
// codes are few (helpdesk work, minutes long), so a scan is cheap;
// recovery codes never expire and are skipped.
func (db *DB) DeleteExpiredLinkCodes(ctx context.Context, now time.Time) (int, error) {
	var gone []recoveryKey
	err := db.view(ctx, func(tx *bolt.Tx) error {
		return tx.Bucket(bucketRecoveryCodes).ForEach(func(k, v []byte) error {
			var c recoveryCode
			if err := json.Unmarshal(v, &c); err != nil {
				return fmt.Errorf("decode recovery code: %w", err)
			}
			if c.Kind == recovery.KindLink && !now.Before(c.ExpiresAt) {
				gone = append(gone, recoveryKey{bytes.Clone(k), c.UserID})
			}
			return nil
		})
	})
	if err != nil || len(gone) == 0 {
		return 0, err
	}
	var n int
	err = db.update(ctx, true, nil, func(tx *bolt.Tx) error {
		n = 0
		codes := tx.Bucket(bucketRecoveryCodes)
		for _, g := range gone {
			// Used since the scan? Then it is gone already.
			if codes.Get(g.hash) == nil {
				continue
			}
			if err := codes.Delete(g.hash); err != nil {
				return err
			} else if err := tx.Bucket(bucketRecoveryCodesByUser).Delete(userKey(g.user, g.hash)); err != nil {
				return err
			}
			n++
		}
		return nil
	})
	if err != nil {
		return 0, err
	}
	return n, nil
}

type recoveryKey struct {
	hash []byte
	user qrauth.UserID
}

// checkRecoveryIndexes checks that every code and its by-user entry agree,
// and that codes and states belong to existing users.
func checkRecoveryIndexes(tx *bolt.Tx, users map[qrauth.UserID]bool) []error {
	var errs []error
	codes, byUser := tx.Bucket(bucketRecoveryCodes), tx.Bucket(bucketRecoveryCodesByUser)
	if codes == nil || byUser == nil || tx.Bucket(bucketRecoveryState) == nil {
		return []error{fmt.Errorf("recovery buckets are missing")}
	}
	err := codes.ForEach(func(k, v []byte) error {
		c, err := decode[recoveryCode](k, v)
		if err != nil {
			return err
		}
		switch {
		case !users[c.UserID]:
			errs = append(errs, fmt.Errorf("recovery code %x belongs to missing user %q", k, c.UserID))
		case string(byUser.Get(userKey(c.UserID, k))) != c.Kind:
			errs = append(errs, fmt.Errorf("recovery code %x missing from its user's index", k))
		}
		return nil
	})
	if err == nil {
		err = byUser.ForEach(func(k, v []byte) error {
			i := bytes.IndexByte(k, '/')
			c, err := get[recoveryCode](codes, k[i+1:])
			if err != nil {
				return err
			} else if i < 0 || c == nil || c.Kind != string(v) || string(c.UserID) != string(k[:i]) {
				errs = append(errs, fmt.Errorf("recovery index entry %x does not match a code", k))
			}
			return nil
		})
	}
	if err == nil {
		err = tx.Bucket(bucketRecoveryState).ForEach(func(k, _ []byte) error {
			if !users[qrauth.UserID(k)] {
				errs = append(errs, fmt.Errorf("recovery state of missing user %q", k))
			}
			return nil
		})
	}
	if err != nil {
		errs = append(errs, fmt.Errorf("recovery: %w", err))
	}
	return errs
}

// deleteRecoveryOfUser removes the user's recovery and link codes and
// recovery state (DeleteUser).
func deleteRecoveryOfUser(tx *bolt.Tx, id qrauth.UserID) error {
	codes, byUser := tx.Bucket(bucketRecoveryCodes), tx.Bucket(bucketRecoveryCodesByUser)
	prefix := len(userPrefix(id))
	var hashes [][]byte
	if err := scanUser(byUser, id, func(k, _ []byte) error {
		hashes = append(hashes, bytes.Clone(k[prefix:]))
		return nil
	}); err != nil {
		return err
	}
	for _, h := range hashes {
		if err := codes.Delete(h); err != nil {
			return err
		}
	}
	if err := deletePrefix(byUser, userPrefix(id)); err != nil {
		return err
	}
	return tx.Bucket(bucketRecoveryState).Delete([]byte(id))
}
