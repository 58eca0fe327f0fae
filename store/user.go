package store

import (
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
