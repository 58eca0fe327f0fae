package store

import (
	"encoding/binary"
	"errors"
	"fmt"

	bolt "go.etcd.io/bbolt"
)

// ErrNewerSchema is returned (wrapped) by Open for a file written by a newer
// qrauthd: this program would misread it, and cannot go back to the older
// layout, so it refuses it whole.
var ErrNewerSchema = errors.New("the database was written by a newer qrauthd")

// A migration upgrades the file's layout by one version, from N to N+1. It
// runs inside the write transaction that Open uses for every migration due,
// so a failure leaves the file exactly as it was.
type migration struct {
	// What it does, for the error of a failure.
	name string
	up   func(tx *bolt.Tx) error
}

// migrations[i] upgrades schema version i+1 to i+2; the last one's target
// is the version this program writes. None exist yet: version 1 is the
// layout of doc.go. Append, never edit or reorder: a released migration
// has already run on operators' files.
var migrations []migration

// SchemaVersion is the layout this program reads and writes. Open upgrades
// older files to it and refuses newer ones.
func SchemaVersion() uint64 { return uint64(len(migrations)) + 1 }

// readVersion returns the schema version stored in the file.
func readVersion(tx *bolt.Tx) (uint64, error) {
	meta := tx.Bucket(bucketMeta)
	if meta == nil {
		return 0, fmt.Errorf("%w: no meta bucket: not a qrauth database", ErrDamaged)
	}
	v := meta.Get(keyVersion)
	if len(v) != 8 {
		return 0, fmt.Errorf("%w: corrupt schema version %x", ErrDamaged, v)
	}
	n := binary.BigEndian.Uint64(v)
	if n == 0 {
		return 0, fmt.Errorf("%w: schema version 0", ErrDamaged)
	}
	if n > SchemaVersion() {
		return n, fmt.Errorf("%w: schema version %d, this qrauthd reads up to %d; run that newer qrauthd, "+
			"or restore the backup taken before the upgrade to go back", ErrNewerSchema, n, SchemaVersion())
	}
	return n, nil
}

// migrate runs the migrations from version from to SchemaVersion in tx and
// records the new version. The caller's transaction makes them one step:
// all happen or none.
func migrate(tx *bolt.Tx, from uint64) error {
	for v := from; v < SchemaVersion(); v++ {
		m := migrations[v-1]
		if err := m.up(tx); err != nil {
			return fmt.Errorf("upgrade schema %d → %d (%s): %w; the file is unchanged", v, v+1, m.name, err)
		}
	}
	return tx.Bucket(bucketMeta).Put(keyVersion, u64(SchemaVersion()))
}

// Version returns the schema version of the open file: SchemaVersion for a
// file opened for writing (Open upgrades it), possibly older for one opened
// ReadOnly.
func (db *DB) Version() (uint64, error) {
	var n uint64
	err := guard(func() error {
		return db.bolt.View(func(tx *bolt.Tx) (err error) {
			n, err = readVersion(tx)
			return err
		})
	})
	return n, err
}

// Upgraded reports the schema version the file had before Open upgraded it,
// and whether it did.
func (db *DB) Upgraded() (from uint64, ok bool) {
	return db.upgradedFrom, db.upgradedFrom != 0
}
