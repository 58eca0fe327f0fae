package store

import (
	"testing"

	bolt "go.etcd.io/bbolt"
)

// SetMigrationsForTest appends test migrations after the real ones for the
// rest of tb, so that the runner can be proved before a real migration
// exists: SchemaVersion grows by len(ups). It is not for parallel tests.
func SetMigrationsForTest(tb testing.TB, ups ...func(tx *bolt.Tx) error) {
	tb.Helper()
	saved := migrations
	ms := append([]migration(nil), saved...)
	for _, up := range ups {
		ms = append(ms, migration{name: "test", up: up})
	}
	migrations = ms
	tb.Cleanup(func() { migrations = saved })
}
