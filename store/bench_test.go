package store_test

import (
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/qrauth/qrauth"
	"github.com/qrauth/qrauth/store"
)

func benchUser(b *testing.B) (*store.DB, *qrauth.User, *qrauth.Device) {
	b.Helper()
	db := MustOpenDB(b)
	u := &qrauth.User{ID: "u_bench", PhoneIDHash: "phone-bench", CreatedAt: t0}
	d := &qrauth.Device{ID: "d_bench", UserID: u.ID, PublicKey: make([]byte, 32), PhoneIDHash: u.PhoneIDHash, CreatedAt: t0}
	if err := db.CreateUser(b.Context(), u, d); err != nil {
		b.Fatal(err)
	}
	return db, u, d
}

// benchSession is session n of a sign-in, with the audit event the server
// writes alongside it.
func benchSession(u *qrauth.User, d *qrauth.Device, n int64) (*qrauth.Session, *qrauth.AuditEvent) {
	id := qrauth.SessionID(fmt.Sprint("s_", n))
	s := &qrauth.Session{
		ID: id, UserID: u.ID, TokenHash: qrauth.HashToken(fmt.Sprint("token-", n)), DeviceID: d.ID,
		IP: "192.0.2.1", UserAgent: "bench", CreatedAt: t0, ExpiresAt: t0.Add(time.Hour), LastSeenAt: t0,
	}
	return s, &qrauth.AuditEvent{Time: t0, Type: qrauth.AuditSignIn, UserID: u.ID, DeviceID: d.ID, SessionID: id, IP: s.IP}
}

// One sign-in at a time: each pays the batch delay and an fsync alone, so
// this is the latency of an uncontended sign-in.
func BenchmarkCreateSession(b *testing.B) {
	db, u, d := benchUser(b)
	var n int64
	for b.Loop() {
		n++
		s, e := benchSession(u, d, n)
		if err := db.CreateSession(b.Context(), s, e); err != nil {
			b.Fatal(err)
		}
	}
}

// Many sign-ins at once: Batch folds them into shared transactions, so
// ns/op (per sign-in) falls well below the sequential figure.
func BenchmarkCreateSessionParallel(b *testing.B) {
	db, u, d := benchUser(b)
	var n atomic.Int64
	b.SetParallelism(16)
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			s, e := benchSession(u, d, n.Add(1))
			if err := db.CreateSession(b.Context(), s, e); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

func BenchmarkFindSessionByTokenHash(b *testing.B) {
	db, u, d := benchUser(b)
	const sessions = 10000
	// Created concurrently so that setup takes a few batches, not ten
	// thousand fsyncs.
	var wg sync.WaitGroup
	for w := range int64(64) {
		wg.Go(func() {
			for n := w; n < sessions; n += 64 {
				s, _ := benchSession(u, d, n)
				if err := db.CreateSession(b.Context(), s); err != nil {
					b.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	hashes := make([][]byte, sessions)
	for n := range hashes {
		hashes[n] = qrauth.HashToken(fmt.Sprint("token-", n))
	}

	i := 0
	for b.Loop() {
		if _, err := db.FindSessionByTokenHash(b.Context(), hashes[i%sessions]); err != nil {
			b.Fatal(err)
		}
		i++
	}
}
