package store

import (
	"bytes"
	"context"
	"fmt"
	"slices"

	"github.com/qrauth/qrauth"
	bolt "go.etcd.io/bbolt"
)

func errUserNotFound() error {
	return qrauth.Errorf(qrauth.ENOTFOUND, "user_not_found", "There is no such account.")
}

func errPhoneTaken() error {
	return qrauth.Errorf(qrauth.ECONFLICT, "phone_taken", "This phone number already belongs to an account.")
}

// CreateUser implements qrauth.Store. d.UserID must be u.ID, and u.PhoneIDHash
// must be empty or d.PhoneIDHash: the index is built from d, so any other
// value would leave the user unfindable by its own hash.
func (db *DB) CreateUser(ctx context.Context, u *qrauth.User, d *qrauth.Device, events ...*qrauth.AuditEvent) error {
	if u == nil || d == nil {
		return invalidf("CreateUser needs a user and a device")
	} else if err := checkUserID(u.ID); err != nil {
		return err
	} else if d.ID == "" {
		return invalidf("empty device id")
	} else if d.UserID != u.ID {
		return invalidf("device %q has user id %q, want %q", d.ID, d.UserID, u.ID)
	} else if d.PhoneIDHash == "" {
		return invalidf("empty phone id hash")
	} else if u.PhoneIDHash != "" && u.PhoneIDHash != d.PhoneIDHash {
		return invalidf("user and device phone id hashes differ")
	}
	user, dev := *u, *d
	return db.update(ctx, true, events, func(tx *bolt.Tx) error {
		users, byPhone := tx.Bucket(bucketUsers), tx.Bucket(bucketUsersByPhone)
		if byPhone.Get([]byte(dev.PhoneIDHash)) != nil {
			return errPhoneTaken()
		} else if tx.Bucket(bucketDevices).Get([]byte(dev.ID)) != nil {
			return errDeviceExists()
		} else if users.Get([]byte(user.ID)) != nil {
			return qrauth.Errorf(qrauth.ECONFLICT, "user_exists", "This account already exists.")
		}
		if err := put(users, []byte(user.ID), &user); err != nil {
			return err
		}
		return putDevice(tx, &dev)
	})
}

// FindUserByID implements qrauth.Store.
func (db *DB) FindUserByID(ctx context.Context, id qrauth.UserID) (*qrauth.User, error) {
	var u *qrauth.User
	err := db.view(ctx, func(tx *bolt.Tx) (err error) {
		u, err = findUser(tx, id)
		return err
	})
	if err != nil {
		return nil, err
	}
	return u, nil
}

// FindUserByPhoneIDHash implements qrauth.Store.
func (db *DB) FindUserByPhoneIDHash(ctx context.Context, phoneIDHash string) (*qrauth.User, error) {
	if phoneIDHash == "" {
		return nil, errUserNotFound()
	}
	var u *qrauth.User
	err := db.view(ctx, func(tx *bolt.Tx) (err error) {
		id := tx.Bucket(bucketUsersByPhone).Get([]byte(phoneIDHash))
		if id == nil {
			return errUserNotFound()
		}
		u, err = findUser(tx, qrauth.UserID(id))
		if qrauth.ErrorCode(err) == qrauth.ENOTFOUND {
			return fmt.Errorf("phone index points to missing user %q", id)
		}
		return err
	})
	if err != nil {
		return nil, err
	}
	return u, nil
}

// UpdateProfile implements qrauth.Store. It stores p as given: normalizing
// is the caller's job (qrauth.Profile.Normalize).
func (db *DB) UpdateProfile(ctx context.Context, id qrauth.UserID, p qrauth.Profile, events ...*qrauth.AuditEvent) (*qrauth.User, error) {
	var u *qrauth.User
	err := db.update(ctx, false, events, func(tx *bolt.Tx) (err error) {
		if u, err = findUser(tx, id); err != nil {
			return err
		}
		u.Name, u.Email = p.Name, p.Email
		return put(tx.Bucket(bucketUsers), []byte(id), u)
	})
	if err != nil {
		return nil, err
	}
	return u, nil
}

func findUser(tx *bolt.Tx, id qrauth.UserID) (*qrauth.User, error) {
	if id == "" {
		return nil, errUserNotFound()
	}
	u, err := get[qrauth.User](tx.Bucket(bucketUsers), []byte(id))
	if err != nil {
		return nil, err
	} else if u == nil {
		return nil, errUserNotFound()
	}
	return u, nil
}

// SetRoles implements qrauth.Store.
func (db *DB) SetRoles(ctx context.Context, id qrauth.UserID, roles []qrauth.Role, events ...*qrauth.AuditEvent) (*qrauth.User, error) {
	for _, r := range roles {
		if !qrauth.ValidRole(r) {
			return nil, qrauth.Errorf(qrauth.EINVALID, "invalid_role", "Unknown role %q.", r)
		}
	}
	roles = slices.Compact(slices.Sorted(slices.Values(roles)))
	var u *qrauth.User
	err := db.update(ctx, false, events, func(tx *bolt.Tx) (err error) {
		if u, err = findUser(tx, id); err != nil {
			return err
		}
		u.Roles = slices.Clone(roles)
		return put(tx.Bucket(bucketUsers), []byte(id), u)
	})
	if err != nil {
		return nil, err
	}
	return u, nil
}

// ListUsers implements qrauth.Store.
func (db *DB) ListUsers(ctx context.Context, after qrauth.UserID, limit int) ([]*qrauth.User, error) {
	if limit <= 0 {
		limit = 100
	}
	limit = min(limit, 1000)
	var out []*qrauth.User
	err := db.view(ctx, func(tx *bolt.Tx) error {
		c := tx.Bucket(bucketUsers).Cursor()
		k, v := c.Seek([]byte(after))
		if k != nil && string(k) == string(after) {
			k, v = c.Next()
		}
		for ; k != nil && len(out) < limit; k, v = c.Next() {
			u, err := decode[qrauth.User](k, v)
			if err != nil {
				return err
			}
			out = append(out, u)
		}
		return nil
	})
	return out, err
}

// DisableUser implements qrauth.Store.
func (db *DB) DisableUser(ctx context.Context, id qrauth.UserID, d qrauth.Disabled, events ...*qrauth.AuditEvent) (*qrauth.User, int, error) {
	var u *qrauth.User
	var ended int
	err := db.update(ctx, false, events, func(tx *bolt.Tx) (err error) {
		if u, err = findUser(tx, id); err != nil {
			return err
		}
		dis := d
		u.Disabled = &dis
		if err := put(tx.Bucket(bucketUsers), []byte(id), u); err != nil {
			return err
		}
		ended, err = endUserSessions(tx, id, func(*qrauth.Session) bool { return true })
		if err != nil {
			return err
		}
		// A relying site's tokens and unexchanged codes would outlive the
		// sessions they came from.
		return deleteOIDCOfUser(tx, id, false)
	})
	if err != nil {
		return nil, 0, err
	}
	return u, ended, nil
}

// EnableUser implements qrauth.Store.
func (db *DB) EnableUser(ctx context.Context, id qrauth.UserID, events ...*qrauth.AuditEvent) (*qrauth.User, error) {
	var u *qrauth.User
	err := db.update(ctx, false, events, func(tx *bolt.Tx) (err error) {
		if u, err = findUser(tx, id); err != nil {
			return err
		}
		u.Disabled = nil
		return put(tx.Bucket(bucketUsers), []byte(id), u)
	})
	if err != nil {
		return nil, err
	}
	return u, nil
}

// endUserSessions deletes the sessions of user id that match, with what
// OpenID Connect kept of them, and returns how many it deleted.
func endUserSessions(tx *bolt.Tx, id qrauth.UserID, match func(*qrauth.Session) bool) (int, error) {
	var list []*qrauth.Session
	err := scanUser(tx.Bucket(bucketSessionsByUser), id, func(_, v []byte) error {
		s, err := findSession(tx, qrauth.SessionID(v))
		if err != nil {
			return err
		}
		if match(s) {
			list = append(list, s)
		}
		return nil
	})
	if err != nil {
		return 0, err
	}
	// Deleting while a cursor walks the same bucket skips entries.
	for _, s := range list {
		if err := deleteSession(tx, s); err != nil {
			return 0, err
		}
		if err := tx.Bucket(bucketOIDCSessions).Delete([]byte(s.ID)); err != nil {
			return 0, err
		}
	}
	return len(list), nil
}

// DeleteUser implements qrauth.Store. Every flow's records are found here,
// in the one transaction, rather than by each flow in its own: a crash
// half-way must not leave an account without a user but with a badge that
// still names it.
func (db *DB) DeleteUser(ctx context.Context, id qrauth.UserID, events ...*qrauth.AuditEvent) error {
	if err := checkUserID(id); err != nil {
		return err
	}
	return db.update(ctx, false, events, func(tx *bolt.Tx) error {
		if _, err := findUser(tx, id); err != nil {
			return err
		}
		if _, err := endUserSessions(tx, id, func(*qrauth.Session) bool { return true }); err != nil {
			return err
		}
		devices, err := prefixValues(tx.Bucket(bucketDevicesByUser), id)
		if err != nil {
			return err
		}
		for _, d := range devices {
			if err := tx.Bucket(bucketDevices).Delete(d); err != nil {
				return err
			}
		}
		// Removed phones leave their hash indexed to the user (see
		// DeleteDevice), so the index is searched by value.
		if err := deleteWhere(tx.Bucket(bucketUsersByPhone), func(_, v []byte) bool { return string(v) == string(id) }); err != nil {
			return err
		}
		for _, b := range [][]byte{bucketDevicesByUser, bucketAddresses} {
			if err := deletePrefix(tx.Bucket(b), userPrefix(id)); err != nil {
				return err
			}
		}
		if err := anonymizeAudit(tx, id); err != nil {
			return err
		}
		if err := deleteOfflineOfUser(tx, id); err != nil {
			return err
		}
		if err := deleteBadgesOfUser(tx, id); err != nil {
			return err
		}
		if err := tx.Bucket(bucketOATH).Delete([]byte(id)); err != nil {
			return err
		}
		if err := tx.Bucket(bucketPasswords).Delete([]byte(id)); err != nil {
			return err
		}
		if err := deleteOIDCOfUser(tx, id, true); err != nil {
			return err
		}
		if err := deleteRecoveryOfUser(tx, id); err != nil {
			return err
		}
		return tx.Bucket(bucketUsers).Delete([]byte(id))
	})
}

// anonymizeAudit strips the user's events of everything that names the
// person and drops them from the by-user index. The events themselves stay
// so that the log's sequence has no holes and still shows what happened
// when, and by which administrator (Actor). Events of other accounts that
// name this one as their actor are left alone: they are those accounts'
// records, and the administrator's accountability.
func anonymizeAudit(tx *bolt.Tx, id qrauth.UserID) error {
	idx, audit := tx.Bucket(bucketAuditByUser), tx.Bucket(bucketAudit)
	prefix := userPrefix(id)
	var keys [][]byte
	c := idx.Cursor()
	for k, _ := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, _ = c.Next() {
		keys = append(keys, bytes.Clone(k))
	}
	for _, k := range keys {
		seq := k[len(prefix):]
		e, err := get[qrauth.AuditEvent](audit, seq)
		if err != nil {
			return err
		}
		if e != nil {
			anon := qrauth.AuditEvent{Seq: e.Seq, Time: e.Time, Type: e.Type, Actor: e.Actor}
			if err := put(audit, seq, &anon); err != nil {
				return err
			}
		}
		if err := idx.Delete(k); err != nil {
			return err
		}
	}
	return nil
}

// prefixValues returns copies of the values of the entries of b under
// user id.
func prefixValues(b *bolt.Bucket, id qrauth.UserID) ([][]byte, error) {
	var out [][]byte
	err := scanUser(b, id, func(_, v []byte) error {
		out = append(out, bytes.Clone(v))
		return nil
	})
	return out, err
}

// deletePrefix deletes every entry of b whose key starts with prefix.
func deletePrefix(b *bolt.Bucket, prefix []byte) error {
	return deleteWhere(b, func(k, _ []byte) bool { return bytes.HasPrefix(k, prefix) })
}

// deleteWhere deletes every entry of b that match selects. It collects the
// keys first: deleting under a running cursor skips entries.
func deleteWhere(b *bolt.Bucket, match func(k, v []byte) bool) error {
	var keys [][]byte
	err := b.ForEach(func(k, v []byte) error {
		if match(k, v) {
			keys = append(keys, bytes.Clone(k))
		}
		return nil
	})
	if err != nil {
		return err
	}
	for _, k := range keys {
		if err := b.Delete(k); err != nil {
			return err
		}
	}
	return nil
}
