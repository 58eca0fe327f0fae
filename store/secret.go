package store

import (
	"bytes"
	"context"
	"errors"

	"github.com/qrauth/qrauth"
	bolt "go.etcd.io/bbolt"
)

// Secret implements qrauth.Store. create runs outside any transaction, so a
// slow source of randomness never holds the write lock; when two callers
// race, both may call create, the first write wins and both return it.
func (db *DB) Secret(ctx context.Context, name string, create func() ([]byte, error)) ([]byte, error) {
	if name == "" {
		return nil, invalidf("empty secret name")
	} else if create == nil {
		return nil, invalidf("nil create function")
	}
	var v []byte
	err := db.view(ctx, func(tx *bolt.Tx) error {
		v = bytes.Clone(tx.Bucket(bucketSecrets).Get([]byte(name)))
		return nil
	})
	if err != nil || v != nil {
		return v, err
	}

	nv, err := create()
	if err != nil {
		return nil, storeError(err)
	} else if len(nv) == 0 {
		// An empty value would read back as missing and be replaced.
		return nil, qrauth.Internal(errors.New("store: secret " + name + ": create returned an empty value"))
	}
	err = db.update(ctx, false, nil, func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketSecrets)
		if v = bytes.Clone(b.Get([]byte(name))); v != nil {
			return nil
		}
		v = bytes.Clone(nv)
		return b.Put([]byte(name), v)
	})
	if err != nil {
		return nil, err
	}
	return v, nil
}
