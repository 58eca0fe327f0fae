package postgres

import (
	"bytes"
	"context"
	"errors"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/qrauth/qrauth"
	"github.com/qrauth/qrauth/badge"
)

var _ badge.Store = (*DB)(nil)

func errNoPassword() error {
	return qrauth.Errorf(qrauth.ENOTFOUND, "no_password", "This account has no password.")
}

func errPasswordChanged() error {
	return qrauth.Errorf(qrauth.ECONFLICT, "password_changed",
		"The password was changed in the meantime. Reload the page and try again.")
}

func errBadgeNotFound() error {
	return qrauth.Errorf(qrauth.ENOTFOUND, "badge_not_found", "There is no such badge.")
}

// SetPassword implements badge.Store: a compare-and-set on the stamp,
// under the row lock (or, for a first password, the primary key).
func (db *DB) SetPassword(ctx context.Context, p *badge.Password, prevStamp []byte, events ...*qrauth.AuditEvent) error {
	if p == nil {
		return invalidf("SetPassword needs a password")
	} else if err := checkUserID(p.UserID); err != nil {
		return err
	} else if len(p.Salt) == 0 || len(p.Hash) == 0 || len(p.Stamp) == 0 || p.Algorithm == "" {
		return invalidf("password of %q lacks algorithm, salt, hash or stamp", p.UserID)
	}
	pw := *p
	pw.Salt, pw.Hash, pw.Stamp = bytes.Clone(p.Salt), bytes.Clone(p.Hash), bytes.Clone(p.Stamp)
	return db.update(ctx, events, func(tx pgx.Tx) error {
		if err := lockUser(ctx, tx, pw.UserID); err != nil {
			return err
		}
		cur, err := lockPassword(ctx, tx, pw.UserID)
		if err != nil {
			return err
		}
		if (cur == nil) != (prevStamp == nil) || (cur != nil && !bytes.Equal(cur.Stamp, prevStamp)) {
			return errPasswordChanged()
		}
		doc, err := marshal(&pw)
		if err != nil {
			return err
		}
		_, err = tx.Exec(ctx, `INSERT INTO passwords (user_id, doc) VALUES ($1, $2)
			ON CONFLICT (user_id) DO UPDATE SET doc = excluded.doc`, string(pw.UserID), doc)
		return err
	})
}

func lockPassword(ctx context.Context, tx pgx.Tx, id qrauth.UserID) (*badge.Password, error) {
	p, err := scanDoc[badge.Password](tx.QueryRow(ctx, "SELECT doc FROM passwords WHERE user_id = $1 FOR UPDATE", string(id)))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, nil
	}
	return p, err
}

// FindPassword implements badge.Store.
func (db *DB) FindPassword(ctx context.Context, id qrauth.UserID) (*badge.Password, error) {
	if id == "" {
		if err := ctxError(ctx); err != nil {
			return nil, err
		}
		return nil, errNoPassword()
	}
	var p *badge.Password
	err := db.view(ctx, func(q querier) (err error) {
		p, err = scanDoc[badge.Password](q.QueryRow(ctx, "SELECT doc FROM passwords WHERE user_id = $1", string(id)))
		return notFound(err, errNoPassword)
	})
	if err != nil {
		return nil, err
	}
	return p, nil
}

// DeletePassword implements badge.Store.
func (db *DB) DeletePassword(ctx context.Context, id qrauth.UserID, prevStamp []byte, events ...*qrauth.AuditEvent) error {
	return db.update(ctx, events, func(tx pgx.Tx) error {
		if id == "" {
			return errNoPassword()
		}
		cur, err := lockPassword(ctx, tx, id)
		if err != nil {
			return err
		} else if cur == nil {
			return errNoPassword()
		} else if !bytes.Equal(cur.Stamp, prevStamp) {
			return errPasswordChanged()
		}
		_, err = tx.Exec(ctx, "DELETE FROM passwords WHERE user_id = $1", string(id))
		return err
	})
}

// CreateBadge implements badge.Store.
func (db *DB) CreateBadge(ctx context.Context, b *badge.Badge, events ...*qrauth.AuditEvent) error {
	if b == nil {
		return invalidf("CreateBadge needs a badge")
	} else if err := checkUserID(b.UserID); err != nil {
		return err
	} else if _, ok := b.ID.Bytes(); !ok {
		return invalidf("malformed badge id %q", b.ID)
	} else if !badge.ValidKind(b.Kind) {
		return invalidf("unknown badge kind %q", b.Kind)
	} else if b.Kind == badge.Insecure && !b.ExpiresAt.IsZero() {
		return invalidf("insecure badges never expire")
	}
	rec := *b
	rec.Credential = bytes.Clone(b.Credential)
	return db.update(ctx, events, func(tx pgx.Tx) error {
		if err := lockUser(ctx, tx, rec.UserID); err != nil {
			return err
		}
		doc, err := marshal(&rec)
		if err != nil {
			return err
		}
		_, err = tx.Exec(ctx, "INSERT INTO badges (id, user_id, created_at, doc) VALUES ($1, $2, $3, $4)",
			string(rec.ID), string(rec.UserID), rec.CreatedAt, doc)
		return err
	})
}

// FindBadgeByID implements badge.Store.
func (db *DB) FindBadgeByID(ctx context.Context, id badge.ID) (*badge.Badge, error) {
	if id == "" {
		return nil, errBadgeNotFound()
	}
	var b *badge.Badge
	err := db.view(ctx, func(q querier) (err error) {
		b, err = scanDoc[badge.Badge](q.QueryRow(ctx, "SELECT doc FROM badges WHERE id = $1", string(id)))
		return notFound(err, errBadgeNotFound)
	})
	if err != nil {
		return nil, err
	}
	return b, nil
}

// FindBadgesByUser implements badge.Store: oldest first, ties by id.
func (db *DB) FindBadgesByUser(ctx context.Context, id qrauth.UserID) ([]*badge.Badge, error) {
	if checkUserID(id) != nil {
		return nil, ctxError(ctx)
	}
	var out []*badge.Badge
	err := db.view(ctx, func(q querier) (err error) {
		out, err = scanDocs[badge.Badge](q.Query(ctx, "SELECT doc FROM badges WHERE user_id = $1 ORDER BY created_at, id", string(id)))
		return err
	})
	if err != nil || len(out) == 0 {
		return nil, err
	}
	return out, nil
}

// RevokeBadge implements badge.Store.
func (db *DB) RevokeBadge(ctx context.Context, id badge.ID, at time.Time, by string, events ...*qrauth.AuditEvent) (*badge.Badge, error) {
	if at.IsZero() {
		return nil, invalidf("RevokeBadge needs a time")
	}
	var b *badge.Badge
	err := db.update(ctx, events, func(tx pgx.Tx) (err error) {
		b, err = scanDoc[badge.Badge](tx.QueryRow(ctx, "SELECT doc FROM badges WHERE id = $1 FOR UPDATE", string(id)))
		if err != nil {
			return notFound(err, errBadgeNotFound)
		} else if b.Revoked() {
			return qrauth.Errorf(qrauth.ECONFLICT, "badge_revoked", "This badge was revoked already.")
		}
		b.RevokedAt, b.RevokedBy = at, by
		doc, err := marshal(b)
		if err != nil {
			return err
		}
		_, err = tx.Exec(ctx, "UPDATE badges SET doc = $2 WHERE id = $1", string(id), doc)
		return err
	})
	if err != nil {
		return nil, err
	}
	return b, nil
}
