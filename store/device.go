package store

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/qrauth/qrauth"
	"github.com/qrauth/qrauth/offline"
	bolt "go.etcd.io/bbolt"
)

func errDeviceNotFound() error {
	return qrauth.Errorf(qrauth.ENOTFOUND, "device_not_found", "There is no such device.")
}

func errDeviceExists() error {
	return qrauth.Errorf(qrauth.ECONFLICT, "device_exists", "This device is already registered.")
}

// CreateDevice implements qrauth.Store. A PhoneIDHash already indexed to
// d.UserID is accepted: it is the same phone with a reinstalled app.
func (db *DB) CreateDevice(ctx context.Context, d *qrauth.Device, events ...*qrauth.AuditEvent) error {
	if d == nil {
		return invalidf("CreateDevice needs a device")
	} else if d.ID == "" {
		return invalidf("empty device id")
	} else if err := checkUserID(d.UserID); err != nil {
		return err
	} else if d.PhoneIDHash == "" {
		return invalidf("empty phone id hash")
	}
	dev := *d
	return db.update(ctx, true, events, func(tx *bolt.Tx) error {
		if tx.Bucket(bucketUsers).Get([]byte(dev.UserID)) == nil {
			return errUserNotFound()
		} else if tx.Bucket(bucketDevices).Get([]byte(dev.ID)) != nil {
			return errDeviceExists()
		} else if owner := tx.Bucket(bucketUsersByPhone).Get([]byte(dev.PhoneIDHash)); owner != nil && string(owner) != string(dev.UserID) {
			return errPhoneTaken()
		}
		return putDevice(tx, &dev)
	})
}

// putDevice writes a new device and its index entries.
func putDevice(tx *bolt.Tx, d *qrauth.Device) error {
	if err := put(tx.Bucket(bucketDevices), []byte(d.ID), d); err != nil {
		return err
	} else if err := tx.Bucket(bucketDevicesByUser).Put(userKey(d.UserID, []byte(d.ID)), []byte(d.ID)); err != nil {
		return err
	}
	return tx.Bucket(bucketUsersByPhone).Put([]byte(d.PhoneIDHash), []byte(d.UserID))
}

// FindDeviceByID implements qrauth.Store.
func (db *DB) FindDeviceByID(ctx context.Context, id qrauth.DeviceID) (*qrauth.Device, error) {
	var d *qrauth.Device
	err := db.view(ctx, func(tx *bolt.Tx) (err error) {
		d, err = findDevice(tx, id)
		return err
	})
	if err != nil {
		return nil, err
	}
	return d, nil
}

// FindDevicesByUser implements qrauth.Store. Ties in CreatedAt are ordered
// by id so that the order is stable between calls. A user with no devices,
// or no such user, yields an empty list.
func (db *DB) FindDevicesByUser(ctx context.Context, id qrauth.UserID) ([]*qrauth.Device, error) {
	ds := []*qrauth.Device{}
	if checkUserID(id) != nil {
		return ds, nil
	}
	err := db.view(ctx, func(tx *bolt.Tx) error {
		return scanUser(tx.Bucket(bucketDevicesByUser), id, func(_, v []byte) error {
			d, err := findDevice(tx, qrauth.DeviceID(v))
			if qrauth.ErrorCode(err) == qrauth.ENOTFOUND {
				return fmt.Errorf("device index of user %q points to missing device %q", id, v)
			} else if err != nil {
				return err
			}
			ds = append(ds, d)
			return nil
		})
	})
	if err != nil {
		return nil, err
	}
	slices.SortFunc(ds, func(a, b *qrauth.Device) int {
		return cmp.Or(a.CreatedAt.Compare(b.CreatedAt), cmp.Compare(a.ID, b.ID))
	})
	return ds, nil
}

// TouchDevice implements qrauth.Store.
func (db *DB) TouchDevice(ctx context.Context, id qrauth.DeviceID, at time.Time) error {
	return db.update(ctx, true, nil, func(tx *bolt.Tx) error {
		d, err := findDevice(tx, id)
		if err != nil {
			return err
		}
		d.LastSeenAt = at
		return put(tx.Bucket(bucketDevices), []byte(id), d)
	})
}

func findDevice(tx *bolt.Tx, id qrauth.DeviceID) (*qrauth.Device, error) {
	if id == "" {
		return nil, errDeviceNotFound()
	}
	d, err := get[qrauth.Device](tx.Bucket(bucketDevices), []byte(id))
	if err != nil {
		return nil, err
	} else if d == nil {
		return nil, errDeviceNotFound()
	}
	return d, nil
}

// DeleteDevice implements qrauth.Store. The phone's PhoneIDHash stays
// indexed to the user, so the number still names the account and a new
// phone with it can be linked from a signed-in browser.
func (db *DB) DeleteDevice(ctx context.Context, id qrauth.DeviceID, events ...*qrauth.AuditEvent) error {
	return db.update(ctx, true, events, func(tx *bolt.Tx) error {
		d, err := findDevice(tx, id)
		if err != nil {
			return err
		}
		return deleteDevice(tx, d)
	})
}

// RemoveDevice implements qrauth.Store.
func (db *DB) RemoveDevice(ctx context.Context, id qrauth.DeviceID, events ...*qrauth.AuditEvent) (int, error) {
	var ended int
	err := db.update(ctx, false, events, func(tx *bolt.Tx) error {
		d, err := findDevice(tx, id)
		if err != nil {
			return err
		}
		if err := deleteDevice(tx, d); err != nil {
			return err
		}
		ended, err = endUserSessions(tx, d.UserID, func(s *qrauth.Session) bool { return s.DeviceID == d.ID })
		return err
	})
	if err != nil {
		return 0, err
	}
	return ended, nil
}

// deleteDevice removes d, its index entry and its offline keys.
func deleteDevice(tx *bolt.Tx, d *qrauth.Device) error {
	if err := tx.Bucket(bucketDevicesByUser).Delete(userKey(d.UserID, []byte(d.ID))); err != nil {
		return err
	}
	// Its offline keys go with it: a removed phone must not produce
	// codes that still verify.
	for _, m := range offline.Methods {
		if err := tx.Bucket(bucketOfflineCreds).Delete(credKey(d.ID, m)); err != nil {
			return err
		}
		if err := tx.Bucket(bucketOfflineCredsByUser).Delete(userKey(d.UserID, credKey(d.ID, m))); err != nil {
			return err
		}
	}
	return tx.Bucket(bucketDevices).Delete([]byte(d.ID))
}
