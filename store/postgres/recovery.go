package postgres

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/qrauth/qrauth"
	"github.com/qrauth/qrauth/recovery"
)

var _ recovery.Store = (*DB)(nil)

// recoveryCode and recoveryState are the documents, as in the bbolt store.
type recoveryCode struct {
	UserID    qrauth.UserID `json:"user_id"`
	Kind      string        `json:"kind"`
	IssuedBy  string        `json:"issued_by,omitempty"`
	CreatedAt time.Time     `json:"created_at"`
	ExpiresAt time.Time     `json:"expires_at,omitzero"`
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

func errRecoveryCodeExists(msg string) error {
	return qrauth.Errorf(qrauth.ECONFLICT, "recovery_code_exists", "%s", msg)
}

// lockRecoveryState returns the user's state row, locked, creating it
// first if the user has none, so that concurrent counts never lose one.
func lockRecoveryState(ctx context.Context, tx pgx.Tx, id qrauth.UserID) (*recoveryState, error) {
	if _, err := tx.Exec(ctx, "INSERT INTO recovery_state (user_id, doc) VALUES ($1, $2) ON CONFLICT DO NOTHING",
		string(id), []byte(`{}`)); err != nil {
		return nil, err
	}
	return scanDoc[recoveryState](tx.QueryRow(ctx, "SELECT doc FROM recovery_state WHERE user_id = $1 FOR UPDATE", string(id)))
}

func putRecoveryState(ctx context.Context, tx pgx.Tx, id qrauth.UserID, s *recoveryState) error {
	doc, err := marshal(s)
	if err != nil {
		return err
	}
	_, err = tx.Exec(ctx, "UPDATE recovery_state SET doc = $2 WHERE user_id = $1", string(id), doc)
	return err
}

func recoveryStatus(ctx context.Context, q querier, id qrauth.UserID, s *recoveryState) (*recovery.Status, error) {
	st := &recovery.Status{UserID: id}
	if s != nil {
		st.GeneratedAt, st.Failures, st.Locked, st.LockedAt = s.GeneratedAt, s.Failures, s.Locked, s.LockedAt
	}
	err := q.QueryRow(ctx, "SELECT count(*) FROM recovery_codes WHERE user_id = $1 AND kind = $2", string(id), recovery.KindRecovery).Scan(&st.Remaining)
	return st, err
}

func insertRecoveryCode(ctx context.Context, tx pgx.Tx, hash []byte, c *recoveryCode) error {
	doc, err := marshal(c)
	if err != nil {
		return err
	}
	var exp *time.Time
	if !c.ExpiresAt.IsZero() {
		exp = &c.ExpiresAt
	}
	_, err = tx.Exec(ctx, "INSERT INTO recovery_codes (hash, user_id, kind, expires_at, doc) VALUES ($1, $2, $3, $4, $5)",
		hash, string(c.UserID), c.Kind, exp, doc)
	return err
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
	err := db.update(ctx, events, func(tx pgx.Tx) error {
		if err := lockUser(ctx, tx, id); err != nil {
			return err
		}
		if _, err := lockRecoveryState(ctx, tx, id); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, "DELETE FROM recovery_codes WHERE user_id = $1 AND kind = $2", string(id), recovery.KindRecovery); err != nil {
			return err
		}
		for _, h := range hashes {
			err := insertRecoveryCode(ctx, tx, h, &recoveryCode{UserID: id, Kind: recovery.KindRecovery, CreatedAt: at})
			if uniqueViolation(err) == "recovery_codes_pkey" {
				return errRecoveryCodeExists("A recovery code is already in use; generate a new set.")
			} else if err != nil {
				return err
			}
		}
		s := &recoveryState{GeneratedAt: at}
		if err := putRecoveryState(ctx, tx, id, s); err != nil {
			return err
		}
		var err error
		st, err = recoveryStatus(ctx, tx, id, s)
		return err
	})
	if err != nil {
		return nil, err
	}
	return st, nil
}

// FindRecoveryStatus implements recovery.Store.
func (db *DB) FindRecoveryStatus(ctx context.Context, id qrauth.UserID) (*recovery.Status, error) {
	if checkUserID(id) != nil {
		return nil, errUserNotFound()
	}
	var st *recovery.Status
	err := db.view(ctx, func(q querier) error {
		var doc []byte
		err := q.QueryRow(ctx, "SELECT s.doc FROM users u LEFT JOIN recovery_state s ON s.user_id = u.id WHERE u.id = $1", string(id)).Scan(&doc)
		if err != nil {
			return notFound(err, errUserNotFound)
		}
		var s *recoveryState
		if doc != nil {
			if s, err = decodeDoc[recoveryState](doc); err != nil {
				return err
			}
		}
		st, err = recoveryStatus(ctx, q, id, s)
		return err
	})
	if err != nil {
		return nil, err
	}
	return st, nil
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
	return db.update(ctx, events, func(tx pgx.Tx) error {
		if err := lockUser(ctx, tx, rec.UserID); err != nil {
			return err
		}
		err := insertRecoveryCode(ctx, tx, h, &rec)
		if uniqueViolation(err) == "recovery_codes_pkey" {
			return errRecoveryCodeExists("That code is already in use.")
		}
		return err
	})
}

// RedeemRecovery implements recovery.Store. The code's row is locked
// first: of two redemptions racing with one code, the second finds the row
// gone once the first commits, and is refused.
func (db *DB) RedeemRecovery(ctx context.Context, r *recovery.Redemption) (*recovery.Redeemed, error) {
	if r == nil || r.Device == nil || r.Device.ID == "" || r.Device.PhoneIDHash == "" {
		return nil, invalidf("RedeemRecovery needs a hash and a device")
	}
	if len(r.Hash) != recovery.HashLen {
		return nil, errBadRecoveryCode()
	}
	var out *recovery.Redeemed
	err := db.updateMore(ctx, nil, func(tx pgx.Tx) ([]*qrauth.AuditEvent, error) {
		out = nil
		c, err := lockDoc[recoveryCode](ctx, tx, "SELECT doc FROM recovery_codes WHERE hash = $1 FOR UPDATE", r.Hash)
		if err != nil {
			return nil, err
		} else if c == nil {
			return nil, errBadRecoveryCode()
		}
		u, err := scanDoc[qrauth.User](tx.QueryRow(ctx, "SELECT doc FROM users WHERE id = $1 FOR SHARE", string(c.UserID)))
		if err != nil {
			return nil, notFound(err, errUserNotFound)
		} else if err := u.CheckEnabled(); err != nil {
			// A disabled account is not recovered, and the code stays.
			return nil, err
		}
		state, err := lockRecoveryState(ctx, tx, c.UserID)
		if err != nil {
			return nil, err
		}
		switch c.Kind {
		case recovery.KindLink:
			if !r.Now.Before(c.ExpiresAt) {
				return nil, qrauth.Errorf(qrauth.EEXPIRED, "link_code_expired", "This link code has expired. Ask the helpdesk for a new one.")
			}
			state.Locked, state.LockedAt = false, time.Time{}
		case recovery.KindRecovery:
			if state.Locked {
				return nil, qrauth.Errorf(qrauth.EFORBIDDEN, "recovery_locked",
					"Recovery codes of this account are locked after too many wrong codes. Ask the helpdesk for a link code.")
			}
		default:
			return nil, fmt.Errorf("recovery code of unknown kind %q", c.Kind)
		}
		dev := *r.Device
		dev.UserID = c.UserID
		var one int
		if err := tx.QueryRow(ctx, "SELECT 1 FROM devices WHERE id = $1", string(dev.ID)).Scan(&one); err == nil {
			return nil, errDeviceExists()
		} else if !errors.Is(err, pgx.ErrNoRows) {
			return nil, err
		}
		if _, err := tx.Exec(ctx, "DELETE FROM recovery_codes WHERE hash = $1", r.Hash); err != nil {
			return nil, err
		}
		if err := insertDevice(ctx, tx, &dev); err != nil {
			return nil, err
		}
		tag, err := tx.Exec(ctx, "DELETE FROM sessions WHERE user_id = $1", string(c.UserID))
		if err != nil {
			return nil, err
		}
		ended := int(tag.RowsAffected())
		state.Failures = 0
		if err := putRecoveryState(ctx, tx, c.UserID, state); err != nil {
			return nil, err
		}
		st, err := recoveryStatus(ctx, tx, c.UserID, state)
		if err != nil {
			return nil, err
		}
		detail := fmt.Sprintf("%s; new phone %q; %d sessions ended", c.Kind, dev.Name, ended)
		if c.IssuedBy != "" {
			detail = fmt.Sprintf("%s issued by %s; new phone %q; %d sessions ended", c.Kind, c.IssuedBy, dev.Name, ended)
		}
		ev := &qrauth.AuditEvent{Time: r.Now, Type: recovery.AuditRecovered, UserID: c.UserID, DeviceID: dev.ID, IP: r.IP, Detail: detail}
		out = &recovery.Redeemed{UserID: c.UserID, Kind: c.Kind, IssuedBy: c.IssuedBy,
			SessionsEnded: ended, Remaining: st.Remaining, Event: ev}
		return []*qrauth.AuditEvent{ev}, nil
	})
	if err != nil {
		return nil, err
	}
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
	err := db.updateMore(ctx, nil, func(tx pgx.Tx) ([]*qrauth.AuditEvent, error) {
		if err := lockUser(ctx, tx, id); err != nil {
			return nil, err
		}
		s, err := lockRecoveryState(ctx, tx, id)
		if err != nil {
			return nil, err
		}
		var more []*qrauth.AuditEvent
		s.Failures++
		if !s.Locked && s.Failures >= max {
			s.Locked, s.LockedAt = true, at
			if onLock != nil {
				more = append(more, onLock)
			}
		}
		if err := putRecoveryState(ctx, tx, id, s); err != nil {
			return nil, err
		}
		st, err = recoveryStatus(ctx, tx, id, s)
		return more, err
	})
	if err != nil {
		return nil, err
	}
	return st, nil
}

// DeleteExpiredLinkCodes implements recovery.Store.
func (db *DB) DeleteExpiredLinkCodes(ctx context.Context, now time.Time) (int, error) {
	var n int
	err := db.update(ctx, nil, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, "DELETE FROM recovery_codes WHERE kind = $1 AND expires_at <= $2", recovery.KindLink, now)
		n = int(tag.RowsAffected())
		return err
	})
	if err != nil {
		return 0, err
	}
	return n, nil
}
