package store

import (
	"bytes"
	"cmp"
	"context"
	"slices"
	"time"

	"github.com/qrauth/qrauth"
	"github.com/qrauth/qrauth/badge"
	bolt "go.etcd.io/bbolt"
)

// Buckets of the badge flow:
//
//	passwords       user id → badge.Password
//	badges          badge id → badge.Badge
//	badges_by_user  user id "/" badge id → badge id
var (
	bucketPasswords    = []byte("passwords")
	bucketBadges       = []byte("badges")
	bucketBadgesByUser = []byte("badges_by_user")
)

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

// SetPassword implements qrauth.Store.
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
	return db.update(ctx, false, events, func(tx *bolt.Tx) error {
		if _, err := findUser(tx, pw.UserID); err != nil {
			return err
		}
		b := tx.Bucket(bucketPasswords)
		cur, err := get[badge.Password](b, []byte(pw.UserID))
		if err != nil {
			return err
		}
		if (cur == nil) != (prevStamp == nil) || (cur != nil && !bytes.Equal(cur.Stamp, prevStamp)) {
			return errPasswordChanged()
		}
		return put(b, []byte(pw.UserID), &pw)
	})
}

// FindPassword implements qrauth.Store.
func (db *DB) FindPassword(ctx context.Context, id qrauth.UserID) (*badge.Password, error) {
	var p *badge.Password
	err := db.view(ctx, func(tx *bolt.Tx) (err error) {
		if id == "" {
			return errNoPassword()
		}
		if p, err = get[badge.Password](tx.Bucket(bucketPasswords), []byte(id)); err != nil {
			return err
		} else if p == nil {
			return errNoPassword()
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return p, nil
}

// DeletePassword implements qrauth.Store.
func (db *DB) DeletePassword(ctx context.Context, id qrauth.UserID, prevStamp []byte, events ...*qrauth.AuditEvent) error {
	return db.update(ctx, false, events, func(tx *bolt.Tx) error {
		if id == "" {
			return errNoPassword()
		}
		b := tx.Bucket(bucketPasswords)
		cur, err := get[badge.Password](b, []byte(id))
		if err != nil {
			return err
		} else if cur == nil {
			return errNoPassword()
		} else if !bytes.Equal(cur.Stamp, prevStamp) {
			return errPasswordChanged()
		}
		return b.Delete([]byte(id))
	})
}

// CreateBadge implements qrauth.Store.
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
	return db.update(ctx, false, events, func(tx *bolt.Tx) error {
		if _, err := findUser(tx, rec.UserID); err != nil {
			return err
		}
		bb := tx.Bucket(bucketBadges)
		if bb.Get([]byte(rec.ID)) != nil {
			return qrauth.Errorf(qrauth.ECONFLICT, "badge_exists", "This badge exists already.")
		}
		if err := put(bb, []byte(rec.ID), &rec); err != nil {
			return err
		}
		return tx.Bucket(bucketBadgesByUser).Put(userKey(rec.UserID, []byte(rec.ID)), []byte(rec.ID))
	})
}

// FindBadgeByID implements qrauth.Store.
func (db *DB) FindBadgeByID(ctx context.Context, id badge.ID) (*badge.Badge, error) {
	var b *badge.Badge
	err := db.view(ctx, func(tx *bolt.Tx) (err error) {
		b, err = findBadge(tx, id)
		return err
	})
	if err != nil {
		return nil, err
	}
	return b, nil
}

func findBadge(tx *bolt.Tx, id badge.ID) (*badge.Badge, error) {
	if id == "" {
		return nil, errBadgeNotFound()
	}
	b, err := get[badge.Badge](tx.Bucket(bucketBadges), []byte(id))
	if err != nil {
		return nil, err
	} else if b == nil {
		return nil, errBadgeNotFound()
	}
	return b, nil
}

// FindBadgesByUser implements qrauth.Store.
func (db *DB) FindBadgesByUser(ctx context.Context, id qrauth.UserID) ([]*badge.Badge, error) {
	var out []*badge.Badge
	err := db.view(ctx, func(tx *bolt.Tx) error {
		if checkUserID(id) != nil {
			return nil
		}
		bb := tx.Bucket(bucketBadges)
		return scanUser(tx.Bucket(bucketBadgesByUser), id, func(_, v []byte) error {
			b, err := get[badge.Badge](bb, v)
			if err != nil {
				return err
			} else if b != nil {
				out = append(out, b)
			}
			return nil
		})
	})
	if err != nil {
		return nil, err
	}
	// The index is in id order, which is random; people read lists by age.
	slices.SortStableFunc(out, func(a, b *badge.Badge) int {
		return cmp.Or(a.CreatedAt.Compare(b.CreatedAt), cmp.Compare(a.ID, b.ID))
	})
	return out, nil
}

// RevokeBadge implements qrauth.Store.
func (db *DB) RevokeBadge(ctx context.Context, id badge.ID, at time.Time, by string, events ...*qrauth.AuditEvent) (*badge.Badge, error) {
	if at.IsZero() {
		return nil, invalidf("RevokeBadge needs a time")
	}
	var b *badge.Badge
	err := db.update(ctx, false, events, func(tx *bolt.Tx) (err error) {
		if b, err = findBadge(tx, id); err != nil {
			return err
		} else if b.Revoked() {
			return qrauth.Errorf(qrauth.ECONFLICT, "badge_revoked", "This badge was revoked already.")
		}
		b.RevokedAt, b.RevokedBy = at, by
		return put(tx.Bucket(bucketBadges), []byte(id), b)
	})
	if err != nil {
		return nil, err
	}
	return b, nil
}

// deleteBadgesOfUser deletes the user's badges and their index entries
// (DeleteUser).
func deleteBadgesOfUser(tx *bolt.Tx, id qrauth.UserID) error {
	ids, err := prefixValues(tx.Bucket(bucketBadgesByUser), id)
	if err != nil {
		return err
	}
	for _, b := range ids {
		if err := tx.Bucket(bucketBadges).Delete(b); err != nil {
			return err
		}
	}
	return deletePrefix(tx.Bucket(bucketBadgesByUser), userPrefix(id))
}
