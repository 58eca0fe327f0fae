package store_test

import (
	"context"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/qrauth/qrauth"
	"github.com/qrauth/qrauth/store"
)

// recorder is an Observer that keeps what it was told.
type recorder struct {
	mu      sync.Mutex
	commits []int
	events  []qrauth.AuditEvent
}

func (r *recorder) Committed(_ time.Duration, writes int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.commits = append(r.commits, writes)
}

func (r *recorder) Appended(e qrauth.AuditEvent) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.events = append(r.events, e)
}

func TestObserver(t *testing.T) {
	rec := &recorder{}
	db, err := store.Open(filepath.Join(t.TempDir(), "qrauth.db"), store.Options{Observer: rec})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { mustClose(t, db) })
	ctx := context.Background()

	t.Run("OK", func(t *testing.T) {
		ev := &qrauth.AuditEvent{Time: time.Now(), Type: qrauth.AuditRolesChanged, Detail: "test"}
		if err := db.AppendAudit(ctx, ev); err != nil {
			t.Fatal(err)
		}
		rec.mu.Lock()
		defer rec.mu.Unlock()
		if len(rec.events) != 1 || rec.events[0].Seq != ev.Seq || ev.Seq == 0 || rec.events[0].Detail != "test" {
			t.Fatalf("events = %+v, want the one appended with Seq %d", rec.events, ev.Seq)
		}
		if len(rec.commits) == 0 || rec.commits[len(rec.commits)-1] < 1 {
			t.Fatalf("commits = %v, want one of at least one write", rec.commits)
		}
	})

	// A failed write's event is not reported: only durable ones are, and
	// this one was rolled back with the transaction.
	t.Run("ErrNotFound", func(t *testing.T) {
		rec.mu.Lock()
		before := len(rec.events)
		rec.mu.Unlock()
		ev := &qrauth.AuditEvent{Time: time.Now(), Type: qrauth.AuditRevoked}
		if err := db.DeleteSession(ctx, "no-such-session", ev); qrauth.ErrorCode(err) != qrauth.ENOTFOUND {
			t.Fatalf("err = %v, want not found", err)
		}
		rec.mu.Lock()
		defer rec.mu.Unlock()
		if len(rec.events) != before {
			t.Fatalf("events = %+v, want none added", rec.events[before:])
		}
	})

	t.Run("Ping", func(t *testing.T) {
		if err := db.Ping(ctx); err != nil {
			t.Fatal(err)
		}
	})
}

// panicky is an Observer with a bug.
type panicky struct{}

func (panicky) Committed(time.Duration, int) { panic("observer bug") }
func (panicky) Appended(qrauth.AuditEvent)   { panic("observer bug") }

// TestObserverPanics: a panicking Observer neither fails a durable write
// nor stops the writes after it.
func TestObserverPanics(t *testing.T) {
	db, err := store.Open(filepath.Join(t.TempDir(), "qrauth.db"), store.Options{Observer: panicky{}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { mustClose(t, db) })
	ctx := context.Background()
	for i := range 3 {
		ev := &qrauth.AuditEvent{Time: time.Now(), Type: qrauth.AuditRolesChanged}
		if err := db.AppendAudit(ctx, ev); err != nil || ev.Seq != uint64(i+1) {
			t.Fatalf("write %d: %v, seq %d", i, err, ev.Seq)
		}
	}
	t.Run("Ping", func(t *testing.T) {
		if err := db.Ping(ctx); err != nil {
			t.Fatal(err)
		}
	})
}
