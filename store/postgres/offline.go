package postgres

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/qrauth/qrauth"
	"github.com/qrauth/qrauth/offline"
)

var _ offline.Store = (*DB)(nil)

func errOfflineMethodNotFound() error {
	return qrauth.Errorf(qrauth.ENOTFOUND, "offline_method_not_found", "This offline method is not activated on that device.")
}

func errOfflineSessionNotFound() error {
	return qrauth.Errorf(qrauth.ENOTFOUND, "offline_session_not_found", "There is no such offline code session.")
}

func errApprovalNotFound() error {
	return qrauth.Errorf(qrauth.ENOTFOUND, "approval_not_found", "There is no such transaction.")
}

func errApprovalExists() error {
	return qrauth.Errorf(qrauth.ECONFLICT, "approval_exists", "This transaction already exists.")
}

func errOfflineSessionExists() error {
	return qrauth.Errorf(qrauth.ECONFLICT, "session_exists", "This offline code session already exists.")
}

// sessionStateError and approvalStateError say why a session or approval
// that is no longer pending refuses a change (the bbolt store's words).
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

func checkCred(id qrauth.DeviceID, m offline.Method) error {
	if id == "" || strings.Contains(string(id), "/") {
		return invalidf("invalid device id %q", id)
	} else if !offline.ValidMethod(m) {
		return invalidf("invalid offline method %q", m)
	}
	return nil
}

// lockDoc runs a SELECT doc … FOR UPDATE and decodes the row, nil when
// there is none.
func lockDoc[T any](ctx context.Context, tx pgx.Tx, sql string, args ...any) (*T, error) {
	v, err := scanDoc[T](tx.QueryRow(ctx, sql, args...))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, nil
	}
	return v, err
}

// setDoc writes v as the doc of the row of table whose id is id.
func setDoc(ctx context.Context, tx pgx.Tx, table string, id string, v any) error {
	doc, err := marshal(v)
	if err != nil {
		return err
	}
	_, err = tx.Exec(ctx, "UPDATE "+table+" SET doc = $2 WHERE id = $1", id, doc)
	return err
}

func setCred(ctx context.Context, tx pgx.Tx, c *offline.Credential) error {
	doc, err := marshal(c)
	if err != nil {
		return err
	}
	_, err = tx.Exec(ctx, `INSERT INTO offline_credentials (device_id, method, user_id, doc) VALUES ($1, $2, $3, $4)
		ON CONFLICT (device_id, method) DO UPDATE SET user_id = excluded.user_id, doc = excluded.doc`,
		string(c.DeviceID), string(c.Method), string(c.UserID), doc)
	return err
}

const selectCred = "SELECT doc FROM offline_credentials WHERE device_id = $1 AND method = $2"

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
	return db.update(ctx, events, func(tx pgx.Tx) error {
		var owner string
		if err := tx.QueryRow(ctx, "SELECT user_id FROM devices WHERE id = $1 FOR SHARE", string(cred.DeviceID)).Scan(&owner); err != nil {
			return notFound(err, errDeviceNotFound)
		} else if owner != string(cred.UserID) {
			return errDeviceNotFound()
		}
		old, err := lockDoc[offline.Credential](ctx, tx, selectCred+" FOR UPDATE", string(cred.DeviceID), string(cred.Method))
		if err != nil {
			return err
		} else if old != nil && old.Locked {
			return qrauth.Errorf(qrauth.ECONFLICT, "method_locked",
				"This offline method is locked after too many wrong codes; an administrator must unlock it before it can be activated again.")
		}
		return setCred(ctx, tx, &cred)
	})
}

// FindOfflineCredential implements offline.Store.
func (db *DB) FindOfflineCredential(ctx context.Context, id qrauth.DeviceID, m offline.Method) (*offline.Credential, error) {
	if checkCred(id, m) != nil {
		return nil, errOfflineMethodNotFound()
	}
	var c *offline.Credential
	err := db.view(ctx, func(q querier) (err error) {
		c, err = scanDoc[offline.Credential](q.QueryRow(ctx, selectCred, string(id), string(m)))
		return notFound(err, errOfflineMethodNotFound)
	})
	if err != nil {
		return nil, err
	}
	return c, nil
}

// FindOfflineCredentialsByUser implements offline.Store: by device id, then
// method, bytewise.
func (db *DB) FindOfflineCredentialsByUser(ctx context.Context, id qrauth.UserID) ([]*offline.Credential, error) {
	if err := checkUserID(id); err != nil {
		return nil, err
	}
	var out []*offline.Credential
	err := db.view(ctx, func(q querier) (err error) {
		out, err = scanDocs[offline.Credential](q.Query(ctx,
			"SELECT doc FROM offline_credentials WHERE user_id = $1 ORDER BY device_id, method", string(id)))
		return err
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// DeleteOfflineCredential implements offline.Store.
func (db *DB) DeleteOfflineCredential(ctx context.Context, id qrauth.DeviceID, m offline.Method, events ...*qrauth.AuditEvent) error {
	if checkCred(id, m) != nil {
		return errOfflineMethodNotFound()
	}
	return db.update(ctx, events, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, "DELETE FROM offline_credentials WHERE device_id = $1 AND method = $2", string(id), string(m))
		if err != nil {
			return err
		} else if tag.RowsAffected() == 0 {
			return errOfflineMethodNotFound()
		}
		return nil
	})
}

// UnlockOfflineCredential implements offline.Store.
func (db *DB) UnlockOfflineCredential(ctx context.Context, id qrauth.DeviceID, m offline.Method, events ...*qrauth.AuditEvent) (*offline.Credential, error) {
	if checkCred(id, m) != nil {
		return nil, errOfflineMethodNotFound()
	}
	var c *offline.Credential
	err := db.update(ctx, events, func(tx pgx.Tx) (err error) {
		if c, err = lockDoc[offline.Credential](ctx, tx, selectCred+" FOR UPDATE", string(id), string(m)); err != nil {
			return err
		} else if c == nil {
			return errOfflineMethodNotFound()
		}
		c.Locked, c.LockedAt, c.Failures = false, time.Time{}, 0
		return setCred(ctx, tx, c)
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
	return db.update(ctx, nil, func(tx pgx.Tx) error {
		if err := lockUser(ctx, tx, sess.UserID); err != nil {
			return err
		}
		doc, err := marshal(&sess)
		if err != nil {
			return err
		}
		_, err = tx.Exec(ctx, "INSERT INTO offline_sessions (id, user_id, expires_at, doc) VALUES ($1, $2, $3, $4)",
			sess.ID, string(sess.UserID), sess.ExpiresAt, doc)
		return err
	})
}

// FindOfflineSession implements offline.Store.
func (db *DB) FindOfflineSession(ctx context.Context, id string) (*offline.Session, error) {
	if id == "" {
		return nil, errOfflineSessionNotFound()
	}
	var s *offline.Session
	err := db.view(ctx, func(q querier) (err error) {
		s, err = scanDoc[offline.Session](q.QueryRow(ctx, "SELECT doc FROM offline_sessions WHERE id = $1", id))
		return notFound(err, errOfflineSessionNotFound)
	})
	if err != nil {
		return nil, err
	}
	return s, nil
}

func lockOfflineSession(ctx context.Context, tx pgx.Tx, id string) (*offline.Session, error) {
	s, err := lockDoc[offline.Session](ctx, tx, "SELECT doc FROM offline_sessions WHERE id = $1 FOR UPDATE", id)
	if err == nil && s == nil {
		err = errOfflineSessionNotFound()
	}
	return s, err
}

// SettleOfflineAttempt implements offline.Store. The session row is locked
// first, then the credential, as in every other path that takes both, so
// two attempts racing on two instances serialize instead of deadlocking;
// the failure count and the lock are read and written under those locks.
func (db *DB) SettleOfflineAttempt(ctx context.Context, a offline.Attempt) (*offline.Session, *offline.Credential, error) {
	if a.MaxFailures < 1 {
		return nil, nil, invalidf("MaxFailures must be at least 1")
	}
	var (
		sess *offline.Session
		cred *offline.Credential
	)
	err := db.updateMore(ctx, nil, func(tx pgx.Tx) (events []*qrauth.AuditEvent, err error) {
		if a.SessionID == "" {
			return nil, errOfflineSessionNotFound()
		}
		if sess, err = lockOfflineSession(ctx, tx, a.SessionID); err != nil {
			return nil, err
		}
		if st := sess.Status(a.At); st != offline.Pending {
			return nil, sessionStateError(st)
		}
		if cred, err = lockDoc[offline.Credential](ctx, tx, selectCred+" FOR UPDATE", string(sess.DeviceID), string(sess.Method)); err != nil {
			return nil, err
		}
		switch {
		case cred == nil:
			sess.State = offline.Failed
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
		if err := setDoc(ctx, tx, "offline_sessions", sess.ID, sess); err != nil {
			return nil, err
		}
		if cred != nil {
			if err := setCred(ctx, tx, cred); err != nil {
				return nil, err
			}
		}
		return events, nil
	})
	if err != nil {
		return nil, nil, err
	}
	return sess, cred, nil
}

// CancelOfflineSession implements offline.Store.
func (db *DB) CancelOfflineSession(ctx context.Context, id string, at time.Time) (*offline.Session, error) {
	var s *offline.Session
	err := db.update(ctx, nil, func(tx pgx.Tx) (err error) {
		if id == "" {
			return errOfflineSessionNotFound()
		}
		if s, err = lockOfflineSession(ctx, tx, id); err != nil {
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
		return setDoc(ctx, tx, "offline_sessions", id, s)
	})
	if err != nil {
		return nil, err
	}
	return s, nil
}

// DeleteOfflineRecords implements offline.Store.
func (db *DB) DeleteOfflineRecords(ctx context.Context, before time.Time) (int, error) {
	n := 0
	err := db.update(ctx, nil, func(tx pgx.Tx) error {
		a, err := tx.Exec(ctx, "DELETE FROM offline_sessions WHERE expires_at < $1", before)
		if err != nil {
			return err
		}
		b, err := tx.Exec(ctx, "DELETE FROM approvals WHERE expires_at < $1", before)
		if err != nil {
			return err
		}
		n = int(a.RowsAffected() + b.RowsAffected())
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
	return db.update(ctx, nil, func(tx pgx.Tx) error {
		if err := lockUser(ctx, tx, ap.UserID); err != nil {
			return err
		}
		doc, err := marshal(&ap)
		if err != nil {
			return err
		}
		_, err = tx.Exec(ctx, "INSERT INTO approvals (id, user_id, token_hash, expires_at, doc) VALUES ($1, $2, $3, $4, $5)",
			ap.ID, string(ap.UserID), ap.TokenHash, ap.ExpiresAt, doc)
		return err
	})
}

// FindApproval implements offline.Store.
func (db *DB) FindApproval(ctx context.Context, id string) (*offline.Approval, error) {
	if id == "" {
		return nil, errApprovalNotFound()
	}
	return db.findApproval(ctx, "id = $1", id)
}

// FindApprovalByTokenHash implements offline.Store.
func (db *DB) FindApprovalByTokenHash(ctx context.Context, tokenHash []byte) (*offline.Approval, error) {
	if len(tokenHash) == 0 {
		return nil, errApprovalNotFound()
	}
	return db.findApproval(ctx, "token_hash = $1", tokenHash)
}

func (db *DB) findApproval(ctx context.Context, where string, arg any) (*offline.Approval, error) {
	var a *offline.Approval
	err := db.view(ctx, func(q querier) (err error) {
		a, err = scanDoc[offline.Approval](q.QueryRow(ctx, "SELECT doc FROM approvals WHERE "+where, arg))
		return notFound(err, errApprovalNotFound)
	})
	if err != nil {
		return nil, err
	}
	return a, nil
}

// changeApproval locks a pending approval, lets fn change it and writes it.
func (db *DB) changeApproval(ctx context.Context, id string, at time.Time, events []*qrauth.AuditEvent, fn func(a *offline.Approval) bool) (*offline.Approval, error) {
	var a *offline.Approval
	err := db.update(ctx, events, func(tx pgx.Tx) (err error) {
		if id == "" {
			return errApprovalNotFound()
		}
		if a, err = lockDoc[offline.Approval](ctx, tx, "SELECT doc FROM approvals WHERE id = $1 FOR UPDATE", id); err != nil {
			return err
		} else if a == nil {
			return errApprovalNotFound()
		}
		if st := a.Status(at); st != offline.ApprovalPending {
			return approvalStateError(st)
		}
		if !fn(a) {
			return nil
		}
		return setDoc(ctx, tx, "approvals", id, a)
	})
	if err != nil {
		return nil, err
	}
	return a, nil
}

// ScanApproval implements offline.Store; the first scan is kept.
func (db *DB) ScanApproval(ctx context.Context, id string, device qrauth.DeviceID, at time.Time) (*offline.Approval, error) {
	return db.changeApproval(ctx, id, at, nil, func(a *offline.Approval) bool {
		if a.ScannedBy != "" {
			return false
		}
		a.ScannedAt, a.ScannedBy = at, device
		return true
	})
}

// DecideApproval implements offline.Store.
func (db *DB) DecideApproval(ctx context.Context, id string, d offline.ApprovalDecision, events ...*qrauth.AuditEvent) (*offline.Approval, error) {
	switch d.State {
	case offline.ApprovalApproved, offline.ApprovalDenied, offline.ApprovalCancelled:
	default:
		return nil, invalidf("a decision cannot set state %q", d.State)
	}
	return db.changeApproval(ctx, id, d.At, events, func(a *offline.Approval) bool {
		a.State, a.DecidedAt, a.DecidedBy, a.Signature = d.State, d.At, d.DeviceID, d.Signature
		return true
	})
}
