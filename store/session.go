package store

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"time"

	"github.com/qrauth/qrauth"
	bolt "go.etcd.io/bbolt"
)

func errSessionNotFound() error {
	return qrauth.Errorf(qrauth.ENOTFOUND, "session_not_found", "There is no such session.")
}

// CreateSession implements qrauth.Store. If s.DeviceID is set it must be a
// device of s.UserID, or CreateSession fails with ENOTFOUND
// "device_not_found": a session approved by a device the user does not own
// is a bug upstream, and storing it would make the device list lie. A
// disabled user's session is refused with qrauth.ErrAccountDisabled.
func (db *DB) CreateSession(ctx context.Context, s *qrauth.Session, events ...*qrauth.AuditEvent) error {
	if s == nil {
		return invalidf("CreateSession needs a session")
	} else if s.ID == "" {
		return invalidf("empty session id")
	} else if err := checkUserID(s.UserID); err != nil {
		return err
	} else if len(s.TokenHash) == 0 {
		return invalidf("empty token hash")
	}
	sess := *s
	sess.TokenHash = bytes.Clone(s.TokenHash)
	return db.update(ctx, true, events, func(tx *bolt.Tx) error {
		sessions, byToken := tx.Bucket(bucketSessions), tx.Bucket(bucketSessionsByToken)
		if u, err := findUser(tx, sess.UserID); err != nil {
			return err
		} else if err := u.CheckEnabled(); err != nil {
			// Checked here, in the transaction, and not only by the
			// sign-in pipeline: a sign-in that passed its checks just
			// before the account was disabled must not leave a session.
			return err
		} else if sessions.Get([]byte(sess.ID)) != nil || byToken.Get(sess.TokenHash) != nil {
			return qrauth.Errorf(qrauth.ECONFLICT, "session_exists", "This session already exists.")
		}
		if sess.DeviceID != "" {
			d, err := findDevice(tx, sess.DeviceID)
			if err != nil {
				return err
			} else if d.UserID != sess.UserID {
				return errDeviceNotFound()
			}
			d.LastSeenAt = sess.CreatedAt
			if err := put(tx.Bucket(bucketDevices), []byte(d.ID), d); err != nil {
				return err
			}
		}
		if sess.IP != "" {
			if err := tx.Bucket(bucketAddresses).Put(userKey(sess.UserID, []byte(sess.IP)), present); err != nil {
				return err
			}
		}
		if err := put(sessions, []byte(sess.ID), &sess); err != nil {
			return err
		} else if err := byToken.Put(sess.TokenHash, []byte(sess.ID)); err != nil {
			return err
		}
		return tx.Bucket(bucketSessionsByUser).Put(userKey(sess.UserID, []byte(sess.ID)), []byte(sess.ID))
	})
}

// FindSessionByID implements qrauth.Store.
func (db *DB) FindSessionByID(ctx context.Context, id qrauth.SessionID) (*qrauth.Session, error) {
	var s *qrauth.Session
	err := db.view(ctx, func(tx *bolt.Tx) (err error) {
		s, err = findSession(tx, id)
		return err
	})
	if err != nil {
		return nil, err
	}
	return s, nil
}

// FindSessionByTokenHash implements qrauth.Store.
func (db *DB) FindSessionByTokenHash(ctx context.Context, tokenHash []byte) (*qrauth.Session, error) {
	var s *qrauth.Session
	err := db.view(ctx, func(tx *bolt.Tx) (err error) {
		if len(tokenHash) == 0 {
			return errSessionNotFound()
		}
		id := tx.Bucket(bucketSessionsByToken).Get(tokenHash)
		if id == nil {
			return errSessionNotFound()
		}
		s, err = findSession(tx, qrauth.SessionID(id))
		if qrauth.ErrorCode(err) == qrauth.ENOTFOUND {
			return fmt.Errorf("token index points to missing session %q", id)
		}
		return err
	})
	if err != nil {
		return nil, err
	}
	return s, nil
}

// FindSessionsByUser implements qrauth.Store. Ties in CreatedAt are ordered
// by id so that the order is stable between calls. A user with no sessions,
// or no such user, yields an empty list.
func (db *DB) FindSessionsByUser(ctx context.Context, id qrauth.UserID) ([]*qrauth.Session, error) {
	ss := []*qrauth.Session{}
	if checkUserID(id) != nil {
		return ss, nil
	}
	err := db.view(ctx, func(tx *bolt.Tx) error {
		return scanUser(tx.Bucket(bucketSessionsByUser), id, func(_, v []byte) error {
			s, err := findSession(tx, qrauth.SessionID(v))
			if qrauth.ErrorCode(err) == qrauth.ENOTFOUND {
				return fmt.Errorf("session index of user %q points to missing session %q", id, v)
			} else if err != nil {
				return err
			}
			ss = append(ss, s)
			return nil
		})
	})
	if err != nil {
		return nil, err
	}
	slices.SortFunc(ss, func(a, b *qrauth.Session) int {
		return cmp.Or(b.CreatedAt.Compare(a.CreatedAt), cmp.Compare(a.ID, b.ID))
	})
	return ss, nil
}

// TouchSession implements qrauth.Store.
func (db *DB) TouchSession(ctx context.Context, id qrauth.SessionID, at time.Time) error {
	return db.update(ctx, true, nil, func(tx *bolt.Tx) error {
		s, err := findSession(tx, id)
		if err != nil {
			return err
		}
		s.LastSeenAt = at
		return put(tx.Bucket(bucketSessions), []byte(id), s)
	})
}

// DeleteSession implements qrauth.Store. The session's address stays known:
// KnownAddress answers whether the user ever signed in from it.
func (db *DB) DeleteSession(ctx context.Context, id qrauth.SessionID, events ...*qrauth.AuditEvent) error {
	return db.update(ctx, true, events, func(tx *bolt.Tx) error {
		s, err := findSession(tx, id)
		if err != nil {
			return err
		}
		return deleteSession(tx, s)
	})
}

// DeleteExpiredSessions implements qrauth.Store. It finds candidates in a
// read transaction, which does not block writers, so that the write lock is
// held only for the deletes and sign-ins are not stalled by a long scan.
func (db *DB) DeleteExpiredSessions(ctx context.Context, now time.Time) (int, error) {
	var expired [][]byte
	err := db.view(ctx, func(tx *bolt.Tx) error {
		return tx.Bucket(bucketSessions).ForEach(func(k, v []byte) error {
			var s struct {
				ExpiresAt time.Time `json:"expires_at"`
			}
			if err := json.Unmarshal(v, &s); err != nil {
				return fmt.Errorf("decode session %q: %w", k, err)
			}
			if !now.Before(s.ExpiresAt) {
				expired = append(expired, bytes.Clone(k))
			}
			return nil
		})
	})
	if err != nil || len(expired) == 0 {
		return 0, err
	}

	var n int
	err = db.update(ctx, false, nil, func(tx *bolt.Tx) error {
		for _, id := range expired {
			// Deleted since the scan? Sessions never get a new expiry,
			// so one still present is still expired.
			s, err := get[qrauth.Session](tx.Bucket(bucketSessions), id)
			if err != nil {
				return err
			} else if s == nil {
				continue
			}
			if err := deleteSession(tx, s); err != nil {
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

// deleteSession removes s and its index entries. The token entry is removed
// only if it is s's own, so a corrupt index cannot make one deletion take
// another session's token with it.
func deleteSession(tx *bolt.Tx, s *qrauth.Session) error {
	byToken := tx.Bucket(bucketSessionsByToken)
	if string(byToken.Get(s.TokenHash)) == string(s.ID) {
		if err := byToken.Delete(s.TokenHash); err != nil {
			return err
		}
	}
	if err := tx.Bucket(bucketSessionsByUser).Delete(userKey(s.UserID, []byte(s.ID))); err != nil {
		return err
	}
	return tx.Bucket(bucketSessions).Delete([]byte(s.ID))
}

// KnownAddress implements qrauth.Store.
func (db *DB) KnownAddress(ctx context.Context, id qrauth.UserID, ip string) (bool, error) {
	if ip == "" || checkUserID(id) != nil {
		return false, nil
	}
	var ok bool
	err := db.view(ctx, func(tx *bolt.Tx) error {
		ok = tx.Bucket(bucketAddresses).Get(userKey(id, []byte(ip))) != nil
		return nil
	})
	return ok, err
}

func findSession(tx *bolt.Tx, id qrauth.SessionID) (*qrauth.Session, error) {
	if id == "" {
		return nil, errSessionNotFound()
	}
	s, err := get[qrauth.Session](tx.Bucket(bucketSessions), []byte(id))
	if err != nil {
		return nil, err
	} else if s == nil {
		return nil, errSessionNotFound()
	}
	return s, nil
}
