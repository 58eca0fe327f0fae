package store_test

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/qrauth/qrauth"
	"github.com/qrauth/qrauth/oidc"
	"github.com/qrauth/qrauth/store"
	"github.com/qrauth/qrauth/store/storetest"
)

// MustOpenDB opens a new database in a temporary directory. On cleanup it
// checks the file's structure and indexes, then closes it.
func MustOpenDB(tb testing.TB) *store.DB {
	tb.Helper()
	return mustOpenPath(tb, filepath.Join(tb.TempDir(), "qrauth.db"))
}

func mustOpenPath(tb testing.TB, path string) *store.DB {
	tb.Helper()
	db := openPath(tb, path)
	tb.Cleanup(func() { mustClose(tb, db) })
	return db
}

// openPath opens the database at path and leaves closing to the caller.
func openPath(tb testing.TB, path string) *store.DB {
	tb.Helper()
	db, err := store.Open(path, store.Options{})
	if err != nil {
		tb.Fatal(err)
	}
	return db
}

func mustClose(tb testing.TB, db *store.DB) {
	tb.Helper()
	if err := db.Check(); err != nil {
		tb.Error(err)
	}
	if err := db.Close(); err != nil {
		tb.Error(err)
	}
}

func TestStore(t *testing.T) {
	storetest.Run(t, func(t *testing.T) qrauth.Store { return MustOpenDB(t) })
	storetest.RunOATH(t, func(t *testing.T) storetest.OATHStore { return MustOpenDB(t) })
	storetest.RunOffline(t, func(t *testing.T) storetest.OfflineStore { return MustOpenDB(t) })
	storetest.RunRecovery(t, func(t *testing.T) storetest.RecoveryStore { return MustOpenDB(t) })
	storetest.RunBadge(t, func(t *testing.T) storetest.BadgeStore { return MustOpenDB(t) })
}

func TestOIDCStore(t *testing.T) {
	storetest.RunOIDC(t, func(t *testing.T) oidc.Store { return MustOpenDB(t) })
}

var t0 = time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)

func createFixture(t *testing.T, db *store.DB, token string) *qrauth.Session {
	t.Helper()
	ctx := t.Context()
	u := &qrauth.User{ID: "u_alice", PhoneIDHash: "phone-alice", CreatedAt: t0}
	d := &qrauth.Device{ID: "d_alice", UserID: u.ID, PublicKey: make([]byte, 32), PhoneIDHash: "phone-alice", CreatedAt: t0}
	if err := db.CreateUser(ctx, u, d, &qrauth.AuditEvent{Time: t0, Type: qrauth.AuditSignUp, UserID: u.ID}); err != nil {
		t.Fatal(err)
	}
	s := &qrauth.Session{
		ID: "s_1", UserID: u.ID, TokenHash: qrauth.HashToken(token), DeviceID: d.ID,
		IP: "192.0.2.1", CreatedAt: t0, ExpiresAt: t0.Add(time.Hour), LastSeenAt: t0,
	}
	if err := db.CreateSession(ctx, s, &qrauth.AuditEvent{Time: t0, Type: qrauth.AuditSignIn, UserID: u.ID, SessionID: s.ID}); err != nil {
		t.Fatal(err)
	}
	return s
}

func TestOpen(t *testing.T) {
	t.Run("Durable", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "qrauth.db")
		db := openPath(t, path)
		s := createFixture(t, db, "secret-token")
		secret, err := db.Secret(t.Context(), "salt", func() ([]byte, error) { return []byte("pepper"), nil })
		if err != nil {
			t.Fatal(err)
		}
		mustClose(t, db)

		db = mustOpenPath(t, path)
		got, err := db.FindSessionByTokenHash(t.Context(), s.TokenHash)
		if err != nil {
			t.Fatal(err)
		} else if got.ID != s.ID {
			t.Fatalf("session %s after reopening, want %s", got.ID, s.ID)
		}
		if _, err := db.FindUserByPhoneIDHash(t.Context(), "phone-alice"); err != nil {
			t.Fatal(err)
		}
		again, err := db.Secret(t.Context(), "salt", func() ([]byte, error) { return []byte("other"), nil })
		if err != nil {
			t.Fatal(err)
		} else if !bytes.Equal(again, secret) {
			t.Fatalf("secret %q after reopening, want %q", again, secret)
		}
		// Seqs continue after a reopen, so they are never reused.
		evs, err := db.ListAudit(t.Context(), qrauth.AuditFilter{})
		if err != nil {
			t.Fatal(err)
		} else if len(evs) != 2 {
			t.Fatalf("%d audit events after reopening, want 2", len(evs))
		}
		e := &qrauth.AuditEvent{Time: t0, Type: qrauth.AuditSignOut}
		if err := db.AppendAudit(t.Context(), e); err != nil {
			t.Fatal(err)
		} else if e.Seq <= evs[1].Seq {
			t.Fatalf("Seq %d after reopening, last was %d", e.Seq, evs[1].Seq)
		}
	})

	t.Run("ErrLocked", func(t *testing.T) {
		db := MustOpenDB(t)
		start := time.Now()
		second, err := store.Open(db.Path(), store.Options{})
		elapsed := time.Since(start)
		if err == nil {
			second.Close()
			t.Fatal("second Open of an open file succeeded")
		}
		if !errors.Is(err, store.ErrLocked) || !strings.Contains(err.Error(), "database is locked by another process") {
			t.Fatalf("err = %v, want ErrLocked", err)
		}
		if elapsed > 3*time.Second {
			t.Fatalf("second Open took %v to fail, want about %v", elapsed, store.DefaultLockTimeout)
		}
		// The first handle is unaffected.
		if _, err := db.ListAudit(t.Context(), qrauth.AuditFilter{}); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("Modes", func(t *testing.T) {
		dir := filepath.Join(t.TempDir(), "state", "qrauth")
		db := mustOpenPath(t, filepath.Join(dir, "qrauth.db"))
		for _, tt := range []struct {
			path string
			want os.FileMode
		}{
			{db.Path(), 0o600},
			{dir, 0o700},
			{filepath.Dir(dir), 0o700},
		} {
			fi, err := os.Stat(tt.path)
			if err != nil {
				t.Fatal(err)
			} else if got := fi.Mode().Perm(); got != tt.want {
				t.Errorf("mode of %s = %v, want %v", tt.path, got, tt.want)
			}
		}
	})

	t.Run("ErrNotADatabase", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "qrauth.db")
		if err := os.WriteFile(path, bytes.Repeat([]byte("not bbolt "), 1000), 0o600); err != nil {
			t.Fatal(err)
		}
		if db, err := store.Open(path, store.Options{}); err == nil {
			db.Close()
			t.Fatal("Open of a file that is not a database succeeded")
		}
	})
}

// The file must hold only the hash of a session token: whoever copies it
// must not be able to sign in.
func TestTokenNotStored(t *testing.T) {
	path := filepath.Join(t.TempDir(), "qrauth.db")
	db := openPath(t, path)
	const token = "TOKEN-b7f3e1c9a2d84f0e9c1b5a7d3e6f8a0c"
	s := createFixture(t, db, token)
	mustClose(t, db)

	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	// Without this, a file the scan cannot read would pass vacuously.
	if !bytes.Contains(raw, s.TokenHash) {
		t.Fatal("token hash not found in the file; is the scan looking at the right bytes?")
	}
	if bytes.Contains(raw, []byte(token)) {
		t.Fatal("the session token is stored in clear")
	}
}

func TestCanceledContext(t *testing.T) {
	db := MustOpenDB(t)
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	e := &qrauth.AuditEvent{Time: t0, Type: qrauth.AuditSignIn}
	err := db.AppendAudit(ctx, e)
	if !errors.Is(err, context.Canceled) || qrauth.ErrorCode(err) != qrauth.EINTERNAL {
		t.Fatalf("err = %v, want internal error wrapping context.Canceled", err)
	}
	if e.Seq != 0 {
		t.Fatalf("Seq = %d after a refused call", e.Seq)
	}
	if evs, err := db.ListAudit(t.Context(), qrauth.AuditFilter{}); err != nil || len(evs) != 0 {
		t.Fatalf("ListAudit = %d events, %v; want none", len(evs), err)
	}
}

// A user id with "/" would let one user's index prefix match another's.
func TestErrSlashInUserID(t *testing.T) {
	db := MustOpenDB(t)
	u := &qrauth.User{ID: "u_a/b", PhoneIDHash: "p", CreatedAt: t0}
	d := &qrauth.Device{ID: "d_x", UserID: u.ID, PhoneIDHash: "p", CreatedAt: t0}
	if err := db.CreateUser(t.Context(), u, d); qrauth.ErrorCode(err) != qrauth.EINVALID {
		t.Fatalf("err = %v, want EINVALID", err)
	}
}

func TestErrPhoneMismatch(t *testing.T) {
	db := MustOpenDB(t)
	u := &qrauth.User{ID: "u_a", PhoneIDHash: "p1", CreatedAt: t0}
	d := &qrauth.Device{ID: "d_x", UserID: u.ID, PhoneIDHash: "p2", CreatedAt: t0}
	if err := db.CreateUser(t.Context(), u, d); qrauth.ErrorCode(err) != qrauth.EINVALID {
		t.Fatalf("err = %v, want EINVALID", err)
	}
}

func TestErrClosed(t *testing.T) {
	db := openPath(t, filepath.Join(t.TempDir(), "qrauth.db"))
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := db.FindUserByID(t.Context(), "u_a"); qrauth.ErrorCode(err) != qrauth.EINTERNAL {
		t.Fatalf("err = %v, want EINTERNAL", err)
	}
}
