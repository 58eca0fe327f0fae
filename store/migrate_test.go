package store_test

import (
	"bytes"
	"crypto/ed25519"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/qrauth/qrauth"
	"github.com/qrauth/qrauth/store"
	bolt "go.etcd.io/bbolt"
)

// copyFixture copies the version-1 fixture of compat_test.go into a
// temporary directory and returns the copy's path and bytes.
func copyFixture(t *testing.T) (string, []byte) {
	t.Helper()
	data, err := os.ReadFile(compatDB)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "qrauth.db")
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return path, data
}

func TestMigrations(t *testing.T) {
	if v := store.SchemaVersion(); v != 1 {
		t.Fatalf("SchemaVersion %d: a real migration exists, add its fixture (compat-v%d.db) and adapt these tests", v, v)
	}
	mark := []byte("migrated")

	t.Run("UpgradesV1", func(t *testing.T) {
		path, _ := copyFixture(t)
		store.SetMigrationsForTest(t, func(tx *bolt.Tx) error {
			b, err := tx.CreateBucket(mark)
			if err != nil {
				return err
			}
			return b.Put(mark, []byte("1→2"))
		})
		db := openPath(t, path)
		if from, ok := db.Upgraded(); !ok || from != 1 {
			t.Errorf("Upgraded() = %d, %v; want 1, true", from, ok)
		}
		if v, err := db.Version(); err != nil || v != 2 {
			t.Errorf("Version() = %d, %v; want 2", v, err)
		}
		mustClose(t, db)
		// The migration ran once, inside the file; a second open finds
		// the file current.
		db = openPath(t, path)
		defer mustClose(t, db)
		if _, ok := db.Upgraded(); ok {
			t.Error("a current file was upgraded again")
		}
		if got := readMark(t, path, db, mark); got != "1→2" {
			t.Errorf("the migration's write reads %q", got)
		}
	})

	t.Run("FailureLeavesFileUntouched", func(t *testing.T) {
		path, before := copyFixture(t)
		store.SetMigrationsForTest(t,
			func(tx *bolt.Tx) error { _, err := tx.CreateBucket(mark); return err },
			func(tx *bolt.Tx) error { return errors.New("disk says no") })
		_, err := store.Open(path, store.Options{})
		if err == nil || !strings.Contains(err.Error(), "upgrade schema 2 → 3") || !strings.Contains(err.Error(), "disk says no") {
			t.Fatalf("Open: %v; want the failed step and its cause", err)
		}
		after, rerr := os.ReadFile(path)
		if rerr != nil {
			t.Fatal(rerr)
		}
		if !bytes.Equal(before, after) {
			t.Fatal("a failed migration changed the file")
		}
	})

	t.Run("NewerRefused", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "qrauth.db")
		t.Run("WrittenByNewer", func(t *testing.T) {
			store.SetMigrationsForTest(t, func(*bolt.Tx) error { return nil })
			mustClose(t, openPath(t, path))
		})
		before, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		for _, ro := range []bool{false, true} {
			_, err := store.Open(path, store.Options{ReadOnly: ro})
			if !errors.Is(err, store.ErrNewerSchema) || !strings.Contains(err.Error(), "schema version 2, this qrauthd reads up to 1") {
				t.Errorf("ReadOnly %v: Open: %v; want ErrNewerSchema naming both versions", ro, err)
			}
		}
		if after, _ := os.ReadFile(path); !bytes.Equal(before, after) {
			t.Error("the refusal changed the file")
		}
	})

	t.Run("ReadOnlyDoesNotUpgrade", func(t *testing.T) {
		path, before := copyFixture(t)
		store.SetMigrationsForTest(t, func(*bolt.Tx) error { return errors.New("must not run") })
		db, err := store.Open(path, store.Options{ReadOnly: true})
		if err != nil {
			t.Fatal(err)
		}
		if v, err := db.Version(); err != nil || v != 1 {
			t.Errorf("Version() = %d, %v; want the file's 1", v, err)
		}
		db.Close()
		if after, _ := os.ReadFile(path); !bytes.Equal(before, after) {
			t.Error("a read-only open changed the file")
		}
	})
}

// readMark reads the test migration's entry by reopening the file with
// bbolt itself, which the store does not let callers do.
func readMark(t *testing.T, path string, db *store.DB, mark []byte) string {
	t.Helper()
	var buf bytes.Buffer
	if _, err := db.Backup(t.Context(), &buf, nil); err != nil {
		t.Fatal(err)
	}
	copyPath := filepath.Join(t.TempDir(), "copy.db")
	if err := os.WriteFile(copyPath, buf.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	b, err := bolt.Open(copyPath, 0o600, &bolt.Options{ReadOnly: true, Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	var got string
	b.View(func(tx *bolt.Tx) error {
		if bk := tx.Bucket(mark); bk != nil {
			got = string(bk.Get(mark))
		}
		return nil
	})
	return got
}

// TestBackupWhileWriting: a backup taken while users are being created
// holds every user whose creation returned before it began, is exactly as
// long as announced, and passes the full check.
func TestBackupWhileWriting(t *testing.T) {
	db := MustOpenDB(t)
	ctx := t.Context()
	pub, _, _ := ed25519.GenerateKey(nil)
	now := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	create := func(i int) error {
		u := &qrauth.User{ID: qrauth.UserID(fmt.Sprintf("u_%06d", i)), Name: "n", PhoneIDHash: fmt.Sprintf("p%06d", i), CreatedAt: now}
		d := &qrauth.Device{ID: qrauth.DeviceID(fmt.Sprintf("d_%06d", i)), UserID: u.ID, PublicKey: pub, PhoneIDHash: u.PhoneIDHash, CreatedAt: now}
		return db.CreateUser(ctx, u, d, &qrauth.AuditEvent{Time: now, Type: qrauth.AuditSignUp, UserID: u.ID})
	}
	const before, during = 200, 400
	for i := range before {
		if err := create(i); err != nil {
			t.Fatal(err)
		}
	}
	var wg sync.WaitGroup
	started := make(chan struct{})
	errs := make(chan error, during)
	for w := range 4 {
		wg.Go(func() {
			<-started
			for i := before + w; i < before+during; i += 4 {
				if err := create(i); err != nil {
					errs <- err
				}
			}
		})
	}
	var buf bytes.Buffer
	var announced int64 = -1
	close(started)
	n, err := db.Backup(ctx, &buf, func(size int64) { announced = size })
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if err != nil {
		t.Fatal(err)
	}
	if n != announced || int64(buf.Len()) != n {
		t.Fatalf("announced %d bytes, wrote %d, got %d", announced, n, buf.Len())
	}
	path := filepath.Join(t.TempDir(), "backup.db")
	if err := os.WriteFile(path, buf.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	cp := mustOpenPath(t, path) // checked on cleanup
	for i := range before {
		if _, err := cp.FindUserByID(ctx, qrauth.UserID(fmt.Sprintf("u_%06d", i))); err != nil {
			t.Fatalf("user %d, created before the backup: %v", i, err)
		}
	}
}
