package store

import (
	"context"
	"fmt"
	"io"

	bolt "go.etcd.io/bbolt"
)

// Backup writes a consistent copy of the whole file to w while the server
// goes on serving: bbolt's Tx.WriteTo inside one read transaction, which
// sees the last commit before it began and blocks no writer (bbolt keeps
// the pages that transaction reads until it ends). Every write
// acknowledged before Backup is called is in the copy.
//
// size is called once, before the first byte, with the exact length of
// the copy, so that a streaming caller can announce it (Content-Length)
// and its reader can tell a cut-off copy from a whole one. The copy is a
// database file that Open reads as it is; it holds the secrets encrypted
// under the master key, which is not in the file.
func (db *DB) Backup(ctx context.Context, w io.Writer, size func(int64)) (int64, error) {
	if err := ctxError(ctx); err != nil {
		return 0, err
	}
	var n int64
	err := guard(func() error {
		return db.bolt.View(func(tx *bolt.Tx) (err error) {
			if size != nil {
				size(tx.Size())
			}
			n, err = tx.WriteTo(w)
			return err
		})
	})
	if err != nil {
		return n, storeError(fmt.Errorf("store: backup: %w", err))
	}
	return n, nil
}
