package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"strings"
	"time"

	"github.com/qrauth/qrauth"
	"github.com/qrauth/qrauth/badge"
	"github.com/qrauth/qrauth/oath"
	"github.com/qrauth/qrauth/offline"
	"github.com/qrauth/qrauth/oidc"
	"github.com/qrauth/qrauth/recovery"
	"github.com/qrauth/qrauth/store"
	"github.com/qrauth/qrauth/store/postgres"
)

// fullStore is what the core and every flow consume: both the embedded
// bbolt store (store.DB) and PostgreSQL (store/postgres) implement it.
type fullStore interface {
	qrauth.Store
	badge.Store
	oath.Store
	offline.Store
	oidc.Store
	recovery.Store
}

var (
	_ fullStore = (*store.DB)(nil)
	_ fullStore = (*postgres.DB)(nil)
)

// isPostgresURL reports whether -store names PostgreSQL.
func isPostgresURL(s string) bool {
	return strings.HasPrefix(s, "postgres://") || strings.HasPrefix(s, "postgresql://")
}

// checkStoreFlag refuses a -store value that names no store qrauthd has.
func checkStoreFlag(s string) error {
	if s == "" || isPostgresURL(s) {
		return nil
	}
	return fmt.Errorf("-store %q: want a postgres:// URL, or nothing for the embedded database file (-data)", redactURL(s))
}

// redactURL hides a password in a URL for messages and logs.
func redactURL(s string) string {
	u, err := url.Parse(s)
	if err != nil {
		return "(a URL that does not parse)"
	}
	return u.Redacted()
}

// openStore opens the store -store names: PostgreSQL, or by default the
// bbolt file -data (which it also checks, as -check-on-start says). The
// second result is the bbolt store, nil on PostgreSQL.
func (m *Main) openStore(log *slog.Logger, obs store.Observer) (fullStore, *store.DB, error) {
	if isPostgresURL(m.StoreURL) {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		pg, err := postgres.Open(ctx, m.StoreURL, postgres.Options{Observer: obs})
		if err != nil {
			return nil, nil, fmt.Errorf("database: %w", err)
		}
		log.Info("database open", slog.String("store", "postgres"), slog.String("url", redactURL(m.StoreURL)),
			slog.Int("schema", postgres.SchemaVersion()))
		return pg, nil, nil
	}
	db, err := store.Open(m.DataPath, store.Options{Observer: obs})
	if errors.Is(err, store.ErrDamaged) {
		return nil, nil, fmt.Errorf("database: %w\nRestore the file from a backup; `qrauthd check FILE` lists what is wrong with it", err)
	} else if err != nil {
		return nil, nil, fmt.Errorf("database: %w", err)
	}
	if from, ok := db.Upgraded(); ok {
		log.Info("database upgraded", slog.Uint64("from_schema", from), slog.Uint64("to_schema", store.SchemaVersion()))
	}
	if err := m.checkOnStart(db, log); err != nil {
		db.Close()
		return nil, nil, err
	}
	log.Info("database open", slog.String("path", m.DataPath))
	return db, db, nil
}
