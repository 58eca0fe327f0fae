package postgres_test

import (
	"context"
	"os"
	"strings"

	"github.com/jackc/pgx/v5"
	"testing"

	"github.com/qrauth/qrauth"
	"github.com/qrauth/qrauth/internal/pgtest"
	"github.com/qrauth/qrauth/oidc"
	"github.com/qrauth/qrauth/store/postgres"
	"github.com/qrauth/qrauth/store/storetest"
)

func TestMain(m *testing.M) {
	code := m.Run()
	pgtest.StopShared()
	os.Exit(code)
}

// open returns a store on a fresh schema of the shared throw-away server.
func open(t *testing.T) *postgres.DB {
	t.Helper()
	url := pgtest.Shared(t).Schema(t)
	db, err := postgres.Open(context.Background(), url, postgres.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func TestStore(t *testing.T) {
	storetest.Run(t, func(t *testing.T) qrauth.Store { return open(t) })
}

func TestOATHStore(t *testing.T) {
	storetest.RunOATH(t, func(t *testing.T) storetest.OATHStore { return open(t) })
}

func TestBadgeStore(t *testing.T) {
	storetest.RunBadge(t, func(t *testing.T) storetest.BadgeStore { return open(t) })
}

func TestOfflineStore(t *testing.T) {
	storetest.RunOffline(t, func(t *testing.T) storetest.OfflineStore { return open(t) })
}

func TestOIDCStore(t *testing.T) {
	storetest.RunOIDC(t, func(t *testing.T) oidc.Store { return open(t) })
}

func execURL(url, sql string) error {
	conn, err := pgx.Connect(context.Background(), url)
	if err != nil {
		return err
	}
	defer conn.Close(context.Background())
	_, err = conn.Exec(context.Background(), sql)
	return err
}

func contains(s, sub string) bool { return strings.Contains(s, sub) }

func TestRecoveryStore(t *testing.T) {
	storetest.RunRecovery(t, func(t *testing.T) storetest.RecoveryStore { return open(t) })
}
