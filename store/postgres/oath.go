package postgres

import (
	"context"
	"errors"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/qrauth/qrauth"
	"github.com/qrauth/qrauth/oath"
)

var _ oath.Store = (*DB)(nil)

func errOATHNotFound() error {
	return qrauth.Errorf(qrauth.ENOTFOUND, "oath_not_found", "This account has no authenticator app enrolled.")
}

func errOATHChanged() error {
	return qrauth.Errorf(qrauth.ECONFLICT, "oath_changed", "The authenticator was replaced meanwhile. Try again with the new one.")
}

func errOATHLocked() error {
	return qrauth.Errorf(qrauth.EFORBIDDEN, "oath_locked", "Too many wrong codes: the authenticator is locked. Ask an administrator to unlock it.")
}

func errOATHReplayed() error {
	return qrauth.Errorf(qrauth.ECONFLICT, "oath_replayed", "This code was already used. Wait for the next code and enter that one.")
}

// lockUser checks that the user exists and keeps it from being deleted
// until the transaction ends.
func lockUser(ctx context.Context, tx pgx.Tx, id qrauth.UserID) error {
	var one int
	return notFound(tx.QueryRow(ctx, "SELECT 1 FROM users WHERE id = $1 FOR SHARE", string(id)).Scan(&one), errUserNotFound)
}

// FindOATHAccount implements oath.Store.
func (db *DB) FindOATHAccount(ctx context.Context, id qrauth.UserID) (*oath.Account, error) {
	if checkUserID(id) != nil {
		return nil, errUserNotFound()
	}
	var a *oath.Account
	err := db.view(ctx, func(q querier) error {
		var doc []byte
		err := q.QueryRow(ctx, "SELECT o.doc FROM users u LEFT JOIN oath_accounts o ON o.user_id = u.id WHERE u.id = $1", string(id)).Scan(&doc)
		if err != nil {
			return notFound(err, errUserNotFound)
		} else if doc == nil {
			return errOATHNotFound()
		}
		a, err = decodeDoc[oath.Account](doc)
		return err
	})
	if err != nil {
		return nil, err
	}
	return a, nil
}

func checkOATHToken(t *oath.Token) error {
	switch {
	case t == nil:
		return invalidf("nil OATH token")
	case t.ID == "":
		return invalidf("empty OATH token id")
	case len(t.Secret) == 0:
		return invalidf("OATH token %q has no secret", t.ID)
	case t.Kind != oath.TOTP && t.Kind != oath.HOTP:
		return invalidf("OATH token %q has kind %q", t.ID, t.Kind)
	}
	return nil
}

// updateOATH locks the user's account row (nil when there is none), lets fn
// work out the new account and writes it; fn may add events (the lock's).
// use, when not nil, is the counter being accepted, recorded in
// oath_used_counters in the same transaction.
func (db *DB) updateOATH(ctx context.Context, id qrauth.UserID, events []*qrauth.AuditEvent, use *oath.Use,
	fn func(a *oath.Account) (*oath.Account, []*qrauth.AuditEvent, error)) (*oath.Account, error) {
	if err := checkUserID(id); err != nil {
		return nil, err
	}
	var out *oath.Account
	err := db.updateMore(ctx, events, func(tx pgx.Tx) ([]*qrauth.AuditEvent, error) {
		if err := lockUser(ctx, tx, id); err != nil {
			return nil, err
		}
		var a *oath.Account
		var doc []byte
		err := tx.QueryRow(ctx, "SELECT doc FROM oath_accounts WHERE user_id = $1 FOR UPDATE", string(id)).Scan(&doc)
		if err == nil {
			if a, err = decodeDoc[oath.Account](doc); err != nil {
				return nil, err
			}
		} else if !errors.Is(err, pgx.ErrNoRows) {
			return nil, err
		}
		prev := a
		var more []*qrauth.AuditEvent
		if out, more, err = fn(a); err != nil {
			return nil, err
		}
		out.UserID = id
		if doc, err = marshal(out); err != nil {
			return nil, err
		}
		if _, err := tx.Exec(ctx, `INSERT INTO oath_accounts (user_id, doc) VALUES ($1, $2)
			ON CONFLICT (user_id) DO UPDATE SET doc = excluded.doc`, string(id), doc); err != nil {
			return nil, err
		}
		if prev.Active() && (out.Token == nil || out.Token.ID != prev.Token.ID) {
			// A new token starts its own counters.
			if _, err := tx.Exec(ctx, "DELETE FROM oath_used_counters WHERE user_id = $1", string(id)); err != nil {
				return nil, err
			}
		}
		if use != nil {
			if err := recordCounter(ctx, tx, id, use); err != nil {
				return nil, err
			}
		}
		return more, nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// recordCounter inserts the accepted counter; a row already there means
// another transaction accepted this very code: a replay.
func recordCounter(ctx context.Context, tx pgx.Tx, id qrauth.UserID, use *oath.Use) error {
	c := strconv.FormatUint(use.Counter, 10)
	tag, err := tx.Exec(ctx, `INSERT INTO oath_used_counters (user_id, token_id, counter) VALUES ($1, $2, $3::numeric)
		ON CONFLICT DO NOTHING`, string(id), use.TokenID, c)
	if err != nil {
		return err
	} else if tag.RowsAffected() == 0 {
		return errOATHReplayed()
	}
	_, err = tx.Exec(ctx, "DELETE FROM oath_used_counters WHERE user_id = $1 AND (token_id <> $2 OR counter < $3::numeric)",
		string(id), use.TokenID, c)
	return err
}

// PutOATHPending implements oath.Store.
func (db *DB) PutOATHPending(ctx context.Context, id qrauth.UserID, t *oath.Token, events ...*qrauth.AuditEvent) (*oath.Account, error) {
	if err := checkOATHToken(t); err != nil {
		return nil, err
	}
	tok := *t
	return db.updateOATH(ctx, id, events, nil, func(a *oath.Account) (*oath.Account, []*qrauth.AuditEvent, error) {
		if a == nil {
			a = &oath.Account{}
		}
		a.Pending = &tok
		return a, nil, nil
	})
}

// ActivateOATHPending implements oath.Store.
func (db *DB) ActivateOATHPending(ctx context.Context, id qrauth.UserID, use oath.Use, events ...*qrauth.AuditEvent) (*oath.Account, error) {
	return db.updateOATH(ctx, id, events, &use, func(a *oath.Account) (*oath.Account, []*qrauth.AuditEvent, error) {
		if a == nil || a.Pending == nil || a.Pending.ID != use.TokenID || use.TokenID == "" {
			return nil, nil, qrauth.Errorf(qrauth.ECONFLICT, "oath_pending_changed",
				"This enrolment is no longer waiting for a code: it was finished or replaced. Start again.")
		}
		return &oath.Account{
			Token: a.Pending, ActivatedAt: use.At, LastUsedAt: use.At,
			NextCounter: use.Counter + 1, Offset: use.Offset,
		}, nil, nil
	})
}

// CreateOATHToken implements oath.Store.
func (db *DB) CreateOATHToken(ctx context.Context, id qrauth.UserID, t *oath.Token, events ...*qrauth.AuditEvent) (*oath.Account, error) {
	if err := checkOATHToken(t); err != nil {
		return nil, err
	}
	tok := *t
	return db.updateOATH(ctx, id, events, nil, func(a *oath.Account) (*oath.Account, []*qrauth.AuditEvent, error) {
		if a.Active() {
			return nil, nil, qrauth.Errorf(qrauth.ECONFLICT, "oath_exists", "This account already has an authenticator.")
		}
		return &oath.Account{Token: &tok, ActivatedAt: tok.CreatedAt}, nil, nil
	})
}

// RecordOATHUse implements oath.Store: the NextCounter check under the row
// lock, and the used-counter row as the constraint behind it.
func (db *DB) RecordOATHUse(ctx context.Context, id qrauth.UserID, use oath.Use, events ...*qrauth.AuditEvent) (*oath.Account, error) {
	return db.updateOATH(ctx, id, events, &use, func(a *oath.Account) (*oath.Account, []*qrauth.AuditEvent, error) {
		switch {
		case !a.Active():
			return nil, nil, errOATHNotFound()
		case a.Token.ID != use.TokenID:
			return nil, nil, errOATHChanged()
		case a.Locked():
			return nil, nil, errOATHLocked()
		case use.Counter < a.NextCounter:
			return nil, nil, errOATHReplayed()
		}
		a.NextCounter, a.Offset, a.LastUsedAt, a.Failures = use.Counter+1, use.Offset, use.At, 0
		return a, nil, nil
	})
}

// RecordOATHFailure implements oath.Store.
func (db *DB) RecordOATHFailure(ctx context.Context, id qrauth.UserID, tokenID string, at time.Time, limit int, onLock ...*qrauth.AuditEvent) (*oath.Account, error) {
	return db.updateOATH(ctx, id, nil, nil, func(a *oath.Account) (*oath.Account, []*qrauth.AuditEvent, error) {
		switch {
		case !a.Active():
			return nil, nil, errOATHNotFound()
		case a.Token.ID != tokenID:
			return nil, nil, errOATHChanged()
		case a.Locked():
			return nil, nil, errOATHLocked()
		}
		a.Failures++
		if limit > 0 && a.Failures >= limit {
			a.LockedAt = at
			return a, onLock, nil
		}
		return a, nil, nil
	})
}

// UnlockOATHAccount implements oath.Store.
func (db *DB) UnlockOATHAccount(ctx context.Context, id qrauth.UserID, events ...*qrauth.AuditEvent) (*oath.Account, error) {
	return db.updateOATH(ctx, id, events, nil, func(a *oath.Account) (*oath.Account, []*qrauth.AuditEvent, error) {
		if a == nil {
			return nil, nil, errOATHNotFound()
		} else if !a.Locked() {
			return nil, nil, qrauth.Errorf(qrauth.ECONFLICT, "oath_not_locked", "This authenticator is not locked.")
		}
		a.LockedAt, a.Failures = time.Time{}, 0
		return a, nil, nil
	})
}

// DeleteOATHAccount implements oath.Store.
func (db *DB) DeleteOATHAccount(ctx context.Context, id qrauth.UserID, events ...*qrauth.AuditEvent) error {
	if err := checkUserID(id); err != nil {
		return err
	}
	return db.update(ctx, events, func(tx pgx.Tx) error {
		if err := lockUser(ctx, tx, id); err != nil {
			return err
		}
		tag, err := tx.Exec(ctx, "DELETE FROM oath_accounts WHERE user_id = $1", string(id))
		if err != nil {
			return err
		} else if tag.RowsAffected() == 0 {
			return errOATHNotFound()
		}
		return nil
	})
}
