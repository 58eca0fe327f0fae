package postgres_test

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/qrauth/qrauth"
	"github.com/qrauth/qrauth/internal/pgtest"
	"github.com/qrauth/qrauth/oath"
	"github.com/qrauth/qrauth/store/postgres"
)

// twoInstances opens two stores on one database, as two qrauthd instances
// would: separate pools, so the contracts must hold through PostgreSQL and
// not through anything shared in this process.
func twoInstances(t *testing.T) (a, b *postgres.DB) {
	t.Helper()
	url := pgtest.Shared(t).Schema(t)
	var err error
	if a, err = postgres.Open(context.Background(), url, postgres.Options{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Close() })
	if b, err = postgres.Open(context.Background(), url, postgres.Options{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	return a, b
}

// race runs fn on both stores n times at once and returns how many calls
// succeeded and the codes of those that failed.
func race(t *testing.T, a, b *postgres.DB, n int, fn func(db *postgres.DB, i int) error) (ok int, codes map[string]int) {
	t.Helper()
	var mu sync.Mutex
	codes = map[string]int{}
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		db := a
		if i%2 == 1 {
			db = b
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			err := fn(db, i)
			mu.Lock()
			defer mu.Unlock()
			if err == nil {
				ok++
			} else {
				codes[qrauth.ErrorReason(err)]++
			}
		}()
	}
	close(start)
	wg.Wait()
	return ok, codes
}

func newUser(t *testing.T, db *postgres.DB, name string) *qrauth.User {
	t.Helper()
	pub, _, _ := ed25519.GenerateKey(rand.Reader)
	now := time.Now().UTC().Truncate(time.Second)
	u := &qrauth.User{ID: qrauth.UserID("u_" + name), PhoneIDHash: "h_" + name, CreatedAt: now}
	d := &qrauth.Device{ID: qrauth.DeviceID("d_" + name), UserID: u.ID, PublicKey: pub, PhoneIDHash: u.PhoneIDHash, CreatedAt: now}
	if err := db.CreateUser(context.Background(), u, d); err != nil {
		t.Fatal(err)
	}
	return u
}

func TestInstancesSignUpRace(t *testing.T) {
	a, b := twoInstances(t)
	pub, _, _ := ed25519.GenerateKey(rand.Reader)
	ok, codes := race(t, a, b, 8, func(db *postgres.DB, i int) error {
		u := &qrauth.User{ID: qrauth.UserID(fmt.Sprintf("u_%d", i)), PhoneIDHash: "same-phone"}
		d := &qrauth.Device{ID: qrauth.DeviceID(fmt.Sprintf("d_%d", i)), UserID: u.ID, PublicKey: pub, PhoneIDHash: "same-phone"}
		return db.CreateUser(context.Background(), u, d, &qrauth.AuditEvent{Type: qrauth.AuditSignUp, UserID: u.ID})
	})
	if ok != 1 || codes["phone_taken"] != 7 {
		t.Fatalf("one phone signed up %d times; refusals %v", ok, codes)
	}
	// Exactly one audit event: the losers' events were rolled back with them.
	evs, err := b.ListAudit(context.Background(), qrauth.AuditFilter{})
	if err != nil || len(evs) != 1 {
		t.Fatalf("audit after the race: %d events, %v", len(evs), err)
	}
}

func TestInstancesOATHReplay(t *testing.T) {
	a, b := twoInstances(t)
	ctx := context.Background()
	u := newUser(t, a, "oath")
	tok := &oath.Token{ID: "t1", Kind: oath.TOTP, Algorithm: oath.SHA1, Digits: 6, Period: 30, Secret: []byte("sealed"), CreatedAt: time.Now()}
	if _, err := a.CreateOATHToken(ctx, u.ID, tok); err != nil {
		t.Fatal(err)
	}
	ok, codes := race(t, a, b, 8, func(db *postgres.DB, i int) error {
		_, err := db.RecordOATHUse(ctx, u.ID, oath.Use{TokenID: "t1", Counter: 1000, At: time.Now()})
		return err
	})
	if ok != 1 || codes["oath_replayed"] != 7 {
		t.Fatalf("one code accepted %d times; refusals %v", ok, codes)
	}
	acc, err := b.FindOATHAccount(ctx, u.ID)
	if err != nil || acc.NextCounter != 1001 {
		t.Fatalf("account after the race: %+v, %v", acc, err)
	}
}

func TestInstancesAuditOrder(t *testing.T) {
	a, b := twoInstances(t)
	ctx := context.Background()
	ok, _ := race(t, a, b, 40, func(db *postgres.DB, i int) error {
		return db.AppendAudit(ctx, &qrauth.AuditEvent{Type: "test", Detail: fmt.Sprint(i)}, &qrauth.AuditEvent{Type: "test2"})
	})
	if ok != 40 {
		t.Fatalf("%d of 40 appends succeeded", ok)
	}
	evs, err := a.ListAudit(ctx, qrauth.AuditFilter{Limit: 1000})
	if err != nil || len(evs) != 80 {
		t.Fatalf("%d events, %v", len(evs), err)
	}
	for i, e := range evs {
		if e.Seq != uint64(i+1) {
			t.Fatalf("event %d has Seq %d: the log has a gap or is out of order", i, e.Seq)
		}
	}
}

func TestOpenRefusesNewerSchema(t *testing.T) {
	url := pgtest.Shared(t).Schema(t)
	db, err := postgres.Open(context.Background(), url, postgres.Options{})
	if err != nil {
		t.Fatal(err)
	}
	db.Close()
	// A newer program recorded a migration this one does not know.
	if err := execURL(url, "INSERT INTO schema_migrations (version, name) VALUES (9999, '9999_future.sql')"); err != nil {
		t.Fatal(err)
	}
	_, err = postgres.Open(context.Background(), url, postgres.Options{})
	if err == nil || !contains(err.Error(), "newer than this program") {
		t.Fatalf("Open on a newer schema: %v", err)
	}
}

func TestOpenUnreachable(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	// Port 1 on loopback: nothing listens there.
	_, err := postgres.Open(ctx, "postgres://qrauth:hunter2@127.0.0.1:1/qrauth?sslmode=disable&connect_timeout=2", postgres.Options{})
	if err == nil {
		t.Fatal("Open succeeded with nothing listening")
	}
	if contains(err.Error(), "hunter2") {
		t.Fatalf("the error shows the password: %v", err)
	}
	if !contains(err.Error(), "cannot reach") {
		t.Fatalf("unclear error: %v", err)
	}
}
