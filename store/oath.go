package store

import (
	"context"
	"time"

	"github.com/qrauth/qrauth"
	"github.com/qrauth/qrauth/oath"
	bolt "go.etcd.io/bbolt"
)

// bucketOATH holds one oath.Account per user, keyed by user id. The
// token secrets in it are sealed by the server; this package never sees a
// plain secret.
var bucketOATH = []byte("oath_accounts")

func errOATHNotFound() error {
	return qrauth.Errorf(qrauth.ENOTFOUND, "oath_not_found", "This account has no authenticator app enrolled.")
}

func errOATHChanged() error {
	return qrauth.Errorf(qrauth.ECONFLICT, "oath_changed", "The authenticator was replaced meanwhile. Try again with the new one.")
}

func errOATHLocked() error {
	return qrauth.Errorf(qrauth.EFORBIDDEN, "oath_locked", "Too many wrong codes: the authenticator is locked. Ask an administrator to unlock it.")
}

// FindOATHAccount implements qrauth.Store.
func (db *DB) FindOATHAccount(ctx context.Context, id qrauth.UserID) (*oath.Account, error) {
	var a *oath.Account
	err := db.view(ctx, func(tx *bolt.Tx) (err error) {
		if _, err = findUser(tx, id); err != nil {
			return err
		}
		a, err = findOATH(tx, id)
		return err
	})
	if err != nil {
		return nil, err
	}
	return a, nil
}

func findOATH(tx *bolt.Tx, id qrauth.UserID) (*oath.Account, error) {
	a, err := get[oath.Account](tx.Bucket(bucketOATH), []byte(id))
	if err != nil {
		return nil, err
	} else if a == nil {
		return nil, errOATHNotFound()
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

// updateOATH runs fn on the user's account (nil if it has none) and stores
// what fn returns, all in one write transaction with events. fn returning
// an error changes nothing.
func (db *DB) updateOATH(ctx context.Context, id qrauth.UserID, events []*qrauth.AuditEvent,
	fn func(a *oath.Account) (*oath.Account, []*qrauth.AuditEvent, error)) (*oath.Account, error) {
	if err := checkUserID(id); err != nil {
		return nil, err
	}
	var out *oath.Account
	var more []*qrauth.AuditEvent
	// The extra events fn may ask for (a lock) are only known inside the
	// transaction, so they are written there, after the change.
	var extra *pendingEvents
	err := db.update(ctx, false, events, func(tx *bolt.Tx) error {
		if _, err := findUser(tx, id); err != nil {
			return err
		}
		a, err := get[oath.Account](tx.Bucket(bucketOATH), []byte(id))
		if err != nil {
			return err
		}
		if out, more, err = fn(a); err != nil {
			return err
		}
		out.UserID = id
		if err := put(tx.Bucket(bucketOATH), []byte(id), out); err != nil {
			return err
		}
		if len(more) > 0 {
			if extra, err = newPendingEvents(more); err != nil {
				return err
			}
			return extra.write(tx)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	if extra != nil {
		extra.commit(db.obs)
	}
	return out, nil
}

// PutOATHPending implements qrauth.Store.
func (db *DB) PutOATHPending(ctx context.Context, id qrauth.UserID, t *oath.Token, events ...*qrauth.AuditEvent) (*oath.Account, error) {
	if err := checkOATHToken(t); err != nil {
		return nil, err
	}
	tok := *t
	return db.updateOATH(ctx, id, events, func(a *oath.Account) (*oath.Account, []*qrauth.AuditEvent, error) {
		if a == nil {
			a = &oath.Account{}
		}
		a.Pending = &tok
		return a, nil, nil
	})
}

// ActivateOATHPending implements qrauth.Store.
func (db *DB) ActivateOATHPending(ctx context.Context, id qrauth.UserID, use oath.Use, events ...*qrauth.AuditEvent) (*oath.Account, error) {
	return db.updateOATH(ctx, id, events, func(a *oath.Account) (*oath.Account, []*qrauth.AuditEvent, error) {
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

// CreateOATHToken implements qrauth.Store.
func (db *DB) CreateOATHToken(ctx context.Context, id qrauth.UserID, t *oath.Token, events ...*qrauth.AuditEvent) (*oath.Account, error) {
	if err := checkOATHToken(t); err != nil {
		return nil, err
	}
	tok := *t
	return db.updateOATH(ctx, id, events, func(a *oath.Account) (*oath.Account, []*qrauth.AuditEvent, error) {
		if a.Active() {
			return nil, nil, qrauth.Errorf(qrauth.ECONFLICT, "oath_exists", "This account already has an authenticator.")
		}
		return &oath.Account{Token: &tok, ActivatedAt: tok.CreatedAt}, nil, nil
	})
}

// RecordOATHUse implements qrauth.Store.
func (db *DB) RecordOATHUse(ctx context.Context, id qrauth.UserID, use oath.Use, events ...*qrauth.AuditEvent) (*oath.Account, error) {
	return db.updateOATH(ctx, id, events, func(a *oath.Account) (*oath.Account, []*qrauth.AuditEvent, error) {
		switch {
		case !a.Active():
			return nil, nil, errOATHNotFound()
		case a.Token.ID != use.TokenID:
			return nil, nil, errOATHChanged()
		case a.Locked():
			return nil, nil, errOATHLocked()
		case use.Counter < a.NextCounter:
			return nil, nil, qrauth.Errorf(qrauth.ECONFLICT, "oath_replayed",
				"This code was already used. Wait for the next code and enter that one.")
		}
		a.NextCounter, a.Offset, a.LastUsedAt, a.Failures = use.Counter+1, use.Offset, use.At, 0
		return a, nil, nil
	})
}

// RecordOATHFailure implements qrauth.Store.
func (db *DB) RecordOATHFailure(ctx context.Context, id qrauth.UserID, tokenID string, at time.Time, limit int, onLock ...*qrauth.AuditEvent) (*oath.Account, error) {
	return db.updateOATH(ctx, id, nil, func(a *oath.Account) (*oath.Account, []*qrauth.AuditEvent, error) {
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

// UnlockOATHAccount implements qrauth.Store.
func (db *DB) UnlockOATHAccount(ctx context.Context, id qrauth.UserID, events ...*qrauth.AuditEvent) (*oath.Account, error) {
	return db.updateOATH(ctx, id, events, func(a *oath.Account) (*oath.Account, []*qrauth.AuditEvent, error) {
		if a == nil {
			return nil, nil, errOATHNotFound()
		} else if !a.Locked() {
			return nil, nil, qrauth.Errorf(qrauth.ECONFLICT, "oath_not_locked", "This authenticator is not locked.")
		}
		a.LockedAt, a.Failures = time.Time{}, 0
		return a, nil, nil
	})
}

// DeleteOATHAccount implements qrauth.Store.
func (db *DB) DeleteOATHAccount(ctx context.Context, id qrauth.UserID, events ...*qrauth.AuditEvent) error {
	if err := checkUserID(id); err != nil {
		return err
	}
	return db.update(ctx, false, events, func(tx *bolt.Tx) error {
		if _, err := findUser(tx, id); err != nil {
			return err
		}
		b := tx.Bucket(bucketOATH)
		if b.Get([]byte(id)) == nil {
			return errOATHNotFound()
		}
		return b.Delete([]byte(id))
	})
}
