package store

import (
	"bytes"
	"context"
	"fmt"

	"github.com/qrauth/qrauth"
	"github.com/qrauth/qrauth/badge"
	"github.com/qrauth/qrauth/oath"
	"github.com/qrauth/qrauth/offline"
	bolt "go.etcd.io/bbolt"
)

// checkFlowIndexes is checkIndexes for the buckets of the offline, OATH and
// badge flows: every record under its own id, of a user that exists, and
// every index entry in both directions.
func checkFlowIndexes(tx *bolt.Tx, users map[qrauth.UserID]bool) []error {
	var errs []error
	fail := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	bucket := tx.Bucket
	forEach := func(name []byte, fn func(k, v []byte) error) {
		b := bucket(name)
		if b == nil {
			fail("bucket %s is missing", name)
			return
		}
		if err := b.ForEach(fn); err != nil {
			fail("%s: %w", name, err)
		}
	}
	has := func(name, key []byte) bool { b := bucket(name); return b != nil && b.Get(key) != nil }
	getIn := func(name, key []byte) []byte {
		if b := bucket(name); b != nil {
			return b.Get(key)
		}
		return nil
	}

	forEach(bucketOfflineCreds, func(k, v []byte) error {
		c, err := decode[offline.Credential](k, v)
		if err != nil {
			return err
		}
		d, _ := get[qrauth.Device](bucket(bucketDevices), []byte(c.DeviceID))
		switch {
		case string(credKey(c.DeviceID, c.Method)) != string(k):
			fail("offline credential %q is for %s/%s", k, c.DeviceID, c.Method)
		case !users[c.UserID]:
			fail("offline credential %q belongs to missing user %q", k, c.UserID)
		case d == nil || d.UserID != c.UserID:
			fail("offline credential %q is for a device user %q does not have", k, c.UserID)
		case string(getIn(bucketOfflineCredsByUser, userKey(c.UserID, k))) != string(k):
			fail("offline credential %q missing from its user's index", k)
		}
		return nil
	})
	forEach(bucketOfflineCredsByUser, func(k, v []byte) error {
		c, err := get[offline.Credential](bucket(bucketOfflineCreds), v)
		if err != nil {
			return err
		} else if c == nil || string(userKey(c.UserID, v)) != string(k) {
			fail("offline credential index entry %q does not match credential %q", k, v)
		}
		return nil
	})

	forEach(bucketOfflineSessions, func(k, v []byte) error {
		s, err := decode[offline.Session](k, v)
		if err != nil {
			return err
		}
		switch {
		case s.ID != string(k):
			fail("offline session %q has id %q", k, s.ID)
		case !users[s.UserID]:
			fail("offline session %q belongs to missing user %q", k, s.UserID)
		case !has(bucketOfflineExpiry, expiryKey(s.ExpiresAt, 's', s.ID)):
			fail("offline session %q missing from the expiry index", k)
		}
		return nil
	})
	forEach(bucketApprovals, func(k, v []byte) error {
		a, err := decode[offline.Approval](k, v)
		if err != nil {
			return err
		}
		switch {
		case a.ID != string(k):
			fail("approval %q has id %q", k, a.ID)
		case !users[a.UserID]:
			fail("approval %q belongs to missing user %q", k, a.UserID)
		case string(getIn(bucketApprovalsByToken, a.TokenHash)) != string(k):
			fail("approval %q missing from the token index", k)
		case !has(bucketOfflineExpiry, expiryKey(a.ExpiresAt, 'a', a.ID)):
			fail("approval %q missing from the expiry index", k)
		}
		return nil
	})
	forEach(bucketApprovalsByToken, func(k, v []byte) error {
		a, err := get[offline.Approval](bucket(bucketApprovals), v)
		if err != nil {
			return err
		} else if a == nil || !bytes.Equal(a.TokenHash, k) {
			fail("approval token index entry %x does not match approval %q", k, v)
		}
		return nil
	})
	forEach(bucketOfflineExpiry, func(k, _ []byte) error {
		if len(k) < 10 {
			fail("malformed offline expiry key %x", k)
			return nil
		}
		id := k[9:]
		var ok bool
		switch k[8] {
		case 's':
			s, err := get[offline.Session](bucket(bucketOfflineSessions), id)
			if err != nil {
				return err
			}
			ok = s != nil && bytes.Equal(expiryKey(s.ExpiresAt, 's', s.ID), k)
		case 'a':
			a, err := get[offline.Approval](bucket(bucketApprovals), id)
			if err != nil {
				return err
			}
			ok = a != nil && bytes.Equal(expiryKey(a.ExpiresAt, 'a', a.ID), k)
		}
		if !ok {
			fail("offline expiry entry %x does not match a record", k)
		}
		return nil
	})

	forEach(bucketOATH, func(k, v []byte) error {
		a, err := decode[oath.Account](k, v)
		if err != nil {
			return err
		} else if string(a.UserID) != string(k) {
			fail("OATH account %q has user id %q", k, a.UserID)
		} else if !users[a.UserID] {
			fail("OATH account of missing user %q", k)
		}
		return nil
	})
	forEach(bucketPasswords, func(k, v []byte) error {
		p, err := decode[badge.Password](k, v)
		if err != nil {
			return err
		} else if string(p.UserID) != string(k) {
			fail("password %q has user id %q", k, p.UserID)
		} else if !users[p.UserID] {
			fail("password of missing user %q", k)
		}
		return nil
	})
	forEach(bucketBadges, func(k, v []byte) error {
		b, err := decode[badge.Badge](k, v)
		if err != nil {
			return err
		}
		switch {
		case string(b.ID) != string(k):
			fail("badge %q has id %q", k, b.ID)
		case !users[b.UserID]:
			fail("badge %q belongs to missing user %q", k, b.UserID)
		case string(getIn(bucketBadgesByUser, userKey(b.UserID, k))) != string(k):
			fail("badge %q missing from its user's index", k)
		}
		return nil
	})
	forEach(bucketBadgesByUser, func(k, v []byte) error {
		b, err := get[badge.Badge](bucket(bucketBadges), v)
		if err != nil {
			return err
		} else if b == nil || string(userKey(b.UserID, v)) != string(k) {
			fail("badge index entry %q does not match badge %q", k, v)
		}
		return nil
	})
	errs = append(errs, checkRecoveryIndexes(tx, users)...)
	return errs
}

// WeakKeys reports every device whose public key is weak (WeakPublicKey):
// anyone can forge that device's signatures (issue 9). They are not damage
// to the file, so Check leaves them out; `qrauthd check` reports both.
func (db *DB) WeakKeys() []error {
	var errs []error
	err := db.view(context.Background(), func(tx *bolt.Tx) error {
		return tx.Bucket(bucketDevices).ForEach(func(k, v []byte) error {
			d, err := decode[qrauth.Device](k, v)
			if err != nil {
				return err
			} else if WeakPublicKey(d.PublicKey) {
				errs = append(errs, fmt.Errorf("device %q of user %q has a weak public key, so anyone can sign in as that user with it: the user must remove that phone from the account page", k, d.UserID))
			}
			return nil
		})
	})
	if err != nil {
		errs = append(errs, err)
	}
	return errs
}
