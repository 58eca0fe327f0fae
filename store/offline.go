package store

import (
	"bytes"
	"context"
	"encoding/binary"
	"slices"
	"time"

	"github.com/qrauth/qrauth"
	bolt "go.etcd.io/bbolt"
)

// Buckets of the offline flow (see doc.go for the core ones):
//
//	offline_credentials          DeviceID "/" method → OfflineCredential
//	offline_credentials_by_user  UserID "/" DeviceID "/" method → DeviceID "/" method
//	offline_sessions             session id → OfflineSession
//	approvals                    approval id → Approval
//	approvals_by_token           TokenHash (raw SHA-256) → approval id
//	offline_expiry               ExpiresAt (8 bytes big-endian unix ns) kind id → empty,
//	                             where kind is "s" (session) or "a" (approval)
//
// offline_expiry lets DeleteOfflineRecords remove old records with one
// cursor walk instead of reading every record.
var (
	bucketOfflineCreds       = []byte("offline_credentials")
	bucketOfflineCredsByUser = []byte("offline_credentials_by_user")
	bucketOfflineSessions    = []byte("offline_sessions")
	bucketApprovals          = []byte("approvals")
	bucketApprovalsByToken   = []byte("approvals_by_token")
	bucketOfflineExpiry      = []byte("offline_expiry")
)

func errOfflineMethodNotFound() error {
	return qrauth.Errorf(qrauth.ENOTFOUND, "offline_method_not_found", "This offline method is not activated on that device.")
}

func errOfflineSessionNotFound() error {
	return qrauth.Errorf(qrauth.ENOTFOUND, "offline_session_not_found", "There is no such offline code session.")
}

func errApprovalNotFound() error {
	return qrauth.Errorf(qrauth.ENOTFOUND, "approval_not_found", "There is no such transaction.")
}

// sessionStateError is the refusal for a session that is not pending.
func sessionStateError(st qrauth.OfflineState) error {
	switch st {
	case qrauth.OfflineExpired:
		return qrauth.Errorf(qrauth.EEXPIRED, "session_expired", "This code session has expired. Start a new one.")
	case qrauth.OfflineSucceeded:
		return qrauth.Errorf(qrauth.ECONFLICT, "session_succeeded", "A code was already verified for this session; a code is never accepted twice.")
	case qrauth.OfflineCancelled:
		return qrauth.Errorf(qrauth.ECONFLICT, "session_cancelled", "This code session was cancelled.")
	case qrauth.OfflineLocked:
		return qrauth.Errorf(qrauth.ECONFLICT, "session_locked", "This code session ended because the method was locked after too many wrong codes.")
	}
	return qrauth.Errorf(qrauth.ECONFLICT, "session_"+string(st), "This code session has ended (%s).", st)
}

func approvalStateError(st qrauth.ApprovalState) error {
	if st == qrauth.ApprovalExpired {
		return qrauth.Errorf(qrauth.EEXPIRED, "approval_expired", "This transaction has expired.")
	}
	return qrauth.Errorf(qrauth.ECONFLICT, "approval_"+string(st), "This transaction was already %s.", st)
}

func credKey(id qrauth.DeviceID, m qrauth.OfflineMethod) []byte {
	return []byte(string(id) + "/" + string(m))
}

func expiryKey(at time.Time, kind byte, id string) []byte {
	k := make([]byte, 9, 9+len(id))
	binary.BigEndian.PutUint64(k, uint64(max(at.UnixNano(), 0)))
	k[8] = kind
	return append(k, id...)
}

func checkCred(id qrauth.DeviceID, m qrauth.OfflineMethod) error {
	if id == "" || bytes.Contains([]byte(id), []byte("/")) {
		return invalidf("invalid device id %q", id)
	} else if !qrauth.ValidOfflineMethod(m) {
		return invalidf("invalid offline method %q", m)
	}
	return nil
}

func findCred(tx *bolt.Tx, id qrauth.DeviceID, m qrauth.OfflineMethod) (*qrauth.OfflineCredential, error) {
	c, err := get[qrauth.OfflineCredential](tx.Bucket(bucketOfflineCreds), credKey(id, m))
	if err != nil {
		return nil, err
	} else if c == nil {
		return nil, errOfflineMethodNotFound()
	}
	return c, nil
}

// PutOfflineCredential implements qrauth.OfflineStore.
func (db *DB) PutOfflineCredential(ctx context.Context, c *qrauth.OfflineCredential, events ...*qrauth.AuditEvent) error {
	if c == nil {
		return invalidf("PutOfflineCredential needs a credential")
	} else if err := checkUserID(c.UserID); err != nil {
		return err
	} else if err := checkCred(c.DeviceID, c.Method); err != nil {
		return err
	} else if len(c.SealedKey) == 0 || c.KeyID == "" {
		return invalidf("credential without key")
	}
	cred := *c
	cred.SealedKey = bytes.Clone(c.SealedKey)
	return db.update(ctx, false, events, func(tx *bolt.Tx) error {
		d, err := findDevice(tx, cred.DeviceID)
		if err != nil {
			return err
		} else if d.UserID != cred.UserID {
			return errDeviceNotFound()
		}
		old, err := get[qrauth.OfflineCredential](tx.Bucket(bucketOfflineCreds), credKey(cred.DeviceID, cred.Method))
		if err != nil {
			return err
		} else if old != nil && old.Locked {
			return qrauth.Errorf(qrauth.ECONFLICT, "method_locked",
				"This offline method is locked after too many wrong codes; an administrator must unlock it before it can be activated again.")
		}
		if err := put(tx.Bucket(bucketOfflineCreds), credKey(cred.DeviceID, cred.Method), &cred); err != nil {
			return err
		}
		return tx.Bucket(bucketOfflineCredsByUser).Put(userKey(cred.UserID, credKey(cred.DeviceID, cred.Method)), credKey(cred.DeviceID, cred.Method))
	})
}

// FindOfflineCredential implements qrauth.OfflineStore.
func (db *DB) FindOfflineCredential(ctx context.Context, id qrauth.DeviceID, m qrauth.OfflineMethod) (*qrauth.OfflineCredential, error) {
	if checkCred(id, m) != nil {
		return nil, errOfflineMethodNotFound()
	}
	var c *qrauth.OfflineCredential
	err := db.view(ctx, func(tx *bolt.Tx) (err error) {
		c, err = findCred(tx, id, m)
		return err
	})
	if err != nil {
		return nil, err
	}
	return c, nil
}

// FindOfflineCredentialsByUser implements qrauth.OfflineStore.
func (db *DB) FindOfflineCredentialsByUser(ctx context.Context, id qrauth.UserID) ([]*qrauth.OfflineCredential, error) {
	if err := checkUserID(id); err != nil {
		return nil, err
	}
	out := []*qrauth.OfflineCredential{}
	err := db.view(ctx, func(tx *bolt.Tx) error {
		creds := tx.Bucket(bucketOfflineCreds)
		return scanUser(tx.Bucket(bucketOfflineCredsByUser), id, func(_, v []byte) error {
			c, err := get[qrauth.OfflineCredential](creds, v)
			if err != nil {
				return err
			} else if c != nil {
				out = append(out, c)
			}
			return nil
		})
	})
	if err != nil {
		return nil, err
	}
	// The index is ordered by device id then method already; sorting
	// states the contract rather than relying on the key layout.
	slices.SortStableFunc(out, func(a, b *qrauth.OfflineCredential) int {
		if a.DeviceID != b.DeviceID {
			return bytes.Compare([]byte(a.DeviceID), []byte(b.DeviceID))
		}
		return bytes.Compare([]byte(a.Method), []byte(b.Method))
	})
	return out, nil
}

// DeleteOfflineCredential implements qrauth.OfflineStore.
func (db *DB) DeleteOfflineCredential(ctx context.Context, id qrauth.DeviceID, m qrauth.OfflineMethod, events ...*qrauth.AuditEvent) error {
	if checkCred(id, m) != nil {
		return errOfflineMethodNotFound()
	}
	return db.update(ctx, false, events, func(tx *bolt.Tx) error {
		c, err := findCred(tx, id, m)
		if err != nil {
			return err
		}
		if err := tx.Bucket(bucketOfflineCreds).Delete(credKey(id, m)); err != nil {
			return err
		}
		return tx.Bucket(bucketOfflineCredsByUser).Delete(userKey(c.UserID, credKey(id, m)))
	})
}

// UnlockOfflineCredential implements qrauth.OfflineStore.
func (db *DB) UnlockOfflineCredential(ctx context.Context, id qrauth.DeviceID, m qrauth.OfflineMethod, events ...*qrauth.AuditEvent) (*qrauth.OfflineCredential, error) {
	if checkCred(id, m) != nil {
		return nil, errOfflineMethodNotFound()
	}
	var c *qrauth.OfflineCredential
	err := db.update(ctx, false, events, func(tx *bolt.Tx) (err error) {
		if c, err = findCred(tx, id, m); err != nil {
			return err
		}
		c.Locked, c.LockedAt, c.Failures = false, time.Time{}, 0
		return put(tx.Bucket(bucketOfflineCreds), credKey(id, m), c)
	})
	if err != nil {
		return nil, err
	}
	return c, nil
}

// CreateOfflineSession implements qrauth.OfflineStore.
func (db *DB) CreateOfflineSession(ctx context.Context, s *qrauth.OfflineSession) error {
	if s == nil || s.ID == "" {
		return invalidf("CreateOfflineSession needs a session with an id")
	} else if err := checkUserID(s.UserID); err != nil {
		return err
	}
	sess := *s
	sess.BindHash, sess.ViewTokenHash = bytes.Clone(s.BindHash), bytes.Clone(s.ViewTokenHash)
	return db.update(ctx, true, nil, func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketOfflineSessions)
		if tx.Bucket(bucketUsers).Get([]byte(sess.UserID)) == nil {
			return errUserNotFound()
		} else if b.Get([]byte(sess.ID)) != nil {
			return qrauth.Errorf(qrauth.ECONFLICT, "session_exists", "This offline code session already exists.")
		}
		if err := put(b, []byte(sess.ID), &sess); err != nil {
			return err
		}
		return tx.Bucket(bucketOfflineExpiry).Put(expiryKey(sess.ExpiresAt, 's', sess.ID), present)
	})
}

// FindOfflineSession implements qrauth.OfflineStore.
func (db *DB) FindOfflineSession(ctx context.Context, id string) (*qrauth.OfflineSession, error) {
	var s *qrauth.OfflineSession
	err := db.view(ctx, func(tx *bolt.Tx) (err error) {
		s, err = findOfflineSession(tx, id)
		return err
	})
	if err != nil {
		return nil, err
	}
	return s, nil
}

func findOfflineSession(tx *bolt.Tx, id string) (*qrauth.OfflineSession, error) {
	if id == "" {
		return nil, errOfflineSessionNotFound()
	}
	s, err := get[qrauth.OfflineSession](tx.Bucket(bucketOfflineSessions), []byte(id))
	if err != nil {
		return nil, err
	} else if s == nil {
		return nil, errOfflineSessionNotFound()
	}
	return s, nil
}

// SettleOfflineAttempt implements qrauth.OfflineStore. It runs outside
// Batch because the audit events it appends depend on what it finds, and
// Batch may run a function twice.
func (db *DB) SettleOfflineAttempt(ctx context.Context, a qrauth.OfflineAttempt) (*qrauth.OfflineSession, *qrauth.OfflineCredential, error) {
	if a.MaxFailures < 1 {
		return nil, nil, invalidf("MaxFailures must be at least 1")
	}
	var (
		sess    *qrauth.OfflineSession
		cred    *qrauth.OfflineCredential
		pending *pendingEvents
	)
	err := db.update(ctx, false, nil, func(tx *bolt.Tx) (err error) {
		if sess, err = findOfflineSession(tx, a.SessionID); err != nil {
			return err
		}
		if st := sess.Status(a.At); st != qrauth.OfflinePending {
			return sessionStateError(st)
		}
		var events []*qrauth.AuditEvent
		cred, err = findCred(tx, sess.DeviceID, sess.Method)
		switch {
		case qrauth.ErrorCode(err) == qrauth.ENOTFOUND:
			cred = nil
			sess.State = qrauth.OfflineFailed
		case err != nil:
			return err
		case cred.UserID != sess.UserID || cred.KeyID != sess.KeyID || cred.KeyID != a.KeyID:
			sess.State = qrauth.OfflineFailed
		case cred.Locked:
			sess.State = qrauth.OfflineLocked
		case a.OK:
			sess.State = qrauth.OfflineSucceeded
			cred.Failures, cred.LastUsedAt = 0, a.At
			if a.OnSuccess != nil {
				events = append(events, a.OnSuccess)
			}
		default:
			sess.Failures++
			cred.Failures++
			if cred.Failures >= a.MaxFailures {
				cred.Locked, cred.LockedAt = true, a.At
				sess.State = qrauth.OfflineLocked
				if a.OnLock != nil {
					events = append(events, a.OnLock)
				}
			}
		}
		if sess.State != qrauth.OfflinePending {
			sess.EndedAt = a.At
		}
		if err := put(tx.Bucket(bucketOfflineSessions), []byte(sess.ID), sess); err != nil {
			return err
		}
		if cred != nil {
			if err := put(tx.Bucket(bucketOfflineCreds), credKey(cred.DeviceID, cred.Method), cred); err != nil {
				return err
			}
		}
		if pending, err = newPendingEvents(events); err != nil {
			return err
		}
		return pending.write(tx)
	})
	if err != nil {
		return nil, nil, err
	}
	pending.commit()
	return sess, cred, nil
}

// CancelOfflineSession implements qrauth.OfflineStore.
func (db *DB) CancelOfflineSession(ctx context.Context, id string, at time.Time) (*qrauth.OfflineSession, error) {
	var s *qrauth.OfflineSession
	err := db.update(ctx, false, nil, func(tx *bolt.Tx) (err error) {
		if s, err = findOfflineSession(tx, id); err != nil {
			return err
		}
		switch st := s.Status(at); st {
		case qrauth.OfflineCancelled:
			return nil
		case qrauth.OfflinePending:
		default:
			return sessionStateError(st)
		}
		s.State, s.EndedAt = qrauth.OfflineCancelled, at
		return put(tx.Bucket(bucketOfflineSessions), []byte(id), s)
	})
	if err != nil {
		return nil, err
	}
	return s, nil
}

// DeleteOfflineRecords implements qrauth.OfflineStore.
func (db *DB) DeleteOfflineRecords(ctx context.Context, before time.Time) (int, error) {
	n := 0
	err := db.update(ctx, false, nil, func(tx *bolt.Tx) error {
		n = 0
		exp := tx.Bucket(bucketOfflineExpiry)
		limit := expiryKey(before, 0, "")
		var keys [][]byte
		c := exp.Cursor()
		for k, _ := c.First(); k != nil && bytes.Compare(k[:8], limit[:8]) < 0; k, _ = c.Next() {
			keys = append(keys, bytes.Clone(k))
		}
		for _, k := range keys {
			if len(k) < 9 {
				continue
			}
			id := k[9:]
			switch k[8] {
			case 's':
				if err := tx.Bucket(bucketOfflineSessions).Delete(id); err != nil {
					return err
				}
			case 'a':
				a, err := get[qrauth.Approval](tx.Bucket(bucketApprovals), id)
				if err != nil {
					return err
				} else if a != nil {
					if err := tx.Bucket(bucketApprovalsByToken).Delete(a.TokenHash); err != nil {
						return err
					}
				}
				if err := tx.Bucket(bucketApprovals).Delete(id); err != nil {
					return err
				}
			}
			if err := exp.Delete(k); err != nil {
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

// CreateApproval implements qrauth.OfflineStore.
func (db *DB) CreateApproval(ctx context.Context, a *qrauth.Approval) error {
	if a == nil || a.ID == "" || len(a.TokenHash) == 0 {
		return invalidf("CreateApproval needs an approval with an id and a token hash")
	} else if err := checkUserID(a.UserID); err != nil {
		return err
	}
	ap := *a
	ap.TokenHash, ap.ViewTokenHash = bytes.Clone(a.TokenHash), bytes.Clone(a.ViewTokenHash)
	return db.update(ctx, true, nil, func(tx *bolt.Tx) error {
		b, byToken := tx.Bucket(bucketApprovals), tx.Bucket(bucketApprovalsByToken)
		if tx.Bucket(bucketUsers).Get([]byte(ap.UserID)) == nil {
			return errUserNotFound()
		} else if b.Get([]byte(ap.ID)) != nil || byToken.Get(ap.TokenHash) != nil {
			return qrauth.Errorf(qrauth.ECONFLICT, "approval_exists", "This transaction already exists.")
		}
		if err := put(b, []byte(ap.ID), &ap); err != nil {
			return err
		} else if err := byToken.Put(ap.TokenHash, []byte(ap.ID)); err != nil {
			return err
		}
		return tx.Bucket(bucketOfflineExpiry).Put(expiryKey(ap.ExpiresAt, 'a', ap.ID), present)
	})
}

func findApproval(tx *bolt.Tx, id string) (*qrauth.Approval, error) {
	if id == "" {
		return nil, errApprovalNotFound()
	}
	a, err := get[qrauth.Approval](tx.Bucket(bucketApprovals), []byte(id))
	if err != nil {
		return nil, err
	} else if a == nil {
		return nil, errApprovalNotFound()
	}
	return a, nil
}

// FindApproval implements qrauth.OfflineStore.
func (db *DB) FindApproval(ctx context.Context, id string) (*qrauth.Approval, error) {
	var a *qrauth.Approval
	err := db.view(ctx, func(tx *bolt.Tx) (err error) {
		a, err = findApproval(tx, id)
		return err
	})
	if err != nil {
		return nil, err
	}
	return a, nil
}

// FindApprovalByTokenHash implements qrauth.OfflineStore.
func (db *DB) FindApprovalByTokenHash(ctx context.Context, tokenHash []byte) (*qrauth.Approval, error) {
	if len(tokenHash) == 0 {
		return nil, errApprovalNotFound()
	}
	var a *qrauth.Approval
	err := db.view(ctx, func(tx *bolt.Tx) (err error) {
		id := tx.Bucket(bucketApprovalsByToken).Get(tokenHash)
		if id == nil {
			return errApprovalNotFound()
		}
		a, err = findApproval(tx, string(id))
		return err
	})
	if err != nil {
		return nil, err
	}
	return a, nil
}

// ScanApproval implements qrauth.OfflineStore.
func (db *DB) ScanApproval(ctx context.Context, id string, device qrauth.DeviceID, at time.Time) (*qrauth.Approval, error) {
	var a *qrauth.Approval
	err := db.update(ctx, true, nil, func(tx *bolt.Tx) (err error) {
		if a, err = findApproval(tx, id); err != nil {
			return err
		}
		if st := a.Status(at); st != qrauth.ApprovalPending {
			return approvalStateError(st)
		}
		if a.ScannedBy != "" {
			return nil
		}
		a.ScannedAt, a.ScannedBy = at, device
		return put(tx.Bucket(bucketApprovals), []byte(id), a)
	})
	if err != nil {
		return nil, err
	}
	return a, nil
}

// DecideApproval implements qrauth.OfflineStore.
func (db *DB) DecideApproval(ctx context.Context, id string, d qrauth.ApprovalDecision, events ...*qrauth.AuditEvent) (*qrauth.Approval, error) {
	switch d.State {
	case qrauth.ApprovalApproved, qrauth.ApprovalDenied, qrauth.ApprovalCancelled:
	default:
		return nil, invalidf("a decision cannot set state %q", d.State)
	}
	var a *qrauth.Approval
	err := db.update(ctx, false, events, func(tx *bolt.Tx) (err error) {
		if a, err = findApproval(tx, id); err != nil {
			return err
		}
		if st := a.Status(d.At); st != qrauth.ApprovalPending {
			return approvalStateError(st)
		}
		a.State, a.DecidedAt, a.DecidedBy, a.Signature = d.State, d.At, d.DeviceID, d.Signature
		return put(tx.Bucket(bucketApprovals), []byte(id), a)
	})
	if err != nil {
		return nil, err
	}
	return a, nil
}
