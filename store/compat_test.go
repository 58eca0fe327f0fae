package store_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/qrauth/qrauth"
	"github.com/qrauth/qrauth/badge"
	"github.com/qrauth/qrauth/oath"
	"github.com/qrauth/qrauth/offline"
	"github.com/qrauth/qrauth/store"
	"github.com/qrauth/qrauth/wire"
)

// The compatibility fixture: a small database written by the store as it
// was before issue 10 (flows as plug-ins), checked in so that every later
// version must open it, find every record unchanged and keep writing to it.
//
//	testdata/compat-v1.db    the database
//	testdata/compat-v1.json  everything TestCompat reads back from it
//
// Never regenerate these files to make TestCompat pass: a failure means the
// file format changed, and databases in the field would break the same way.
// If the format changes on purpose (with a migration), add compat-v2 beside
// them. The generator is kept only to document how the file was made:
//
//	QRAUTH_WRITE_COMPAT=1 go test -run TestWriteCompat ./store/
const (
	compatDB   = "testdata/compat-v1.db"
	compatJSON = "testdata/compat-v1.json"
)

// compatT0 is the fixture's clock; every time in the file is compatT0 plus
// a whole number of minutes.
var compatT0 = time.Date(2025, 6, 2, 9, 30, 0, 0, time.UTC)

func compatAt(min int) time.Time { return compatT0.Add(time.Duration(min) * time.Minute) }

// compatKey is a deterministic, valid Ed25519 public key.
func compatKey(seed byte) ed25519.PublicKey {
	return ed25519.NewKeyFromSeed(bytes.Repeat([]byte{seed}, ed25519.SeedSize)).Public().(ed25519.PublicKey)
}

// compatBytes is n deterministic bytes standing for a sealed value, a salt
// or a hash: the store keeps them opaque.
func compatBytes(label string, n int) []byte {
	var out []byte
	for i := 0; len(out) < n; i++ {
		sum := sha256.Sum256([]byte(label + string(rune('0'+i))))
		out = append(out, sum[:]...)
	}
	return out[:n]
}

func TestWriteCompat(t *testing.T) {
	if os.Getenv("QRAUTH_WRITE_COMPAT") != "1" {
		t.Skip("set QRAUTH_WRITE_COMPAT=1 to rewrite " + compatDB + " (see compat_test.go: never to make TestCompat pass)")
	}
	path := filepath.Join(t.TempDir(), "compat.db")
	db := openPath(t, path)
	writeCompat(t, db)
	mustClose(t, db)

	// Read back from the file just written, as TestCompat will.
	db = openPath(t, path)
	got := readCompat(t, db)
	mustClose(t, db)

	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(compatDB, data, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(compatJSON, got, 0o644); err != nil {
		t.Fatal(err)
	}
}

// writeCompat fills db with at least one record of every kind the store
// keeps, through its public methods, so that every bucket and index is
// written the way the server writes it.
func writeCompat(t *testing.T, db *store.DB) {
	ctx := t.Context()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must2 := func(_ any, err error) {
		t.Helper()
		must(err)
	}
	must3 := func(_, _ any, err error) {
		t.Helper()
		must(err)
	}
	ev := func(min int, typ string, u qrauth.UserID, d qrauth.DeviceID, s qrauth.SessionID, detail string) *qrauth.AuditEvent {
		return &qrauth.AuditEvent{Time: compatAt(min), Type: typ, UserID: u, DeviceID: d, SessionID: s, IP: "192.0.2.10", Detail: detail}
	}

	// Secrets, as the server names them.
	for _, name := range []string{"phone_salt", "bind_key"} {
		must2(db.Secret(ctx, name, func() ([]byte, error) { return compatBytes(name, 32), nil }))
	}

	// Users and devices: one with roles, a second device and a non-ASCII
	// profile; one plain.
	alice := &qrauth.User{ID: "u_alice", Name: "Alice", PhoneIDHash: "phone-hash-alice", CreatedAt: compatAt(0)}
	aliceDev := &qrauth.Device{ID: "d_alice_phone", UserID: alice.ID, Name: "Pixel", PublicKey: compatKey(1),
		PhoneIDHash: alice.PhoneIDHash, CreatedAt: compatAt(0), LastSeenAt: compatAt(0)}
	must(db.CreateUser(ctx, alice, aliceDev, ev(0, qrauth.AuditSignUp, alice.ID, aliceDev.ID, "", "")))
	bob := &qrauth.User{ID: "u_bob", Name: "Bob", Email: "bob@example.com", PhoneIDHash: "phone-hash-bob", CreatedAt: compatAt(1)}
	bobDev := &qrauth.Device{ID: "d_bob_phone", UserID: bob.ID, Name: "Phone", PublicKey: compatKey(2),
		PhoneIDHash: bob.PhoneIDHash, CreatedAt: compatAt(1), LastSeenAt: compatAt(1)}
	must(db.CreateUser(ctx, bob, bobDev, ev(1, qrauth.AuditSignUp, bob.ID, bobDev.ID, "", "")))
	aliceTab := &qrauth.Device{ID: "d_alice_tablet", UserID: alice.ID, Name: "Tablet ✓", PublicKey: compatKey(3),
		PhoneIDHash: "phone-hash-alice-tablet", CreatedAt: compatAt(2), LastSeenAt: compatAt(2)}
	must(db.CreateDevice(ctx, aliceTab, ev(2, qrauth.AuditDeviceLinked, alice.ID, aliceTab.ID, "", "")))
	must2(db.UpdateProfile(ctx, alice.ID, qrauth.Profile{Name: "Alice Ærøskøbing", Email: "alice@example.com"},
		ev(3, qrauth.AuditProfile, alice.ID, "", "", "")))
	must2(db.SetRoles(ctx, alice.ID, []qrauth.Role{qrauth.RoleAdmin, qrauth.RoleSecretViewer},
		ev(4, qrauth.AuditRolesChanged, alice.ID, "", "", "admin,secret_viewer")))
	must(db.TouchDevice(ctx, aliceDev.ID, compatAt(5)))

	// Sessions: one live, one signed out again, one past its expiry.
	for i, s := range []*qrauth.Session{
		{ID: "s_alice_live", UserID: alice.ID, TokenHash: qrauth.HashToken("compat-token-alice"), DeviceID: aliceDev.ID,
			IP: "192.0.2.10", UserAgent: "Firefox", CreatedAt: compatAt(6), ExpiresAt: compatAt(6 + 60*24*365), LastSeenAt: compatAt(6)},
		{ID: "s_bob_gone", UserID: bob.ID, TokenHash: qrauth.HashToken("compat-token-bob-gone"), DeviceID: bobDev.ID,
			IP: "2001:db8::1", UserAgent: "Chrome", CreatedAt: compatAt(7), ExpiresAt: compatAt(7 + 60), LastSeenAt: compatAt(7)},
		{ID: "s_bob_old", UserID: bob.ID, TokenHash: qrauth.HashToken("compat-token-bob-old"), DeviceID: bobDev.ID,
			IP: "2001:db8::1", UserAgent: "Chrome", CreatedAt: compatAt(8), ExpiresAt: compatAt(9), LastSeenAt: compatAt(8)},
	} {
		must(db.CreateSession(ctx, s, ev(6+i, qrauth.AuditSignIn, s.UserID, s.DeviceID, s.ID, "qr")))
	}
	must(db.TouchSession(ctx, "s_alice_live", compatAt(10)))
	must(db.DeleteSession(ctx, "s_bob_gone", ev(11, qrauth.AuditSignOut, bob.ID, "", "s_bob_gone", "")))

	// OATH: Alice has an active TOTP token from a letter, used once; Bob
	// has a pending HOTP enrolment.
	aliceTOTP := &oath.Token{ID: "oath_alice", Kind: oath.TOTP, Algorithm: oath.SHA1, Digits: 6, Period: 30,
		Secret: compatBytes("oath-alice-sealed", 48), Source: oath.SourceLetter, CreatedAt: compatAt(12)}
	must2(db.CreateOATHToken(ctx, alice.ID, aliceTOTP, ev(12, oath.AuditLetterOrdered, alice.ID, "", "", aliceTOTP.ID)))
	must2(db.RecordOATHUse(ctx, alice.ID, oath.Use{TokenID: aliceTOTP.ID, Counter: 58346581, Offset: -1, At: compatAt(13)}))
	must2(db.RecordOATHFailure(ctx, alice.ID, aliceTOTP.ID, compatAt(14), 5))
	bobHOTP := &oath.Token{ID: "oath_bob", Kind: oath.HOTP, Algorithm: oath.SHA256, Digits: 8,
		Secret: compatBytes("oath-bob-sealed", 48), Source: oath.SourceAccount, CreatedAt: compatAt(15)}
	must2(db.PutOATHPending(ctx, bob.ID, bobHOTP))

	// Offline codes: both methods on Alice's phone, the PIN one with a
	// wrong code counted; a pending session, a finished one, an approval
	// scanned and one decided.
	for i, m := range []offline.Method{offline.Device, offline.PIN} {
		must(db.PutOfflineCredential(ctx, &offline.Credential{UserID: alice.ID, DeviceID: aliceDev.ID, Method: m,
			SealedKey: compatBytes("offline-key-"+string(m), 60), KeyID: "k_" + string(m), ActivatedAt: compatAt(16 + i)},
			ev(16+i, offline.AuditActivated, alice.ID, aliceDev.ID, "", string(m))))
	}
	must(db.CreateOfflineSession(ctx, &offline.Session{ID: "os_pending", Purpose: offline.ForAPI, UserID: alice.ID,
		DeviceID: aliceDev.ID, Method: offline.PIN, KeyID: "k_OFFLINE_PIN", VerificationData: "QRV1.compat-pending",
		ViewTokenHash: qrauth.HashToken("compat-view-pending"), State: offline.Pending, IP: "192.0.2.10",
		CreatedAt: compatAt(18), ExpiresAt: compatAt(60 * 24 * 365)}))
	must3(db.SettleOfflineAttempt(ctx, offline.Attempt{SessionID: "os_pending", KeyID: "k_OFFLINE_PIN", OK: false,
		At: compatAt(19), MaxFailures: 5}))
	must(db.CreateOfflineSession(ctx, &offline.Session{ID: "os_done", Purpose: offline.ForSignIn, UserID: alice.ID,
		DeviceID: aliceDev.ID, Method: offline.Device, KeyID: "k_OFFLINE_DEVICE", VerificationData: "QRV1.compat-done",
		BindHash: qrauth.HashToken("compat-bind"), State: offline.Pending,
		CreatedAt: compatAt(20), ExpiresAt: compatAt(60 * 24 * 365)}))
	must3(db.SettleOfflineAttempt(ctx, offline.Attempt{SessionID: "os_done", KeyID: "k_OFFLINE_DEVICE", OK: true,
		At: compatAt(21), MaxFailures: 5, OnSuccess: ev(21, offline.AuditVerified, alice.ID, aliceDev.ID, "", "os_done")}))
	text := "Pay 12,50 € to Ærø Café"
	for i, id := range []string{"ap_scanned", "ap_decided"} {
		must(db.CreateApproval(ctx, &offline.Approval{ID: id, UserID: alice.ID, Text: text, TextSHA256: wire.TextSHA256(text),
			TokenHash: qrauth.HashToken("compat-approval-" + id), ViewTokenHash: qrauth.HashToken("compat-approval-view-" + id),
			State: offline.ApprovalPending, IP: "192.0.2.20", CreatedAt: compatAt(22 + i), ExpiresAt: compatAt(60 * 24 * 365)}))
		must2(db.ScanApproval(ctx, id, aliceDev.ID, compatAt(24+i)))
	}
	must2(db.DecideApproval(ctx, "ap_decided", offline.ApprovalDecision{State: offline.ApprovalApproved, DeviceID: aliceDev.ID,
		Signature: "c2lnbmF0dXJlLW9mLXRoZS1kZWNpc2lvbg", At: compatAt(26)},
		ev(26, offline.AuditApprovalApproved, alice.ID, aliceDev.ID, "", "ap_decided")))

	// Badges: Alice's password, a secure badge sealed under it, an
	// insecure badge, and a revoked one.
	stamp := compatBytes("password-stamp-alice", 32)
	must(db.SetPassword(ctx, &badge.Password{UserID: alice.ID, Algorithm: badge.PasswordAlgorithm,
		Params: badge.PasswordParams{Time: 3, Memory: 64 * 1024, Threads: 4, KeyLen: 32},
		Salt:   compatBytes("password-salt-alice", 16), Hash: compatBytes("password-hash-alice", 32), Stamp: stamp, SetAt: compatAt(27)},
		nil, ev(27, badge.AuditPasswordSet, alice.ID, "", "", "")))
	for i, b := range []*badge.Badge{
		{ID: badge.IDFromBytes(compatBytes("badge-secure", 16)), UserID: alice.ID, Kind: badge.Secure, CreatedBy: "self",
			CreatedAt: compatAt(28), ExpiresAt: compatAt(60 * 24 * 365), Credential: badge.CredentialFingerprint(stamp)},
		{ID: badge.IDFromBytes(compatBytes("badge-insecure", 16)), UserID: alice.ID, Kind: badge.Insecure,
			CreatedBy: "operator", CreatedAt: compatAt(29)},
		{ID: badge.IDFromBytes(compatBytes("badge-revoked", 16)), UserID: bob.ID, Kind: badge.Insecure,
			CreatedBy: string(alice.ID), CreatedAt: compatAt(30)},
	} {
		must(db.CreateBadge(ctx, b, ev(28+i, badge.AuditIssued, b.UserID, "", "", string(b.ID))))
	}
	must2(db.RevokeBadge(ctx, badge.IDFromBytes(compatBytes("badge-revoked", 16)), compatAt(31), string(alice.ID),
		ev(31, badge.AuditRevoked, bob.ID, "", "", "")))
}

// compatRead is everything the fixture holds, as the store's methods
// return it.
type compatRead struct {
	Secrets            map[string][]byte
	Users              []*qrauth.User
	UserByPhone        map[string]qrauth.UserID
	Devices            map[qrauth.UserID][]*qrauth.Device
	DeviceByID         map[qrauth.DeviceID]*qrauth.Device
	Sessions           map[qrauth.UserID][]*qrauth.Session
	SessionByToken     map[string]qrauth.SessionID
	KnownAddresses     map[string]bool
	Audit              []*qrauth.AuditEvent
	AuditOfBob         []uint64
	OATH               map[qrauth.UserID]*oath.Account
	OfflineCredentials map[qrauth.UserID][]*offline.Credential
	OfflineSessions    map[string]*offline.Session
	Approvals          map[string]*offline.Approval
	ApprovalByToken    map[string]string
	Passwords          map[qrauth.UserID]*badge.Password
	Badges             map[qrauth.UserID][]*badge.Badge
}

// readCompat reads every record of the fixture back through the store's
// lookups (each index too) and returns them as indented JSON.
func readCompat(t *testing.T, db *store.DB) []byte {
	ctx := context.Background()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	users, err := db.ListUsers(ctx, "", 100)
	must(err)
	r := compatRead{
		Secrets: map[string][]byte{}, Users: users, UserByPhone: map[string]qrauth.UserID{},
		Devices: map[qrauth.UserID][]*qrauth.Device{}, DeviceByID: map[qrauth.DeviceID]*qrauth.Device{},
		Sessions: map[qrauth.UserID][]*qrauth.Session{}, SessionByToken: map[string]qrauth.SessionID{},
		KnownAddresses: map[string]bool{}, OATH: map[qrauth.UserID]*oath.Account{},
		OfflineCredentials: map[qrauth.UserID][]*offline.Credential{}, OfflineSessions: map[string]*offline.Session{},
		Approvals: map[string]*offline.Approval{}, ApprovalByToken: map[string]string{},
		Passwords: map[qrauth.UserID]*badge.Password{}, Badges: map[qrauth.UserID][]*badge.Badge{},
	}
	for _, name := range []string{"phone_salt", "bind_key"} {
		v, err := db.Secret(ctx, name, func() ([]byte, error) {
			t.Fatalf("secret %s is missing", name)
			return nil, nil
		})
		must(err)
		r.Secrets[name] = v
	}
	for _, h := range []string{"phone-hash-alice", "phone-hash-alice-tablet", "phone-hash-bob"} {
		u, err := db.FindUserByPhoneIDHash(ctx, h)
		must(err)
		r.UserByPhone[h] = u.ID
	}
	for _, u := range users {
		byID, err := db.FindUserByID(ctx, u.ID)
		must(err)
		if a, b := mustJSON(t, byID), mustJSON(t, u); !bytes.Equal(a, b) {
			t.Errorf("FindUserByID(%s) = %s, ListUsers has %s", u.ID, a, b)
		}
		ds, err := db.FindDevicesByUser(ctx, u.ID)
		must(err)
		r.Devices[u.ID] = ds
		for _, d := range ds {
			r.DeviceByID[d.ID], err = db.FindDeviceByID(ctx, d.ID)
			must(err)
		}
		ss, err := db.FindSessionsByUser(ctx, u.ID)
		must(err)
		r.Sessions[u.ID] = ss
		for _, ip := range []string{"192.0.2.10", "2001:db8::1", "198.51.100.1"} {
			r.KnownAddresses[string(u.ID)+" "+ip], err = db.KnownAddress(ctx, u.ID, ip)
			must(err)
		}
		a, err := db.FindOATHAccount(ctx, u.ID)
		if qrauth.ErrorCode(err) != qrauth.ENOTFOUND {
			must(err)
			r.OATH[u.ID] = a
		}
		cs, err := db.FindOfflineCredentialsByUser(ctx, u.ID)
		must(err)
		r.OfflineCredentials[u.ID] = cs
		for _, c := range cs {
			one, err := db.FindOfflineCredential(ctx, c.DeviceID, c.Method)
			must(err)
			if a, b := mustJSON(t, one), mustJSON(t, c); !bytes.Equal(a, b) {
				t.Errorf("FindOfflineCredential(%s, %s) = %s, by user %s", c.DeviceID, c.Method, a, b)
			}
		}
		p, err := db.FindPassword(ctx, u.ID)
		if qrauth.ErrorCode(err) != qrauth.ENOTFOUND {
			must(err)
			r.Passwords[u.ID] = p
		}
		bs, err := db.FindBadgesByUser(ctx, u.ID)
		must(err)
		r.Badges[u.ID] = bs
		for _, b := range bs {
			one, err := db.FindBadgeByID(ctx, b.ID)
			must(err)
			if a, b := mustJSON(t, one), mustJSON(t, b); !bytes.Equal(a, b) {
				t.Errorf("FindBadgeByID = %s, by user %s", a, b)
			}
		}
	}
	for _, tok := range []string{"compat-token-alice", "compat-token-bob-gone", "compat-token-bob-old"} {
		s, err := db.FindSessionByTokenHash(ctx, qrauth.HashToken(tok))
		if qrauth.ErrorCode(err) == qrauth.ENOTFOUND {
			r.SessionByToken[tok] = "(not found)"
			continue
		}
		must(err)
		r.SessionByToken[tok] = s.ID
	}
	r.Audit, err = db.ListAudit(ctx, qrauth.AuditFilter{})
	must(err)
	bobs, err := db.ListAudit(ctx, qrauth.AuditFilter{UserID: "u_bob"})
	must(err)
	for _, e := range bobs {
		r.AuditOfBob = append(r.AuditOfBob, e.Seq)
	}
	for _, id := range []string{"os_pending", "os_done"} {
		r.OfflineSessions[id], err = db.FindOfflineSession(ctx, id)
		must(err)
	}
	for _, id := range []string{"ap_scanned", "ap_decided"} {
		r.Approvals[id], err = db.FindApproval(ctx, id)
		must(err)
		a, err := db.FindApprovalByTokenHash(ctx, qrauth.HashToken("compat-approval-"+id))
		must(err)
		r.ApprovalByToken[id] = a.ID
	}
	out, err := json.MarshalIndent(r, "", "\t")
	must(err)
	return append(out, '\n')
}

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestCompat opens a copy of the checked-in database: it must pass the
// structure and index check, read back exactly as it did when written, and
// take new writes.
func TestCompat(t *testing.T) {
	data, err := os.ReadFile(compatDB)
	if err != nil {
		t.Fatal(err)
	}
	want, err := os.ReadFile(compatJSON)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "qrauth.db")
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := store.VerifyFile(path); err != nil {
		t.Fatal(err)
	}
	db := mustOpenPath(t, path) // checks again on cleanup, after the writes
	if errs := db.Problems(); len(errs) > 0 {
		t.Fatalf("Problems() = %v", errs)
	}
	if errs := db.WeakKeys(); len(errs) > 0 {
		t.Fatalf("WeakKeys() = %v", errs)
	}

	if got := readCompat(t, db); !bytes.Equal(got, want) {
		diffPath := filepath.Join(t.TempDir(), "got.json")
		os.WriteFile(diffPath, got, 0o600)
		t.Fatalf("the fixture reads back differently from %s (got: %s)", compatJSON, diffPath)
	}

	// Writes: a sign-in adds a session and an audit event whose seq
	// continues the file's, and the old records stay where they were.
	ctx := t.Context()
	s := &qrauth.Session{ID: "s_new", UserID: "u_bob", TokenHash: qrauth.HashToken("new-token"), DeviceID: "d_bob_phone",
		IP: "198.51.100.1", CreatedAt: compatAt(100), ExpiresAt: compatAt(200), LastSeenAt: compatAt(100)}
	e := &qrauth.AuditEvent{Time: compatAt(100), Type: qrauth.AuditSignIn, UserID: "u_bob", SessionID: s.ID}
	if err := db.CreateSession(ctx, s, e); err != nil {
		t.Fatal(err)
	}
	evs, err := db.ListAudit(ctx, qrauth.AuditFilter{})
	if err != nil {
		t.Fatal(err)
	}
	if last := evs[len(evs)-2]; e.Seq != last.Seq+1 {
		t.Fatalf("new audit seq %d, last in the file %d", e.Seq, last.Seq)
	}
	got, err := db.FindSessionByTokenHash(ctx, qrauth.HashToken("new-token"))
	if err != nil || got.ID != s.ID {
		t.Fatalf("FindSessionByTokenHash = %v, %v", got, err)
	}
	if ok, err := db.KnownAddress(ctx, "u_bob", "198.51.100.1"); err != nil || !ok {
		t.Fatalf("KnownAddress after sign-in = %v, %v", ok, err)
	}
	if n, err := db.DeleteExpiredSessions(ctx, compatAt(150)); err != nil || n != 1 {
		t.Fatalf("DeleteExpiredSessions = %d, %v; want the file's expired session", n, err)
	}
	if _, err := db.RecordOATHUse(ctx, "u_alice", oath.Use{TokenID: "oath_alice", Counter: 58346600, At: compatAt(101)}); err != nil {
		t.Fatal(err)
	}
	if _, err := db.DecideApproval(ctx, "ap_scanned", offline.ApprovalDecision{State: offline.ApprovalDenied, DeviceID: "d_alice_phone",
		Signature: "ZGVuaWVk", At: compatAt(102)}); err != nil {
		t.Fatal(err)
	}
	// Users written before accounts could be disabled read as enabled,
	// and one with records in every flow deletes cleanly.
	for _, id := range []qrauth.UserID{"u_alice", "u_bob"} {
		if u, err := db.FindUserByID(ctx, id); err != nil || u.CheckEnabled() != nil {
			t.Fatalf("%s from the old file: %+v, %v", id, u, err)
		}
	}
	if err := db.DeleteUser(ctx, "u_alice"); err != nil {
		t.Fatal(err)
	}
	if err := db.Check(); err != nil {
		t.Fatal(err)
	}
}
