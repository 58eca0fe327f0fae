package store_test

import (
	"bytes"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/qrauth/qrauth"
	"github.com/qrauth/qrauth/badge"
	"github.com/qrauth/qrauth/oath"
	"github.com/qrauth/qrauth/offline"
	"github.com/qrauth/qrauth/oidc"
	"github.com/qrauth/qrauth/recovery"
	"github.com/qrauth/qrauth/store"
	"github.com/qrauth/qrauth/wire"
	bolt "go.etcd.io/bbolt"
)

// fillAccount gives user name a phone, a session, and a record in every
// flow, and returns the strings that name them: the ids and the phone hash.
func fillAccount(t *testing.T, db *store.DB, name string, n byte) []string {
	t.Helper()
	ctx := t.Context()
	now := time.Now().UTC().Truncate(time.Second)
	uid := qrauth.UserID("u_" + name)
	did := qrauth.DeviceID("d_" + name)
	phone := qrauth.PhoneIDHash([]byte("salt"), name)
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(db.CreateUser(ctx, &qrauth.User{ID: uid, Name: name, PhoneIDHash: phone, CreatedAt: now},
		&qrauth.Device{ID: did, UserID: uid, Name: "phone", PublicKey: bytes.Repeat([]byte{n}, 32), PhoneIDHash: phone, CreatedAt: now},
		&qrauth.AuditEvent{Time: now, Type: qrauth.AuditSignUp, UserID: uid, DeviceID: did, IP: "192.0.2.1"}))
	sid := qrauth.SessionID("s_" + name)
	must(db.CreateSession(ctx, &qrauth.Session{ID: sid, UserID: uid, TokenHash: qrauth.HashToken("tok-" + name),
		DeviceID: did, IP: "192.0.2.1", CreatedAt: now, ExpiresAt: now.Add(time.Hour)},
		&qrauth.AuditEvent{Time: now, Type: qrauth.AuditSignIn, UserID: uid, SessionID: sid, IP: "192.0.2.1"}))
	must(db.PutOIDCSessionInfo(ctx, &oidc.SessionInfo{SessionID: string(sid), AMR: []string{"hwk"}, AuthTime: now, ExpiresAt: now.Add(time.Hour)}))

	must(db.PutOfflineCredential(ctx, &offline.Credential{UserID: uid, DeviceID: did, Method: offline.PIN,
		SealedKey: []byte("sealed"), KeyID: "k_" + name, ActivatedAt: now}))
	must(db.CreateOfflineSession(ctx, &offline.Session{ID: "o_" + name, Purpose: offline.ForAPI, UserID: uid, DeviceID: did,
		Method: offline.PIN, KeyID: "k_" + name, VerificationData: "1D6AAAAAAAAAAAcontext", State: offline.Pending,
		CreatedAt: now, ExpiresAt: now.Add(time.Minute)}))
	must(db.CreateApproval(ctx, &offline.Approval{ID: "a_" + name, UserID: uid, Text: "Pay", TextSHA256: wire.TextSHA256("Pay"),
		TokenHash: qrauth.HashToken("ap-" + name), ViewTokenHash: qrauth.HashToken("view-" + name),
		State: offline.ApprovalPending, CreatedAt: now, ExpiresAt: now.Add(time.Minute)}))
	_, err := db.PutOATHPending(ctx, uid, &oath.Token{ID: "t_" + name, Kind: oath.TOTP, Algorithm: oath.SHA1, Digits: 6,
		Period: 30, Secret: []byte("sealed"), Source: oath.SourceAccount, CreatedAt: now})
	must(err)
	must(db.SetPassword(ctx, &badge.Password{UserID: uid, Algorithm: badge.PasswordAlgorithm,
		Params: badge.PasswordParams{Time: 1, Memory: 64, Threads: 1, KeyLen: 32},
		Salt:   bytes.Repeat([]byte{n}, 16), Hash: bytes.Repeat([]byte{n}, 32), Stamp: bytes.Repeat([]byte{n}, 32), SetAt: now}, nil))
	bid := badge.IDFromBytes(bytes.Repeat([]byte{n}, 16))
	must(db.CreateBadge(ctx, &badge.Badge{ID: bid, UserID: uid, Kind: badge.Insecure, CreatedBy: "operator", CreatedAt: now}))

	must(db.CreateOIDCAuthRequest(ctx, &oidc.AuthRequest{ID: "r_" + name, ClientID: "wiki", RedirectURI: "https://wiki.example/cb",
		Scopes: []string{"openid"}, ResponseType: "code", CreatedAt: now, ExpiresAt: now.Add(time.Minute),
		UserID: string(uid), SessionID: string(sid), CodeHash: oidc.Hash("code-" + name)}))
	must(db.CreateOIDCTokens(ctx,
		&oidc.Token{ID: "at_" + name, Kind: oidc.KindAccess, GrantID: "g_" + name, ClientID: "wiki", UserID: string(uid), CreatedAt: now, ExpiresAt: now.Add(time.Hour)},
		&oidc.Token{ID: "rt_" + name, Kind: oidc.KindRefresh, Hash: oidc.Hash("refresh-" + name), GrantID: "g_" + name, ClientID: "wiki",
			UserID: string(uid), CreatedAt: now, ExpiresAt: now.Add(time.Hour)}))
	must(db.PutOIDCConsent(ctx, &oidc.Consent{UserID: string(uid), ClientID: "wiki", Scopes: []string{"profile"}}))
	_, err = db.ReplaceRecoveryCodes(ctx, uid, [][]byte{bytes.Repeat([]byte{n}, recovery.HashLen)}, now)
	must(err)
	must(db.CreateLinkCode(ctx, &recovery.LinkCode{Hash: bytes.Repeat([]byte{n + 100}, recovery.HashLen), UserID: uid,
		IssuedBy: "operator", CreatedAt: now, ExpiresAt: now.Add(time.Minute)}))
	return []string{string(uid), string(did), phone, string(sid), "o_" + name, "a_" + name, "t_" + name, string(bid),
		"r_" + name, "at_" + name, "rt_" + name, "g_" + name}
}

// walk returns every key and value of every bucket of the file at path,
// as "bucket key value" lines.
func walk(t *testing.T, path string) []string {
	t.Helper()
	b, err := bolt.Open(path, 0o600, &bolt.Options{ReadOnly: true, Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	var out []string
	err = b.View(func(tx *bolt.Tx) error {
		return tx.ForEach(func(name []byte, bk *bolt.Bucket) error {
			return bk.ForEach(func(k, v []byte) error {
				out = append(out, string(name)+" "+string(k)+" "+string(v))
				return nil
			})
		})
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// TestDeleteUserLeavesNothing: after DeleteUser no bucket of the file
// holds a key or value that names the user or anything of theirs, in any
// flow, while another user's records are all still there; the file's
// indexes agree (Check) and the number can sign up again.
func TestDeleteUserLeavesNothing(t *testing.T) {
	path := filepath.Join(t.TempDir(), "qrauth.db")
	db, err := store.Open(path, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	ada := fillAccount(t, db, "ada", 1)
	bob := fillAccount(t, db, "bob", 2)
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	before := strings.Join(walk(t, path), "\n")
	for _, s := range ada {
		if !strings.Contains(before, s) {
			t.Fatalf("%q is not in the file before the delete: the test would prove nothing", s)
		}
	}
	if db, err = store.Open(path, store.Options{}); err != nil {
		t.Fatal(err)
	}
	if err := db.DeleteUser(t.Context(), "u_ada", &qrauth.AuditEvent{Time: time.Now(), Type: qrauth.AuditUserDeleted,
		Detail: "by operator"}); err != nil {
		t.Fatal(err)
	}
	if err := db.Check(); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	lines := walk(t, path)
	for _, line := range lines {
		for _, s := range ada {
			if strings.Contains(line, s) {
				t.Errorf("after deleting u_ada the file still holds %q: %q", s, line)
			}
		}
	}
	after := strings.Join(lines, "\n")
	for _, s := range bob {
		if !strings.Contains(after, s) {
			t.Errorf("deleting u_ada took %q of u_bob with it", s)
		}
	}
	db = mustOpenPath(t, path)
	fillAccount(t, db, "ada", 1)
}

// TestDisableUserEndsOIDC: disabling an account ends, with its sessions,
// what relying sites hold through them (tokens, codes, the sessions'
// sign-in records) and keeps its consents for when it is enabled again;
// another account's are untouched.
func TestDisableUserEndsOIDC(t *testing.T) {
	db := MustOpenDB(t)
	fillAccount(t, db, "ada", 1)
	fillAccount(t, db, "bob", 2)
	ctx := t.Context()
	if _, n, err := db.DisableUser(ctx, "u_ada", qrauth.Disabled{At: time.Now(), By: "operator"}); err != nil || n != 1 {
		t.Fatalf("DisableUser: %d sessions, %v", n, err)
	}
	gone := func(what string, err error) {
		t.Helper()
		if qrauth.ErrorCode(err) != qrauth.ENOTFOUND {
			t.Errorf("%s after disable: %v, want not found", what, err)
		}
	}
	_, err := db.FindOIDCToken(ctx, "at_ada")
	gone("access token", err)
	_, err = db.FindOIDCRefreshToken(ctx, oidc.Hash("refresh-ada"))
	gone("refresh token", err)
	_, err = db.FindOIDCAuthRequest(ctx, "r_ada")
	gone("authorization request", err)
	_, err = db.FindOIDCSessionInfo(ctx, "s_ada")
	gone("session info", err)
	if _, err := db.FindOIDCConsent(ctx, "u_ada", "wiki"); err != nil {
		t.Errorf("consent after disable: %v", err)
	}
	for _, id := range []string{"at_bob", "rt_bob"} {
		if _, err := db.FindOIDCToken(ctx, id); err != nil {
			t.Errorf("bob's %s: %v", id, err)
		}
	}
	if _, err := db.FindOIDCSessionInfo(ctx, "s_bob"); err != nil {
		t.Errorf("bob's session info: %v", err)
	}
}
