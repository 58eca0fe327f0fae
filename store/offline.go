package store

import (
	"bytes"
	"context"
	"encoding/binary"
	"slices"
	"time"

	"github.com/qrauth/qrauth"
	"github.com/qrauth/qrauth/offline"
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
func sessionStateError(st offline.State) error {
	switch st {
	case offline.Expired:
		return qrauth.Errorf(qrauth.EEXPIRED, "session_expired", "This code session has expired. Start a new one.")
	case offline.Succeeded:
		return qrauth.Errorf(qrauth.ECONFLICT, "session_succeeded", "A code was already verified for this session; a code is never accepted twice.")
	case offline.Cancelled:
		return qrauth.Errorf(qrauth.ECONFLICT, "session_cancelled", "This code session was cancelled.")
	case offline.Locked:
		return qrauth.Errorf(qrauth.ECONFLICT, "session_locked", "This code session ended because the method was locked after too many wrong codes.")
	}
	return qrauth.Errorf(qrauth.ECONFLICT, "session_"+string(st), "This code session has ended (%s).", st)
}

func approvalStateError(st offline.ApprovalState) error {
	if st == offline.ApprovalExpired {
		return qrauth.Errorf(qrauth.EEXPIRED, "approval_expired", "This transaction has expired.")
	}
	return qrauth.Errorf(qrauth.ECONFLICT, "approval_"+string(st), "This transaction was already %s.", st)
}

func credKey(id qrauth.DeviceID, m offline.Method) []byte {
	return []byte(string(id) + "/" + string(m))
}

func expiryKey(at time.Time, kind byte, id string) []byte {
	k := make([]byte, 9, 9+len(id))
	binary.BigEndian.PutUint64(k, uint64(max(at.UnixNano(), 0)))
	k[8] = kind
	return append(k, id...)
}

func checkCred(id qrauth.DeviceID, m offline.Method) error {
	if id == "" || bytes.Contains([]byte(id), []byte("/")) {
		return invalidf("invalid device id %q", id)
	} else if !offline.ValidMethod(m) {
		return invalidf("invalid offline method %q", m)
	}
	return nil
}

func findCred(tx *bolt.Tx, id qrauth.DeviceID, m offline.Method) (*offline.Credential, error) {
	c, err := get[offline.Credential](tx.Bucket(bucketOfflineCreds), credKey(id, m))
	if err != nil {
		return nil, err
	} else if c == nil {
		return nil, errOfflineMethodNotFound()
	}
	return c, nil
}

// PutOfflineCredential implements offline.Store.
func (db *DB) PutOfflineCredential(ctx context.Context, c *offline.Credential, events ...*qrauth.AuditEvent) error {
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
		old, err := get[offline.Credential](tx.Bucket(bucketOfflineCreds), credKey(cred.DeviceID, cred.Method))
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

// FindOfflineCredential implements offline.Store.
func (db *DB) FindOfflineCredential(ctx context.Context, id qrauth.DeviceID, m offline.Method) (*offline.Credential, error) {
	if checkCred(id, m) != nil {
		return nil, errOfflineMethodNotFound()
	}
	var c *offline.Credential
	err := db.view(ctx, func(tx *bolt.Tx) (err error) {
		c, err = findCred(tx, id, m)
		return err
	})
	if err != nil {
		return nil, err
	}
	return c, nil
}

// FindOfflineCredentialsByUser implements offline.Store.
func (db *DB) FindOfflineCredentialsByUser(ctx context.Context, id qrauth.UserID) ([]*offline.Credential, error) {
	if err := checkUserID(id); err != nil {
		return nil, err
	}
	out := []*offline.Credential{}
	err := db.view(ctx, func(tx *bolt.Tx) error {
		creds := tx.Bucket(bucketOfflineCreds)
		return scanUser(tx.Bucket(bucketOfflineCredsByUser), id, func(_, v []byte) error {
			c, err := get[offline.Credential](creds, v)
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
	slices.SortStableFunc(out, func(a, b *offline.Credential) int {
		if a.DeviceID != b.DeviceID {
			return bytes.Compare([]byte(a.DeviceID), []byte(b.DeviceID))
		}
		return bytes.Compare([]byte(a.Method), []byte(b.Method))
	})
	return out, nil
}

// DeleteOfflineCredential implements offline.Store.
func (db *DB) DeleteOfflineCredential(ctx context.Context, id qrauth.DeviceID, m offline.Method, events ...*qrauth.AuditEvent) error {
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

// UnlockOfflineCredential implements offline.Store.
func (db *DB) UnlockOfflineCredential(ctx context.Context, id qrauth.DeviceID, m offline.Method, events ...*qrauth.AuditEvent) (*offline.Credential, error) {
	if checkCred(id, m) != nil {
		return nil, errOfflineMethodNotFound()
	}
	var c *offline.Credential
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

// CreateOfflineSession implements offline.Store.
func (db *DB) CreateOfflineSession(ctx context.Context, s *offline.Session) error {
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

// FindOfflineSession implements offline.Store.
func (db *DB) FindOfflineSession(ctx context.Context, id string) (*offline.Session, error) {
	var s *offline.Session
	err := db.view(ctx, func(tx *bolt.Tx) (err error) {
		s, err = findOfflineSession(tx, id)
		return err
	})
	if err != nil {
		return nil, err
	}
	return s, nil
}

func findOfflineSession(tx *bolt.Tx, id string) (*offline.Session, error) {
	if id == "" {
		return nil, errOfflineSessionNotFound()
	}
	s, err := get[offline.Session](tx.Bucket(bucketOfflineSessions), []byte(id))
	if err != nil {
		return nil, err
	} else if s == nil {
		return nil, errOfflineSessionNotFound()
	}
	return s, nil
}

// SettleOfflineAttempt implements offline.Store. It runs outside
// Batch because the audit events it appends depend on what it finds, and
// Batch may run a function twice.
func (db *DB) SettleOfflineAttempt(ctx context.Context, a offline.Attempt) (*offline.Session, *offline.Credential, error) {
	if a.MaxFailures < 1 {
		return nil, nil, invalidf("MaxFailures must be at least 1")
	}
	var (
		sess    *offline.Session
		cred    *offline.Credential
		pending *pendingEvents
	)
	err := db.update(ctx, false, nil, func(tx *bolt.Tx) (err error) {
		if sess, err = findOfflineSession(tx, a.SessionID); err != nil {
			return err
		}
		if st := sess.Status(a.At); st != offline.Pending {
			return sessionStateError(st)
		}
		var events []*qrauth.AuditEvent
		cred, err = findCred(tx, sess.DeviceID, sess.Method)
		switch {
		case qrauth.ErrorCode(err) == qrauth.ENOTFOUND:
			cred = nil
			sess.State = offline.Failed
		case err != nil:
			return err
		case cred.UserID != sess.UserID || cred.KeyID != sess.KeyID || cred.KeyID != a.KeyID:
			sess.State = offline.Failed
		case cred.Locked:
			sess.State = offline.Locked
		case a.OK:
			sess.State = offline.Succeeded
			cred.Failures, cred.LastUsedAt = 0, a.At
			if a.OnSuccess != nil {
				events = append(events, a.OnSuccess)
			}
		default:
			sess.Failures++
			cred.Failures++
			if cred.Failures >= a.MaxFailures {
				cred.Locked, cred.LockedAt = true, a.At
				sess.State = offline.Locked
				if a.OnLock != nil {
					events = append(events, a.OnLock)
				}
			}
		}
		if sess.State != offline.Pending {
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
	pending.commit(db.obs)
	return sess, cred, nil
}

// CancelOfflineSession implements offline.Store.
func (db *DB) CancelOfflineSession(ctx context.Context, id string, at time.Time) (*offline.Session, error) {
	var s *offline.Session
	err := db.update(ctx, false, nil, func(tx *bolt.Tx) (err error) {
		if s, err = findOfflineSession(tx, id); err != nil {
			return err
		}
		switch st := s.Status(at); st {
		case offline.Cancelled:
			return nil
		case offline.Pending:
		default:
			return sessionStateError(st)
		}
		s.State, s.EndedAt = offline.Cancelled, at
		return put(tx.Bucket(bucketOfflineSessions), []byte(id), s)
	})
	if err != nil {
		return nil, err
	}
	return s, nil
}

// DeleteOfflineRecords implements offline.Store.
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
				a, err := get[offline.Approval](tx.Bucket(bucketApprovals), id)
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

// CreateApproval implements offline.Store.
func (db *DB) CreateApproval(ctx context.Context, a *offline.Approval) error {
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

func findApproval(tx *bolt.Tx, id string) (*offline.Approval, error) {
	if id == "" {
		return nil, errApprovalNotFound()
	}
	a, err := get[offline.Approval](tx.Bucket(bucketApprovals), []byte(id))
	if err != nil {
		return nil, err
	} else if a == nil {
		return nil, errApprovalNotFound()
	}
	return a, nil
}

// FindApproval implements offline.Store.
func (db *DB) FindApproval(ctx context.Context, id string) (*offline.Approval, error) {
	var a *offline.Approval
	err := db.view(ctx, func(tx *bolt.Tx) (err error) {
		a, err = findApproval(tx, id)
		return err
	})
	if err != nil {
		return nil, err
	}
	return a, nil
}

// FindApprovalByTokenHash implements offline.Store.
func (db *DB) FindApprovalByTokenHash(ctx context.Context, tokenHash []byte) (*offline.Approval, error) {
	if len(tokenHash) == 0 {
		return nil, errApprovalNotFound()
	}
	var a *offline.Approval
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

// ScanApproval implements offline.Store.
func (db *DB) ScanApproval(ctx context.Context, id string, device qrauth.DeviceID, at time.Time) (*offline.Approval, error) {
	var a *offline.Approval
	err := db.update(ctx, true, nil, func(tx *bolt.Tx) (err error) {
		if a, err = findApproval(tx, id); err != nil {
			return err
		}
		if st := a.Status(at); st != offline.ApprovalPending {
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

// DecideApproval implements offline.Store.
func (db *DB) DecideApproval(ctx context.Context, id string, d offline.ApprovalDecision, events ...*qrauth.AuditEvent) (*offline.Approval, error) {
	switch d.State {
	case offline.ApprovalApproved, offline.ApprovalDenied, offline.ApprovalCancelled:
	default:
		return nil, invalidf("a decision cannot set state %q", d.State)
	}
	var a *offline.Approval
	err := db.update(ctx, false, events, func(tx *bolt.Tx) (err error) {
		if a, err = findApproval(tx, id); err != nil {
			return err
		}
		if st := a.Status(d.At); st != offline.ApprovalPending {
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

// deleteOfflineOfUser deletes the user's offline credentials, code
// sessions and transaction approvals with their index entries
// (DeleteUser). Sessions and approvals have no by-user index: they live
// minutes, so a walk of their buckets is short.
func deleteOfflineOfUser(tx *bolt.Tx, id qrauth.UserID) error {
	creds, err := prefixValues(tx.Bucket(bucketOfflineCredsByUser), id)
	if err != nil {
		return err
	}
	for _, k := range creds {
		if err := tx.Bucket(bucketOfflineCreds).Delete(k); err != nil {
			return err
		}
	}
	if err := deletePrefix(tx.Bucket(bucketOfflineCredsByUser), userPrefix(id)); err != nil {
		return err
	}
	sessions, err := collect(tx.Bucket(bucketOfflineSessions), func(s *offline.Session) bool { return s.UserID == id })
	if err != nil {
		return err
	}
	exp := tx.Bucket(bucketOfflineExpiry)
	for _, s := range sessions {
		if err := tx.Bucket(bucketOfflineSessions).Delete([]byte(s.ID)); err != nil {
			return err
		} else if err := exp.Delete(expiryKey(s.ExpiresAt, 's', s.ID)); err != nil {
			return err
		}
	}
	approvals, err := collect(tx.Bucket(bucketApprovals), func(a *offline.Approval) bool { return a.UserID == id })
	if err != nil {
		return err
	}
	for _, a := range approvals {
		if string(tx.Bucket(bucketApprovalsByToken).Get(a.TokenHash)) == a.ID {
			if err := tx.Bucket(bucketApprovalsByToken).Delete(a.TokenHash); err != nil {
				return err
			}
		}
		if err := tx.Bucket(bucketApprovals).Delete([]byte(a.ID)); err != nil {
			return err
		} else if err := exp.Delete(expiryKey(a.ExpiresAt, 'a', a.ID)); err != nil {
			return err
		}
	}
	return nil
}
