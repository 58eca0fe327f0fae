package store_test

import (
	"context"
	"fmt"
	"log"
	"os"
	"path/filepath"
	"time"

	"github.com/qrauth/qrauth"
	"github.com/qrauth/qrauth/store"
)

func ExampleOpen() {
	dir, err := os.MkdirTemp("", "qrauth")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)

	db, err := store.Open(filepath.Join(dir, "qrauth.db"), store.Options{})
	if err != nil {
		log.Fatal(err)
	}
	defer db.Close()

	ctx := context.Background()
	now := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	u := &qrauth.User{ID: "u_alice", Name: "Alice", PhoneIDHash: "4f1c…", CreatedAt: now}
	d := &qrauth.Device{ID: "d_alice", UserID: u.ID, PhoneIDHash: u.PhoneIDHash, CreatedAt: now}
	signup := &qrauth.AuditEvent{Time: now, Type: qrauth.AuditSignUp, UserID: u.ID}
	if err := db.CreateUser(ctx, u, d, signup); err != nil {
		log.Fatal(err)
	}

	found, err := db.FindUserByPhoneIDHash(ctx, "4f1c…")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(found.Name, "signed up; audit seq", signup.Seq)

	_, err = db.FindUserByID(ctx, "u_bob")
	fmt.Println(qrauth.ErrorCode(err), qrauth.ErrorReason(err))
	// Output:
	// Alice signed up; audit seq 1
	// not_found user_not_found
}
