package postgres_test

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"github.com/qrauth/qrauth"
	"github.com/qrauth/qrauth/oath"
	"github.com/qrauth/qrauth/offline"
	"github.com/qrauth/qrauth/oidc"
	"github.com/qrauth/qrauth/store"
)

// TestImport fills a bbolt store through its interfaces, imports it, and
// reads every kind of record back from PostgreSQL through the same
// interfaces.
func TestImport(t *testing.T) {
	ctx := context.Background()
	src, err := store.Open(filepath.Join(t.TempDir(), "qrauth.db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	now := time.Now().UTC().Truncate(time.Second)
	pub, _, _ := ed25519.GenerateKey(rand.Reader)

	secret, err := src.Secret(ctx, "phone_salt", func() ([]byte, error) { return []byte("salt!"), nil })
	if err != nil {
		t.Fatal(err)
	}
	u := &qrauth.User{ID: "u_1", Name: "Ada", PhoneIDHash: "h_1", CreatedAt: now, Roles: []qrauth.Role{qrauth.RoleAdmin}}
	d1 := &qrauth.Device{ID: "d_1", UserID: u.ID, PublicKey: pub, PhoneIDHash: "h_1", CreatedAt: now}
	d2 := &qrauth.Device{ID: "d_2", UserID: u.ID, PublicKey: pub, PhoneIDHash: "h_2", CreatedAt: now.Add(time.Second)}
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(src.CreateUser(ctx, u, d1, &qrauth.AuditEvent{Time: now, Type: qrauth.AuditSignUp, UserID: u.ID}))
	must(src.CreateDevice(ctx, d2, &qrauth.AuditEvent{Time: now, Type: qrauth.AuditDeviceLinked, UserID: u.ID}))
	must(src.DeleteDevice(ctx, d2.ID)) // its phone hash stays the account's
	sess := &qrauth.Session{ID: "s_1", UserID: u.ID, TokenHash: []byte("token-hash"), DeviceID: d1.ID, IP: "192.0.2.1",
		CreatedAt: now, ExpiresAt: now.Add(time.Hour), LastSeenAt: now}
	must(src.CreateSession(ctx, sess, &qrauth.AuditEvent{Time: now, Type: qrauth.AuditSignIn, UserID: u.ID}))
	_, err = src.CreateOATHToken(ctx, u.ID, &oath.Token{ID: "t_1", Kind: oath.TOTP, Algorithm: oath.SHA1, Digits: 6, Period: 30, Secret: []byte("sealed"), CreatedAt: now})
	must(err)
	must(src.PutOfflineCredential(ctx, &offline.Credential{UserID: u.ID, DeviceID: d1.ID, Method: offline.Methods[0], SealedKey: []byte("k"), KeyID: "k1", ActivatedAt: now}))
	must(src.CreateOIDCClient(ctx, &oidc.Client{ID: "app", Name: "App", RedirectURIs: []string{"https://app.example/cb"}, CreatedAt: now}))
	must(src.CreateOIDCTokens(ctx, &oidc.Token{ID: "rt", Kind: oidc.KindRefresh, Hash: []byte("rh"), GrantID: "g", ClientID: "app", UserID: string(u.ID), CreatedAt: now, ExpiresAt: now.Add(time.Hour)}))

	dst := open(t)
	rep, err := dst.Import(ctx, src)
	if err != nil {
		t.Fatal(err)
	}
	if rep["users"] != 1 || rep["devices"] != 1 || rep["users_by_phone"] != 2 || rep["audit"] != 3 {
		t.Fatalf("import report %v", rep)
	}

	if got, err := dst.Secret(ctx, "phone_salt", func() ([]byte, error) { return []byte("new"), nil }); err != nil || string(got) != string(secret) {
		t.Fatalf("secret %q, %v", got, err)
	}
	for _, h := range []string{"h_1", "h_2"} {
		if got, err := dst.FindUserByPhoneIDHash(ctx, h); err != nil || !reflect.DeepEqual(got, mustUser(t, src, u.ID)) {
			t.Fatalf("user by %s: %+v, %v", h, got, err)
		}
	}
	if got, err := dst.FindSessionByTokenHash(ctx, []byte("token-hash")); err != nil || got.ID != sess.ID {
		t.Fatalf("session: %+v, %v", got, err)
	}
	if ok, err := dst.KnownAddress(ctx, u.ID, "192.0.2.1"); err != nil || !ok {
		t.Fatalf("known address %v, %v", ok, err)
	}
	want, _ := src.ListAudit(ctx, qrauth.AuditFilter{})
	got, err := dst.ListAudit(ctx, qrauth.AuditFilter{})
	if err != nil || !reflect.DeepEqual(got, want) {
		t.Fatalf("audit:\n got %+v\nwant %+v (%v)", got, want, err)
	}
	if a, err := dst.FindOATHAccount(ctx, u.ID); err != nil || a.Token.ID != "t_1" {
		t.Fatalf("oath %+v, %v", a, err)
	}
	if c, err := dst.FindOfflineCredential(ctx, d1.ID, offline.Methods[0]); err != nil || c.KeyID != "k1" {
		t.Fatalf("offline %+v, %v", c, err)
	}
	if tok, err := dst.FindOIDCRefreshToken(ctx, []byte("rh")); err != nil || tok.ID != "rt" {
		t.Fatalf("refresh token %+v, %v", tok, err)
	}
	if err := dst.Verify(ctx, src, 10); err != nil {
		t.Fatalf("Verify after Import: %v", err)
	}

	// The log goes on after the imported events.
	ev := &qrauth.AuditEvent{Time: now, Type: qrauth.AuditSignOut, UserID: u.ID}
	must(dst.AppendAudit(ctx, ev))
	if ev.Seq != want[len(want)-1].Seq+1 {
		t.Fatalf("next Seq %d after %d", ev.Seq, want[len(want)-1].Seq)
	}
	// Verify notices a difference: the appended event is not in the file.
	if err := dst.Verify(ctx, src, 10); err == nil {
		t.Fatal("Verify found no difference after an event was added to PostgreSQL only")
	}
	// A second import into the same database is refused and changes nothing.
	if _, err := dst.Import(ctx, src); err == nil {
		t.Fatal("import into a non-empty database succeeded")
	}
}

func mustUser(t *testing.T, st qrauth.Store, id qrauth.UserID) *qrauth.User {
	t.Helper()
	u, err := st.FindUserByID(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	return u
}
