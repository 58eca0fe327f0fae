package store

import (
	"bytes"
	"context"
	"fmt"

	bolt "go.etcd.io/bbolt"
)

// Record is one record of the database as Export yields it: the bucket it
// lives in, its key, and its JSON value (or raw bytes, for secrets and
// index entries), exactly as stored.
type Record struct {
	Bucket string
	Key    []byte
	Value  []byte
}

// ExportBuckets are the buckets that hold the data, in an order in which
// every record comes after what it refers to (users before their devices,
// devices before their offline credentials). The other buckets are
// indexes, rebuilt from these by any importer; the one exception,
// users_by_phone, is exported because it keeps the phone hashes of removed
// devices, which no other record holds.
var ExportBuckets = []string{
	"secrets", "users", "users_by_phone", "devices", "sessions", "addresses", "audit",
	"oath_accounts", "passwords", "badges",
	"offline_credentials", "offline_sessions", "approvals", "recovery_codes", "recovery_state",
	"oidc_clients", "oidc_requests", "oidc_tokens", "oidc_keys", "oidc_consents", "oidc_sessions",
}

// Export calls fn with every record of ExportBuckets, bucket by bucket, in
// key order, from one read transaction: a consistent snapshot while the
// server runs. The slices are copies; fn may keep them. A bucket this file
// lacks (written by an older program) is skipped.
func (db *DB) Export(ctx context.Context, fn func(Record) error) error {
	return db.view(ctx, func(tx *bolt.Tx) error {
		for _, name := range ExportBuckets {
			b := tx.Bucket([]byte(name))
			if b == nil {
				continue
			}
			err := b.ForEach(func(k, v []byte) error {
				if v == nil {
					return fmt.Errorf("export: unexpected nested bucket %q in %s", k, name)
				}
				if err := ctx.Err(); err != nil {
					return err
				}
				return fn(Record{Bucket: name, Key: bytes.Clone(k), Value: bytes.Clone(v)})
			})
			if err != nil {
				return err
			}
		}
		return nil
	})
}
