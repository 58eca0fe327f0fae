// Package storetest is the conformance suite for qrauth.Store (Run) and
// oidc.Store (RunOIDC, in oidc.go). Every
// implementation runs it from its own tests:
//
//	func TestStore(t *testing.T) {
//		storetest.Run(t, func(t *testing.T) qrauth.Store { return MustOpenDB(t) })
//	}
//
// The suite uses nothing but the Store interface, so it tests the contract
// written in the root package and nothing of how a store keeps its data.
// Where that contract leaves a choice open, the case that pins the choice
// down says so.
package storetest

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/qrauth/qrauth"
)

// Run runs the suite. open must return a new, empty store on every call
// and close it when t ends; it is called once per case.
func Run(t *testing.T, open func(t *testing.T) qrauth.Store) {
	for _, g := range []struct {
		name string
		fn   func(*testing.T, opener)
	}{
		{"Secret", testSecret},
		{"CreateUser", testCreateUser},
		{"FindUserByID", testFindUserByID},
		{"FindUserByPhoneIDHash", testFindUserByPhoneIDHash},
		{"UpdateProfile", testUpdateProfile},
		{"CreateDevice", testCreateDevice},
		{"FindDeviceByID", testFindDeviceByID},
		{"FindDevicesByUser", testFindDevicesByUser},
		{"TouchDevice", testTouchDevice},
		{"CreateSession", testCreateSession},
		{"FindSessionByID", testFindSessionByID},
		{"FindSessionByTokenHash", testFindSessionByTokenHash},
		{"FindSessionsByUser", testFindSessionsByUser},
		{"TouchSession", testTouchSession},
		{"DeleteSession", testDeleteSession},
		{"DeleteExpiredSessions", testDeleteExpiredSessions},
		{"KnownAddress", testKnownAddress},
		{"AppendAudit", testAppendAudit},
		{"ListAudit", testListAudit},
		{"Concurrent", testConcurrent},
		{"SetRoles", testSetRoles},
		{"ListUsers", testListUsers},
		{"DeleteDevice", testDeleteDevice},
		{"DisableUser", testDisableUser},
		{"EnableUser", testEnableUser},
		{"DeleteUser", testDeleteUser},
		{"RemoveDevice", testRemoveDevice},
	} {
		t.Run(g.name, func(t *testing.T) { g.fn(t, open) })
	}
}

type opener = func(t *testing.T) qrauth.Store

// t0 is whole seconds in UTC so that stores which keep coarser times, or
// times in another zone, still compare equal.
var t0 = time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)

func phoneHash(name string) string { return qrauth.PhoneIDHash([]byte("storetest"), name) }

func newUser(name string) *qrauth.User {
	return &qrauth.User{
		ID:          qrauth.UserID("u_" + name),
		Name:        name,
		Email:       name + "@example.com",
		PhoneIDHash: phoneHash(name),
		CreatedAt:   t0,
	}
}

// newDevice returns a device of user uid whose phone hash is phoneHash(name).
func newDevice(uid qrauth.UserID, name string, at time.Time) *qrauth.Device {
	pub := sha256.Sum256([]byte(name))
	return &qrauth.Device{
		ID:          qrauth.DeviceID("d_" + name),
		UserID:      uid,
		Name:        name + "'s phone",
		PublicKey:   pub[:],
		PhoneIDHash: phoneHash(name),
		CreatedAt:   at,
	}
}

// newSession returns session n of user uid, created n minutes after t0 and
// valid for a day.
func newSession(uid qrauth.UserID, did qrauth.DeviceID, n int) *qrauth.Session {
	at := t0.Add(time.Duration(n) * time.Minute)
	return &qrauth.Session{
		ID:         qrauth.SessionID(fmt.Sprintf("s_%s_%d", uid, n)),
		UserID:     uid,
		TokenHash:  qrauth.HashToken(fmt.Sprintf("token-%s-%d", uid, n)),
		DeviceID:   did,
		IP:         fmt.Sprintf("192.0.2.%d", n%256),
		UserAgent:  "storetest",
		CreatedAt:  at,
		ExpiresAt:  at.Add(24 * time.Hour),
		LastSeenAt: at,
	}
}

func newEvent(typ string, uid qrauth.UserID) *qrauth.AuditEvent {
	return &qrauth.AuditEvent{Time: t0, Type: typ, UserID: uid, IP: "192.0.2.1", Detail: typ + " of " + string(uid)}
}

// mustCreateUser creates user name with its first device, named name too.
func mustCreateUser(t *testing.T, s qrauth.Store, name string) (*qrauth.User, *qrauth.Device) {
	t.Helper()
	u := newUser(name)
	d := newDevice(u.ID, name, t0)
	if err := s.CreateUser(t.Context(), u, d); err != nil {
		t.Fatalf("CreateUser(%s): %v", name, err)
	}
	return u, d
}

func mustCreateSession(t *testing.T, s qrauth.Store, sess *qrauth.Session) {
	t.Helper()
	if err := s.CreateSession(t.Context(), sess); err != nil {
		t.Fatalf("CreateSession(%s): %v", sess.ID, err)
	}
}

func noError(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// wantError checks that err is a *qrauth.Error with code and, unless
// reason is "", reason.
func wantError(t *testing.T, err error, code, reason string) {
	t.Helper()
	var e *qrauth.Error
	if !errors.As(err, &e) {
		t.Fatalf("err = %v (%T), want *qrauth.Error %s/%s", err, err, code, reason)
	}
	if e.Code != code || (reason != "" && e.Reason != reason) {
		t.Fatalf("err = %v, want %s/%s", err, code, reason)
	}
}

// same compares records field by field, times by instant only.
func same[T any](t *testing.T, what string, got, want *T) {
	t.Helper()
	if got == nil || want == nil {
		if got != want {
			t.Fatalf("%s = %+v, want %+v", what, got, want)
		}
		return
	}
	g, w := normalize(*got), normalize(*want)
	if !reflect.DeepEqual(g, w) {
		t.Fatalf("%s:\n got %+v\nwant %+v", what, g, w)
	}
}

func normalize[T any](v T) T {
	rv := reflect.ValueOf(&v).Elem()
	for i := range rv.NumField() {
		if tm, ok := rv.Field(i).Interface().(time.Time); ok {
			rv.Field(i).Set(reflect.ValueOf(tm.UTC().Round(0)))
		}
	}
	return v
}

func findUser(t *testing.T, s qrauth.Store, id qrauth.UserID) *qrauth.User {
	t.Helper()
	u, err := s.FindUserByID(t.Context(), id)
	noError(t, err)
	return u
}

func findDevice(t *testing.T, s qrauth.Store, id qrauth.DeviceID) *qrauth.Device {
	t.Helper()
	d, err := s.FindDeviceByID(t.Context(), id)
	noError(t, err)
	return d
}

func findSession(t *testing.T, s qrauth.Store, id qrauth.SessionID) *qrauth.Session {
	t.Helper()
	sess, err := s.FindSessionByID(t.Context(), id)
	noError(t, err)
	return sess
}

func sessionIDs(t *testing.T, s qrauth.Store, uid qrauth.UserID) []qrauth.SessionID {
	t.Helper()
	ss, err := s.FindSessionsByUser(t.Context(), uid)
	noError(t, err)
	ids := []qrauth.SessionID{}
	for _, s := range ss {
		ids = append(ids, s.ID)
	}
	return ids
}

func deviceIDs(t *testing.T, s qrauth.Store, uid qrauth.UserID) []qrauth.DeviceID {
	t.Helper()
	ds, err := s.FindDevicesByUser(t.Context(), uid)
	noError(t, err)
	ids := []qrauth.DeviceID{}
	for _, d := range ds {
		ids = append(ids, d.ID)
	}
	return ids
}

func listAudit(t *testing.T, s qrauth.Store, f qrauth.AuditFilter) []*qrauth.AuditEvent {
	t.Helper()
	evs, err := s.ListAudit(t.Context(), f)
	noError(t, err)
	return evs
}

func allAudit(t *testing.T, s qrauth.Store) []*qrauth.AuditEvent {
	t.Helper()
	return listAudit(t, s, qrauth.AuditFilter{Limit: 1000})
}

func seqs(evs []*qrauth.AuditEvent) []uint64 {
	s := []uint64{}
	for _, e := range evs {
		s = append(s, e.Seq)
	}
	return s
}

// wantAudit checks that the log holds exactly want, which the store has
// given Seqs.
func wantAudit(t *testing.T, s qrauth.Store, want ...*qrauth.AuditEvent) {
	t.Helper()
	got := allAudit(t, s)
	if len(got) != len(want) {
		t.Fatalf("audit log has %d events, want %d: %+v", len(got), len(want), got)
	}
	for i := range got {
		if want[i].Seq == 0 {
			t.Fatalf("event %d (%s) has Seq 0 after a successful call", i, want[i].Type)
		}
		same(t, fmt.Sprintf("event %d", i), got[i], want[i])
	}
}

func wantUserNotFound(t *testing.T, s qrauth.Store, id qrauth.UserID) {
	t.Helper()
	_, err := s.FindUserByID(t.Context(), id)
	wantError(t, err, qrauth.ENOTFOUND, "user_not_found")
}

func wantPhoneNotFound(t *testing.T, s qrauth.Store, phone string) {
	t.Helper()
	_, err := s.FindUserByPhoneIDHash(t.Context(), phone)
	wantError(t, err, qrauth.ENOTFOUND, "user_not_found")
}

func wantDeviceNotFound(t *testing.T, s qrauth.Store, id qrauth.DeviceID) {
	t.Helper()
	_, err := s.FindDeviceByID(t.Context(), id)
	wantError(t, err, qrauth.ENOTFOUND, "device_not_found")
}

func wantSessionNotFound(t *testing.T, s qrauth.Store, sess *qrauth.Session) {
	t.Helper()
	_, err := s.FindSessionByID(t.Context(), sess.ID)
	wantError(t, err, qrauth.ENOTFOUND, "session_not_found")
	_, err = s.FindSessionByTokenHash(t.Context(), sess.TokenHash)
	wantError(t, err, qrauth.ENOTFOUND, "session_not_found")
}

func wantKnown(t *testing.T, s qrauth.Store, uid qrauth.UserID, ip string, want bool) {
	t.Helper()
	ok, err := s.KnownAddress(t.Context(), uid, ip)
	noError(t, err)
	if ok != want {
		t.Fatalf("KnownAddress(%s, %s) = %v, want %v", uid, ip, ok, want)
	}
}

func wantSeqZero(t *testing.T, evs ...*qrauth.AuditEvent) {
	t.Helper()
	for _, e := range evs {
		if e.Seq != 0 {
			t.Fatalf("failed call set Seq %d on the caller's event", e.Seq)
		}
	}
}

func testSecret(t *testing.T, open opener) {
	value := func(v string) func() ([]byte, error) {
		return func() ([]byte, error) { return []byte(v), nil }
	}
	mustSecret := func(t *testing.T, s qrauth.Store, name string, create func() ([]byte, error)) []byte {
		t.Helper()
		v, err := s.Secret(t.Context(), name, create)
		noError(t, err)
		return v
	}
	noCreate := func(t *testing.T) func() ([]byte, error) {
		return func() ([]byte, error) {
			t.Error("create called for an existing secret")
			return []byte("wrong"), nil
		}
	}

	t.Run("Create", func(t *testing.T) {
		s := open(t)
		if v := mustSecret(t, s, "salt", value("first")); string(v) != "first" {
			t.Fatalf("Secret = %q, want %q", v, "first")
		}
	})
	t.Run("Existing", func(t *testing.T) {
		s := open(t)
		mustSecret(t, s, "salt", value("first"))
		if v := mustSecret(t, s, "salt", noCreate(t)); string(v) != "first" {
			t.Fatalf("Secret = %q, want %q", v, "first")
		}
	})
	t.Run("Names", func(t *testing.T) {
		s := open(t)
		mustSecret(t, s, "a", value("A"))
		mustSecret(t, s, "b", value("B"))
		if v := mustSecret(t, s, "a", noCreate(t)); string(v) != "A" {
			t.Fatalf("Secret(a) = %q, want A", v)
		}
		if v := mustSecret(t, s, "b", noCreate(t)); string(v) != "B" {
			t.Fatalf("Secret(b) = %q, want B", v)
		}
	})
	t.Run("ErrCreate", func(t *testing.T) {
		s := open(t)
		boom := errors.New("no entropy")
		_, err := s.Secret(t.Context(), "salt", func() ([]byte, error) { return nil, boom })
		if err == nil {
			t.Fatal("Secret returned nil error when create failed")
		}
		// Nothing was stored, so the next caller creates it afresh.
		if v := mustSecret(t, s, "salt", value("second")); string(v) != "second" {
			t.Fatalf("Secret = %q, want %q", v, "second")
		}
	})
	t.Run("Copy", func(t *testing.T) {
		s := open(t)
		v := mustSecret(t, s, "salt", value("first"))
		v[0] = 'X'
		if v := mustSecret(t, s, "salt", noCreate(t)); string(v) != "first" {
			t.Fatalf("Secret = %q after changing a returned value, want %q", v, "first")
		}
	})
	t.Run("Concurrent", func(t *testing.T) {
		s := open(t)
		const n = 20
		got := make([][]byte, n)
		var wg sync.WaitGroup
		for i := range n {
			wg.Go(func() {
				v, err := s.Secret(t.Context(), "salt", value(fmt.Sprint("value-", i)))
				if err != nil {
					t.Error(err)
				}
				got[i] = v
			})
		}
		wg.Wait()
		for i := range n {
			if !bytes.Equal(got[i], got[0]) {
				t.Fatalf("caller %d got %q, caller 0 got %q", i, got[i], got[0])
			}
		}
		if v := mustSecret(t, s, "salt", noCreate(t)); !bytes.Equal(v, got[0]) {
			t.Fatalf("Secret = %q afterwards, callers got %q", v, got[0])
		}
	})
}

func testCreateUser(t *testing.T, open opener) {
	t.Run("OK", func(t *testing.T) {
		s := open(t)
		u := newUser("alice")
		d := newDevice(u.ID, "alice", t0)
		e := newEvent(qrauth.AuditSignUp, u.ID)
		noError(t, s.CreateUser(t.Context(), u, d, e))

		same(t, "user", findUser(t, s, u.ID), u)
		same(t, "device", findDevice(t, s, d.ID), d)
		byPhone, err := s.FindUserByPhoneIDHash(t.Context(), d.PhoneIDHash)
		noError(t, err)
		same(t, "user by phone", byPhone, u)
		if ids := deviceIDs(t, s, u.ID); !reflect.DeepEqual(ids, []qrauth.DeviceID{d.ID}) {
			t.Fatalf("devices = %v, want [%s]", ids, d.ID)
		}
		wantAudit(t, s, e)
	})
	t.Run("EmptyProfile", func(t *testing.T) {
		s := open(t)
		u := &qrauth.User{ID: "u_anon", PhoneIDHash: phoneHash("anon"), CreatedAt: t0}
		noError(t, s.CreateUser(t.Context(), u, newDevice(u.ID, "anon", t0)))
		same(t, "user", findUser(t, s, u.ID), u)
	})
	t.Run("ErrPhoneTaken", func(t *testing.T) {
		s := open(t)
		alice, _ := mustCreateUser(t, s, "alice")
		u := newUser("bob")
		u.PhoneIDHash = alice.PhoneIDHash
		d := newDevice(u.ID, "bob", t0)
		d.PhoneIDHash = alice.PhoneIDHash
		e := newEvent(qrauth.AuditSignUp, u.ID)
		wantError(t, s.CreateUser(t.Context(), u, d, e), qrauth.ECONFLICT, "phone_taken")

		wantUserNotFound(t, s, u.ID)
		wantDeviceNotFound(t, s, d.ID)
		if got, err := s.FindUserByPhoneIDHash(t.Context(), alice.PhoneIDHash); err != nil || got.ID != alice.ID {
			t.Fatalf("phone now belongs to %v (err %v), want %s", got, err, alice.ID)
		}
		wantAudit(t, s)
		wantSeqZero(t, e)
	})
	t.Run("ErrDeviceExists", func(t *testing.T) {
		s := open(t)
		_, ad := mustCreateUser(t, s, "alice")
		u := newUser("bob")
		d := newDevice(u.ID, "bob", t0)
		d.ID = ad.ID
		e := newEvent(qrauth.AuditSignUp, u.ID)
		wantError(t, s.CreateUser(t.Context(), u, d, e), qrauth.ECONFLICT, "device_exists")

		wantUserNotFound(t, s, u.ID)
		wantPhoneNotFound(t, s, d.PhoneIDHash)
		same(t, "existing device", findDevice(t, s, ad.ID), ad)
		wantAudit(t, s)
		wantSeqZero(t, e)
	})
	t.Run("ErrUserExists", func(t *testing.T) {
		s := open(t)
		alice, _ := mustCreateUser(t, s, "alice")
		u := newUser("alice2")
		u.ID = alice.ID
		d := newDevice(u.ID, "alice2", t0)
		e := newEvent(qrauth.AuditSignUp, u.ID)
		wantError(t, s.CreateUser(t.Context(), u, d, e), qrauth.ECONFLICT, "user_exists")

		same(t, "existing user", findUser(t, s, alice.ID), alice)
		wantDeviceNotFound(t, s, d.ID)
		wantPhoneNotFound(t, s, d.PhoneIDHash)
		wantAudit(t, s)
		wantSeqZero(t, e)
	})
	t.Run("ErrInvalid", func(t *testing.T) {
		for _, tt := range []struct {
			name string
			edit func(u *qrauth.User, d *qrauth.Device) (*qrauth.User, *qrauth.Device)
		}{
			{"NilUser", func(u *qrauth.User, d *qrauth.Device) (*qrauth.User, *qrauth.Device) { return nil, d }},
			{"NilDevice", func(u *qrauth.User, d *qrauth.Device) (*qrauth.User, *qrauth.Device) { return u, nil }},
			{"EmptyUserID", func(u *qrauth.User, d *qrauth.Device) (*qrauth.User, *qrauth.Device) {
				u.ID, d.UserID = "", ""
				return u, d
			}},
			{"EmptyDeviceID", func(u *qrauth.User, d *qrauth.Device) (*qrauth.User, *qrauth.Device) {
				d.ID = ""
				return u, d
			}},
			{"EmptyPhoneIDHash", func(u *qrauth.User, d *qrauth.Device) (*qrauth.User, *qrauth.Device) {
				u.PhoneIDHash, d.PhoneIDHash = "", ""
				return u, d
			}},
			// Not written in the Store contract: a device of another user
			// would be listed under one user and owned by another.
			{"DeviceOfOtherUser", func(u *qrauth.User, d *qrauth.Device) (*qrauth.User, *qrauth.Device) {
				d.UserID = "u_other"
				return u, d
			}},
		} {
			t.Run(tt.name, func(t *testing.T) {
				s := open(t)
				u := newUser("alice")
				u, d := tt.edit(u, newDevice(u.ID, "alice", t0))
				e := newEvent(qrauth.AuditSignUp, "u_alice")
				wantError(t, s.CreateUser(t.Context(), u, d, e), qrauth.EINVALID, "")
				wantUserNotFound(t, s, "u_alice")
				wantDeviceNotFound(t, s, "d_alice")
				wantPhoneNotFound(t, s, phoneHash("alice"))
				wantAudit(t, s)
				wantSeqZero(t, e)
			})
		}
	})
	t.Run("CopiesInput", func(t *testing.T) {
		s := open(t)
		u, d := mustCreateUser(t, s, "alice")
		want, wantDev := *u, *d
		wantDev.PublicKey = bytes.Clone(d.PublicKey)
		u.Name = "changed"
		d.Name = "changed"
		d.PublicKey[0] ^= 0xff
		same(t, "user", findUser(t, s, u.ID), &want)
		same(t, "device", findDevice(t, s, d.ID), &wantDev)
	})
}

func testFindUserByID(t *testing.T, open opener) {
	t.Run("OK", func(t *testing.T) {
		s := open(t)
		u, _ := mustCreateUser(t, s, "alice")
		mustCreateUser(t, s, "bob")
		same(t, "user", findUser(t, s, u.ID), u)
	})
	t.Run("ErrNotFound", func(t *testing.T) {
		s := open(t)
		mustCreateUser(t, s, "alice")
		wantUserNotFound(t, s, "u_nobody")
	})
	t.Run("Copy", func(t *testing.T) {
		s := open(t)
		u, _ := mustCreateUser(t, s, "alice")
		findUser(t, s, u.ID).Name = "changed"
		same(t, "user", findUser(t, s, u.ID), u)
	})
}

func testFindUserByPhoneIDHash(t *testing.T, open opener) {
	t.Run("OK", func(t *testing.T) {
		s := open(t)
		u, d := mustCreateUser(t, s, "alice")
		mustCreateUser(t, s, "bob")
		got, err := s.FindUserByPhoneIDHash(t.Context(), d.PhoneIDHash)
		noError(t, err)
		same(t, "user", got, u)
	})
	t.Run("AnyDevice", func(t *testing.T) {
		s := open(t)
		u, _ := mustCreateUser(t, s, "alice")
		d := newDevice(u.ID, "alice-tablet", t0.Add(time.Hour))
		noError(t, s.CreateDevice(t.Context(), d))
		got, err := s.FindUserByPhoneIDHash(t.Context(), d.PhoneIDHash)
		noError(t, err)
		same(t, "user", got, u)
	})
	t.Run("ErrNotFound", func(t *testing.T) {
		s := open(t)
		mustCreateUser(t, s, "alice")
		wantPhoneNotFound(t, s, phoneHash("nobody"))
	})
}

func testUpdateProfile(t *testing.T, open opener) {
	t.Run("OK", func(t *testing.T) {
		s := open(t)
		u, _ := mustCreateUser(t, s, "alice")
		e := newEvent("profile", u.ID)
		got, err := s.UpdateProfile(t.Context(), u.ID, qrauth.Profile{Name: "Alice A.", Email: "a@example.org"}, e)
		noError(t, err)
		want := *u
		want.Name, want.Email = "Alice A.", "a@example.org"
		same(t, "returned user", got, &want)
		same(t, "stored user", findUser(t, s, u.ID), &want)
		wantAudit(t, s, e)
	})
	t.Run("Clear", func(t *testing.T) {
		s := open(t)
		u, _ := mustCreateUser(t, s, "alice")
		_, err := s.UpdateProfile(t.Context(), u.ID, qrauth.Profile{})
		noError(t, err)
		want := *u
		want.Name, want.Email = "", ""
		same(t, "stored user", findUser(t, s, u.ID), &want)
	})
	t.Run("ErrNotFound", func(t *testing.T) {
		s := open(t)
		mustCreateUser(t, s, "alice")
		e := newEvent("profile", "u_nobody")
		_, err := s.UpdateProfile(t.Context(), "u_nobody", qrauth.Profile{Name: "x"}, e)
		wantError(t, err, qrauth.ENOTFOUND, "user_not_found")
		wantUserNotFound(t, s, "u_nobody")
		wantAudit(t, s)
		wantSeqZero(t, e)
	})
	t.Run("Copy", func(t *testing.T) {
		s := open(t)
		u, _ := mustCreateUser(t, s, "alice")
		got, err := s.UpdateProfile(t.Context(), u.ID, qrauth.Profile{Name: "Alice"})
		noError(t, err)
		got.Name = "changed"
		if got := findUser(t, s, u.ID); got.Name != "Alice" {
			t.Fatalf("Name = %q after changing the returned user, want Alice", got.Name)
		}
	})
}

func testCreateDevice(t *testing.T, open opener) {
	t.Run("OK", func(t *testing.T) {
		s := open(t)
		u, first := mustCreateUser(t, s, "alice")
		d := newDevice(u.ID, "alice-tablet", t0.Add(time.Hour))
		e := newEvent(qrauth.AuditDeviceLinked, u.ID)
		noError(t, s.CreateDevice(t.Context(), d, e))

		same(t, "device", findDevice(t, s, d.ID), d)
		if ids := deviceIDs(t, s, u.ID); !reflect.DeepEqual(ids, []qrauth.DeviceID{first.ID, d.ID}) {
			t.Fatalf("devices = %v, want [%s %s]", ids, first.ID, d.ID)
		}
		got, err := s.FindUserByPhoneIDHash(t.Context(), d.PhoneIDHash)
		noError(t, err)
		same(t, "user by new phone", got, u)
		wantAudit(t, s, e)
	})
	t.Run("SamePhone", func(t *testing.T) {
		s := open(t)
		u, first := mustCreateUser(t, s, "alice")
		d := newDevice(u.ID, "alice-reinstalled", t0.Add(time.Hour))
		d.PhoneIDHash = first.PhoneIDHash
		noError(t, s.CreateDevice(t.Context(), d))
		same(t, "device", findDevice(t, s, d.ID), d)
		got, err := s.FindUserByPhoneIDHash(t.Context(), d.PhoneIDHash)
		noError(t, err)
		same(t, "user by phone", got, u)
	})
	t.Run("ErrUserNotFound", func(t *testing.T) {
		s := open(t)
		mustCreateUser(t, s, "alice")
		d := newDevice("u_nobody", "nobody", t0)
		e := newEvent(qrauth.AuditDeviceLinked, "u_nobody")
		wantError(t, s.CreateDevice(t.Context(), d, e), qrauth.ENOTFOUND, "user_not_found")
		wantDeviceNotFound(t, s, d.ID)
		wantPhoneNotFound(t, s, d.PhoneIDHash)
		wantAudit(t, s)
		wantSeqZero(t, e)
	})
	t.Run("ErrDeviceExists", func(t *testing.T) {
		s := open(t)
		_, ad := mustCreateUser(t, s, "alice")
		bob, _ := mustCreateUser(t, s, "bob")
		d := newDevice(bob.ID, "bob-tablet", t0)
		d.ID = ad.ID
		e := newEvent(qrauth.AuditDeviceLinked, bob.ID)
		wantError(t, s.CreateDevice(t.Context(), d, e), qrauth.ECONFLICT, "device_exists")
		same(t, "existing device", findDevice(t, s, ad.ID), ad)
		wantPhoneNotFound(t, s, d.PhoneIDHash)
		if ids := deviceIDs(t, s, bob.ID); !reflect.DeepEqual(ids, []qrauth.DeviceID{"d_bob"}) {
			t.Fatalf("bob's devices = %v, want [d_bob]", ids)
		}
		wantAudit(t, s)
		wantSeqZero(t, e)
	})
	t.Run("ErrPhoneTaken", func(t *testing.T) {
		s := open(t)
		alice, ad := mustCreateUser(t, s, "alice")
		bob, _ := mustCreateUser(t, s, "bob")
		d := newDevice(bob.ID, "bob-tablet", t0)
		d.PhoneIDHash = ad.PhoneIDHash
		e := newEvent(qrauth.AuditDeviceLinked, bob.ID)
		wantError(t, s.CreateDevice(t.Context(), d, e), qrauth.ECONFLICT, "phone_taken")
		wantDeviceNotFound(t, s, d.ID)
		got, err := s.FindUserByPhoneIDHash(t.Context(), ad.PhoneIDHash)
		noError(t, err)
		same(t, "phone owner", got, alice)
		wantAudit(t, s)
		wantSeqZero(t, e)
	})
	t.Run("ErrInvalid", func(t *testing.T) {
		for _, tt := range []struct {
			name string
			edit func(d *qrauth.Device) *qrauth.Device
		}{
			{"Nil", func(d *qrauth.Device) *qrauth.Device { return nil }},
			{"EmptyID", func(d *qrauth.Device) *qrauth.Device { d.ID = ""; return d }},
			{"EmptyUserID", func(d *qrauth.Device) *qrauth.Device { d.UserID = ""; return d }},
			{"EmptyPhoneIDHash", func(d *qrauth.Device) *qrauth.Device { d.PhoneIDHash = ""; return d }},
		} {
			t.Run(tt.name, func(t *testing.T) {
				s := open(t)
				u, _ := mustCreateUser(t, s, "alice")
				d := tt.edit(newDevice(u.ID, "alice-tablet", t0))
				e := newEvent(qrauth.AuditDeviceLinked, u.ID)
				wantError(t, s.CreateDevice(t.Context(), d, e), qrauth.EINVALID, "")
				wantDeviceNotFound(t, s, "d_alice-tablet")
				wantAudit(t, s)
				wantSeqZero(t, e)
			})
		}
	})
	t.Run("CopiesInput", func(t *testing.T) {
		s := open(t)
		u, _ := mustCreateUser(t, s, "alice")
		d := newDevice(u.ID, "alice-tablet", t0)
		noError(t, s.CreateDevice(t.Context(), d))
		want := *d
		want.PublicKey = bytes.Clone(d.PublicKey)
		d.Name = "changed"
		d.PublicKey[0] ^= 0xff
		same(t, "device", findDevice(t, s, d.ID), &want)
	})
}

func testFindDeviceByID(t *testing.T, open opener) {
	t.Run("OK", func(t *testing.T) {
		s := open(t)
		_, d := mustCreateUser(t, s, "alice")
		mustCreateUser(t, s, "bob")
		same(t, "device", findDevice(t, s, d.ID), d)
	})
	t.Run("ErrNotFound", func(t *testing.T) {
		s := open(t)
		mustCreateUser(t, s, "alice")
		wantDeviceNotFound(t, s, "d_nothing")
	})
	t.Run("Copy", func(t *testing.T) {
		s := open(t)
		_, d := mustCreateUser(t, s, "alice")
		got := findDevice(t, s, d.ID)
		got.Name = "changed"
		got.PublicKey[0] ^= 0xff
		same(t, "device", findDevice(t, s, d.ID), d)
	})
}

func testFindDevicesByUser(t *testing.T, open opener) {
	t.Run("OldestFirst", func(t *testing.T) {
		s := open(t)
		u, first := mustCreateUser(t, s, "alice") // created at t0
		mustCreateUser(t, s, "bob")
		// Inserted out of order, so that insertion order is not the answer.
		for _, d := range []*qrauth.Device{
			newDevice(u.ID, "alice-c", t0.Add(3*time.Hour)),
			newDevice(u.ID, "alice-a", t0.Add(-time.Hour)),
			newDevice(u.ID, "alice-b", t0.Add(2*time.Hour)),
		} {
			noError(t, s.CreateDevice(t.Context(), d))
		}
		want := []qrauth.DeviceID{"d_alice-a", first.ID, "d_alice-b", "d_alice-c"}
		if ids := deviceIDs(t, s, u.ID); !reflect.DeepEqual(ids, want) {
			t.Fatalf("devices = %v, want %v", ids, want)
		}
	})
	// The contract does not say; an empty list keeps callers simple.
	t.Run("UnknownUser", func(t *testing.T) {
		s := open(t)
		mustCreateUser(t, s, "alice")
		if ids := deviceIDs(t, s, "u_nobody"); len(ids) != 0 {
			t.Fatalf("devices = %v, want none", ids)
		}
	})
	t.Run("Copy", func(t *testing.T) {
		s := open(t)
		u, d := mustCreateUser(t, s, "alice")
		ds, err := s.FindDevicesByUser(t.Context(), u.ID)
		noError(t, err)
		ds[0].Name = "changed"
		ds[0].PublicKey[0] ^= 0xff
		same(t, "device", findDevice(t, s, d.ID), d)
	})
}

func testTouchDevice(t *testing.T, open opener) {
	t.Run("OK", func(t *testing.T) {
		s := open(t)
		_, d := mustCreateUser(t, s, "alice")
		at := t0.Add(time.Hour)
		noError(t, s.TouchDevice(t.Context(), d.ID, at))
		want := *d
		want.LastSeenAt = at
		same(t, "device", findDevice(t, s, d.ID), &want)
	})
	t.Run("ErrNotFound", func(t *testing.T) {
		s := open(t)
		mustCreateUser(t, s, "alice")
		wantError(t, s.TouchDevice(t.Context(), "d_nothing", t0), qrauth.ENOTFOUND, "device_not_found")
		wantDeviceNotFound(t, s, "d_nothing")
	})
}

func testCreateSession(t *testing.T, open opener) {
	t.Run("OK", func(t *testing.T) {
		s := open(t)
		u, d := mustCreateUser(t, s, "alice")
		sess := newSession(u.ID, d.ID, 1)
		e := newEvent(qrauth.AuditSignIn, u.ID)
		e.SessionID = sess.ID
		noError(t, s.CreateSession(t.Context(), sess, e))

		same(t, "by id", findSession(t, s, sess.ID), sess)
		got, err := s.FindSessionByTokenHash(t.Context(), sess.TokenHash)
		noError(t, err)
		same(t, "by token hash", got, sess)
		if ids := sessionIDs(t, s, u.ID); !reflect.DeepEqual(ids, []qrauth.SessionID{sess.ID}) {
			t.Fatalf("sessions = %v, want [%s]", ids, sess.ID)
		}
		wantAudit(t, s, e)
	})
	t.Run("TouchesDevice", func(t *testing.T) {
		s := open(t)
		u, d := mustCreateUser(t, s, "alice")
		sess := newSession(u.ID, d.ID, 5)
		mustCreateSession(t, s, sess)
		want := *d
		want.LastSeenAt = sess.CreatedAt
		same(t, "device", findDevice(t, s, d.ID), &want)
	})
	t.Run("KnownAddress", func(t *testing.T) {
		s := open(t)
		u, d := mustCreateUser(t, s, "alice")
		bob, _ := mustCreateUser(t, s, "bob")
		sess := newSession(u.ID, d.ID, 1)
		wantKnown(t, s, u.ID, sess.IP, false)
		mustCreateSession(t, s, sess)
		wantKnown(t, s, u.ID, sess.IP, true)
		wantKnown(t, s, u.ID, "198.51.100.7", false)
		wantKnown(t, s, bob.ID, sess.IP, false)
	})
	t.Run("NoDevice", func(t *testing.T) {
		s := open(t)
		u, d := mustCreateUser(t, s, "alice")
		sess := newSession(u.ID, "", 1)
		mustCreateSession(t, s, sess)
		same(t, "session", findSession(t, s, sess.ID), sess)
		same(t, "device", findDevice(t, s, d.ID), d)
	})
	t.Run("ErrUserNotFound", func(t *testing.T) {
		s := open(t)
		_, d := mustCreateUser(t, s, "alice")
		sess := newSession("u_nobody", "", 1)
		e := newEvent(qrauth.AuditSignIn, "u_nobody")
		wantError(t, s.CreateSession(t.Context(), sess, e), qrauth.ENOTFOUND, "user_not_found")
		wantSessionNotFound(t, s, sess)
		wantKnown(t, s, "u_nobody", sess.IP, false)
		same(t, "device", findDevice(t, s, d.ID), d)
		wantAudit(t, s)
		wantSeqZero(t, e)
	})
	t.Run("ErrIDExists", func(t *testing.T) {
		s := open(t)
		u, d := mustCreateUser(t, s, "alice")
		first := newSession(u.ID, d.ID, 1)
		mustCreateSession(t, s, first)
		dev := findDevice(t, s, d.ID)

		dup := newSession(u.ID, d.ID, 2)
		dup.ID = first.ID
		e := newEvent(qrauth.AuditSignIn, u.ID)
		wantError(t, s.CreateSession(t.Context(), dup, e), qrauth.ECONFLICT, "session_exists")
		same(t, "existing session", findSession(t, s, first.ID), first)
		_, err := s.FindSessionByTokenHash(t.Context(), dup.TokenHash)
		wantError(t, err, qrauth.ENOTFOUND, "session_not_found")
		wantKnown(t, s, u.ID, dup.IP, false)
		same(t, "device", findDevice(t, s, d.ID), dev)
		wantAudit(t, s)
		wantSeqZero(t, e)
	})
	t.Run("ErrTokenHashExists", func(t *testing.T) {
		s := open(t)
		u, d := mustCreateUser(t, s, "alice")
		first := newSession(u.ID, d.ID, 1)
		mustCreateSession(t, s, first)

		dup := newSession(u.ID, d.ID, 2)
		dup.TokenHash = bytes.Clone(first.TokenHash)
		e := newEvent(qrauth.AuditSignIn, u.ID)
		wantError(t, s.CreateSession(t.Context(), dup, e), qrauth.ECONFLICT, "session_exists")
		_, err := s.FindSessionByID(t.Context(), dup.ID)
		wantError(t, err, qrauth.ENOTFOUND, "session_not_found")
		got, err := s.FindSessionByTokenHash(t.Context(), first.TokenHash)
		noError(t, err)
		same(t, "by token hash", got, first)
		if ids := sessionIDs(t, s, u.ID); !reflect.DeepEqual(ids, []qrauth.SessionID{first.ID}) {
			t.Fatalf("sessions = %v, want [%s]", ids, first.ID)
		}
		wantKnown(t, s, u.ID, dup.IP, false)
		wantAudit(t, s)
		wantSeqZero(t, e)
	})
	// Not written in the Store contract: a session approved by a device
	// that is not the user's is a bug upstream, and touching that device
	// would corrupt another user's device list.
	t.Run("ErrDeviceNotFound", func(t *testing.T) {
		for _, tt := range []struct {
			name     string
			deviceID qrauth.DeviceID
		}{
			{"Missing", "d_nothing"},
			{"OtherUsers", "d_bob"},
		} {
			t.Run(tt.name, func(t *testing.T) {
				s := open(t)
				u, _ := mustCreateUser(t, s, "alice")
				_, bd := mustCreateUser(t, s, "bob")
				sess := newSession(u.ID, tt.deviceID, 1)
				e := newEvent(qrauth.AuditSignIn, u.ID)
				wantError(t, s.CreateSession(t.Context(), sess, e), qrauth.ENOTFOUND, "device_not_found")
				wantSessionNotFound(t, s, sess)
				wantKnown(t, s, u.ID, sess.IP, false)
				same(t, "bob's device", findDevice(t, s, bd.ID), bd)
				wantAudit(t, s)
				wantSeqZero(t, e)
			})
		}
	})
	t.Run("ErrInvalid", func(t *testing.T) {
		for _, tt := range []struct {
			name string
			edit func(s *qrauth.Session) *qrauth.Session
		}{
			{"Nil", func(s *qrauth.Session) *qrauth.Session { return nil }},
			{"EmptyID", func(s *qrauth.Session) *qrauth.Session { s.ID = ""; return s }},
			{"EmptyUserID", func(s *qrauth.Session) *qrauth.Session { s.UserID = ""; return s }},
			{"EmptyTokenHash", func(s *qrauth.Session) *qrauth.Session { s.TokenHash = nil; return s }},
		} {
			t.Run(tt.name, func(t *testing.T) {
				s := open(t)
				u, d := mustCreateUser(t, s, "alice")
				sess := tt.edit(newSession(u.ID, d.ID, 1))
				e := newEvent(qrauth.AuditSignIn, u.ID)
				wantError(t, s.CreateSession(t.Context(), sess, e), qrauth.EINVALID, "")
				if ids := sessionIDs(t, s, u.ID); len(ids) != 0 {
					t.Fatalf("sessions = %v, want none", ids)
				}
				same(t, "device", findDevice(t, s, d.ID), d)
				wantAudit(t, s)
				wantSeqZero(t, e)
			})
		}
	})
	t.Run("CopiesInput", func(t *testing.T) {
		s := open(t)
		u, d := mustCreateUser(t, s, "alice")
		sess := newSession(u.ID, d.ID, 1)
		mustCreateSession(t, s, sess)
		want := *sess
		want.TokenHash = bytes.Clone(sess.TokenHash)
		sess.TokenHash[0] ^= 0xff
		sess.IP = "changed"
		got, err := s.FindSessionByTokenHash(t.Context(), want.TokenHash)
		noError(t, err)
		same(t, "session", got, &want)
	})
}

func testFindSessionByID(t *testing.T, open opener) {
	t.Run("ErrNotFound", func(t *testing.T) {
		s := open(t)
		u, d := mustCreateUser(t, s, "alice")
		mustCreateSession(t, s, newSession(u.ID, d.ID, 1))
		_, err := s.FindSessionByID(t.Context(), "s_nothing")
		wantError(t, err, qrauth.ENOTFOUND, "session_not_found")
	})
	t.Run("Copy", func(t *testing.T) {
		s := open(t)
		u, d := mustCreateUser(t, s, "alice")
		sess := newSession(u.ID, d.ID, 1)
		mustCreateSession(t, s, sess)
		got := findSession(t, s, sess.ID)
		got.TokenHash[0] ^= 0xff
		got.UserAgent = "changed"
		same(t, "session", findSession(t, s, sess.ID), sess)
	})
}

func testFindSessionByTokenHash(t *testing.T, open opener) {
	t.Run("OK", func(t *testing.T) {
		s := open(t)
		u, d := mustCreateUser(t, s, "alice")
		a, b := newSession(u.ID, d.ID, 1), newSession(u.ID, d.ID, 2)
		mustCreateSession(t, s, a)
		mustCreateSession(t, s, b)
		got, err := s.FindSessionByTokenHash(t.Context(), b.TokenHash)
		noError(t, err)
		same(t, "session", got, b)
	})
	t.Run("Expired", func(t *testing.T) {
		s := open(t)
		u, d := mustCreateUser(t, s, "alice")
		sess := newSession(u.ID, d.ID, 1)
		sess.ExpiresAt = sess.CreatedAt.Add(-time.Hour)
		mustCreateSession(t, s, sess)
		got, err := s.FindSessionByTokenHash(t.Context(), sess.TokenHash)
		noError(t, err)
		same(t, "session", got, sess)
	})
	t.Run("ErrNotFound", func(t *testing.T) {
		s := open(t)
		u, d := mustCreateUser(t, s, "alice")
		mustCreateSession(t, s, newSession(u.ID, d.ID, 1))
		_, err := s.FindSessionByTokenHash(t.Context(), qrauth.HashToken("no such token"))
		wantError(t, err, qrauth.ENOTFOUND, "session_not_found")
	})
	t.Run("Copy", func(t *testing.T) {
		s := open(t)
		u, d := mustCreateUser(t, s, "alice")
		sess := newSession(u.ID, d.ID, 1)
		mustCreateSession(t, s, sess)
		got, err := s.FindSessionByTokenHash(t.Context(), sess.TokenHash)
		noError(t, err)
		got.TokenHash[0] ^= 0xff
		got.UserAgent = "changed"
		got, err = s.FindSessionByTokenHash(t.Context(), sess.TokenHash)
		noError(t, err)
		same(t, "session", got, sess)
	})
}

func testFindSessionsByUser(t *testing.T, open opener) {
	t.Run("NewestFirst", func(t *testing.T) {
		s := open(t)
		u, d := mustCreateUser(t, s, "alice")
		bob, bd := mustCreateUser(t, s, "bob")
		// Out of order, and one expired but not yet purged.
		for _, n := range []int{2, 5, 1, 3} {
			mustCreateSession(t, s, newSession(u.ID, d.ID, n))
		}
		expired := newSession(u.ID, d.ID, 4)
		expired.ExpiresAt = t0
		mustCreateSession(t, s, expired)
		mustCreateSession(t, s, newSession(bob.ID, bd.ID, 6))

		want := []qrauth.SessionID{"s_u_alice_5", "s_u_alice_4", "s_u_alice_3", "s_u_alice_2", "s_u_alice_1"}
		if ids := sessionIDs(t, s, u.ID); !reflect.DeepEqual(ids, want) {
			t.Fatalf("sessions = %v, want %v", ids, want)
		}
		ss, err := s.FindSessionsByUser(t.Context(), u.ID)
		noError(t, err)
		same(t, "second session", ss[1], expired)
	})
	// The contract does not say; an empty list keeps callers simple.
	t.Run("UnknownUser", func(t *testing.T) {
		s := open(t)
		u, d := mustCreateUser(t, s, "alice")
		mustCreateSession(t, s, newSession(u.ID, d.ID, 1))
		if ids := sessionIDs(t, s, "u_nobody"); len(ids) != 0 {
			t.Fatalf("sessions = %v, want none", ids)
		}
	})
	t.Run("None", func(t *testing.T) {
		s := open(t)
		u, _ := mustCreateUser(t, s, "alice")
		if ids := sessionIDs(t, s, u.ID); len(ids) != 0 {
			t.Fatalf("sessions = %v, want none", ids)
		}
	})
	t.Run("Copy", func(t *testing.T) {
		s := open(t)
		u, d := mustCreateUser(t, s, "alice")
		sess := newSession(u.ID, d.ID, 1)
		mustCreateSession(t, s, sess)
		ss, err := s.FindSessionsByUser(t.Context(), u.ID)
		noError(t, err)
		ss[0].TokenHash[0] ^= 0xff
		ss[0].IP = "changed"
		same(t, "session", findSession(t, s, sess.ID), sess)
	})
}

func testTouchSession(t *testing.T, open opener) {
	t.Run("OK", func(t *testing.T) {
		s := open(t)
		u, d := mustCreateUser(t, s, "alice")
		sess := newSession(u.ID, d.ID, 1)
		mustCreateSession(t, s, sess)
		at := sess.CreatedAt.Add(time.Hour)
		noError(t, s.TouchSession(t.Context(), sess.ID, at))
		want := *sess
		want.LastSeenAt = at
		same(t, "session", findSession(t, s, sess.ID), &want)
		got, err := s.FindSessionByTokenHash(t.Context(), sess.TokenHash)
		noError(t, err)
		same(t, "by token hash", got, &want)
	})
	t.Run("ErrNotFound", func(t *testing.T) {
		s := open(t)
		mustCreateUser(t, s, "alice")
		wantError(t, s.TouchSession(t.Context(), "s_nothing", t0), qrauth.ENOTFOUND, "session_not_found")
		_, err := s.FindSessionByID(t.Context(), "s_nothing")
		wantError(t, err, qrauth.ENOTFOUND, "session_not_found")
	})
}

func testDeleteSession(t *testing.T, open opener) {
	t.Run("OK", func(t *testing.T) {
		s := open(t)
		u, d := mustCreateUser(t, s, "alice")
		gone, kept := newSession(u.ID, d.ID, 1), newSession(u.ID, d.ID, 2)
		mustCreateSession(t, s, gone)
		mustCreateSession(t, s, kept)
		e := newEvent(qrauth.AuditSignOut, u.ID)
		e.SessionID = gone.ID
		noError(t, s.DeleteSession(t.Context(), gone.ID, e))

		wantSessionNotFound(t, s, gone)
		if ids := sessionIDs(t, s, u.ID); !reflect.DeepEqual(ids, []qrauth.SessionID{kept.ID}) {
			t.Fatalf("sessions = %v, want [%s]", ids, kept.ID)
		}
		same(t, "kept session", findSession(t, s, kept.ID), kept)
		wantAudit(t, s, e)
	})
	t.Run("AddressStaysKnown", func(t *testing.T) {
		s := open(t)
		u, d := mustCreateUser(t, s, "alice")
		sess := newSession(u.ID, d.ID, 1)
		mustCreateSession(t, s, sess)
		noError(t, s.DeleteSession(t.Context(), sess.ID))
		wantKnown(t, s, u.ID, sess.IP, true)
	})
	// A new session with the old ID and token hash succeeds only if every
	// index entry of the deleted one is gone.
	t.Run("FreesIndexes", func(t *testing.T) {
		s := open(t)
		u, d := mustCreateUser(t, s, "alice")
		sess := newSession(u.ID, d.ID, 1)
		mustCreateSession(t, s, sess)
		noError(t, s.DeleteSession(t.Context(), sess.ID))
		again := *sess
		again.UserAgent = "again"
		mustCreateSession(t, s, &again)
		got, err := s.FindSessionByTokenHash(t.Context(), sess.TokenHash)
		noError(t, err)
		same(t, "session", got, &again)
		if ids := sessionIDs(t, s, u.ID); !reflect.DeepEqual(ids, []qrauth.SessionID{sess.ID}) {
			t.Fatalf("sessions = %v, want [%s]", ids, sess.ID)
		}
	})
	t.Run("ErrNotFound", func(t *testing.T) {
		s := open(t)
		u, d := mustCreateUser(t, s, "alice")
		sess := newSession(u.ID, d.ID, 1)
		mustCreateSession(t, s, sess)
		e := newEvent(qrauth.AuditRevoked, u.ID)
		wantError(t, s.DeleteSession(t.Context(), "s_nothing", e), qrauth.ENOTFOUND, "session_not_found")
		same(t, "session", findSession(t, s, sess.ID), sess)
		wantAudit(t, s)
		wantSeqZero(t, e)
	})
	t.Run("ErrTwice", func(t *testing.T) {
		s := open(t)
		u, d := mustCreateUser(t, s, "alice")
		sess := newSession(u.ID, d.ID, 1)
		mustCreateSession(t, s, sess)
		first := newEvent(qrauth.AuditSignOut, u.ID)
		noError(t, s.DeleteSession(t.Context(), sess.ID, first))
		second := newEvent(qrauth.AuditSignOut, u.ID)
		wantError(t, s.DeleteSession(t.Context(), sess.ID, second), qrauth.ENOTFOUND, "session_not_found")
		wantAudit(t, s, first)
		wantSeqZero(t, second)
	})
}

func testDeleteExpiredSessions(t *testing.T, open opener) {
	t.Run("OK", func(t *testing.T) {
		s := open(t)
		u, d := mustCreateUser(t, s, "alice")
		bob, bd := mustCreateUser(t, s, "bob")
		now := t0.Add(48 * time.Hour)
		past, atNow, future := newSession(u.ID, d.ID, 1), newSession(u.ID, d.ID, 2), newSession(u.ID, d.ID, 3)
		past.ExpiresAt = now.Add(-time.Hour)
		atNow.ExpiresAt = now // Expired: a session is valid strictly before ExpiresAt.
		future.ExpiresAt = now.Add(time.Second)
		bobs := newSession(bob.ID, bd.ID, 4)
		bobs.ExpiresAt = now.Add(-time.Minute)
		for _, sess := range []*qrauth.Session{past, atNow, future, bobs} {
			mustCreateSession(t, s, sess)
		}

		n, err := s.DeleteExpiredSessions(t.Context(), now)
		noError(t, err)
		if n != 3 {
			t.Fatalf("DeleteExpiredSessions = %d, want 3", n)
		}
		for _, sess := range []*qrauth.Session{past, atNow, bobs} {
			wantSessionNotFound(t, s, sess)
		}
		same(t, "valid session", findSession(t, s, future.ID), future)
		if ids := sessionIDs(t, s, u.ID); !reflect.DeepEqual(ids, []qrauth.SessionID{future.ID}) {
			t.Fatalf("alice's sessions = %v, want [%s]", ids, future.ID)
		}
		if ids := sessionIDs(t, s, bob.ID); len(ids) != 0 {
			t.Fatalf("bob's sessions = %v, want none", ids)
		}

		n, err = s.DeleteExpiredSessions(t.Context(), now)
		noError(t, err)
		if n != 0 {
			t.Fatalf("second DeleteExpiredSessions = %d, want 0", n)
		}
	})
	t.Run("None", func(t *testing.T) {
		s := open(t)
		u, d := mustCreateUser(t, s, "alice")
		sess := newSession(u.ID, d.ID, 1)
		mustCreateSession(t, s, sess)
		n, err := s.DeleteExpiredSessions(t.Context(), sess.CreatedAt)
		noError(t, err)
		if n != 0 {
			t.Fatalf("DeleteExpiredSessions = %d, want 0", n)
		}
		same(t, "session", findSession(t, s, sess.ID), sess)
	})
	t.Run("Empty", func(t *testing.T) {
		s := open(t)
		n, err := s.DeleteExpiredSessions(t.Context(), t0)
		noError(t, err)
		if n != 0 {
			t.Fatalf("DeleteExpiredSessions = %d, want 0", n)
		}
	})
	t.Run("FreesIndexes", func(t *testing.T) {
		s := open(t)
		u, d := mustCreateUser(t, s, "alice")
		sess := newSession(u.ID, d.ID, 1)
		mustCreateSession(t, s, sess)
		_, err := s.DeleteExpiredSessions(t.Context(), sess.ExpiresAt)
		noError(t, err)
		again := *sess
		again.ExpiresAt = sess.ExpiresAt.Add(time.Hour)
		mustCreateSession(t, s, &again)
	})
}

func testKnownAddress(t *testing.T, open opener) {
	t.Run("Unknown", func(t *testing.T) {
		s := open(t)
		u, _ := mustCreateUser(t, s, "alice")
		wantKnown(t, s, u.ID, "192.0.2.1", false)
		wantKnown(t, s, "u_nobody", "192.0.2.1", false)
	})
	t.Run("Several", func(t *testing.T) {
		s := open(t)
		u, d := mustCreateUser(t, s, "alice")
		a, b := newSession(u.ID, d.ID, 1), newSession(u.ID, d.ID, 2)
		b.IP = "2001:db8::1"
		mustCreateSession(t, s, a)
		mustCreateSession(t, s, b)
		wantKnown(t, s, u.ID, a.IP, true)
		wantKnown(t, s, u.ID, b.IP, true)
		wantKnown(t, s, u.ID, "2001:db8::2", false)
	})
}

func testAppendAudit(t *testing.T, open opener) {
	t.Run("OK", func(t *testing.T) {
		s := open(t)
		evs := []*qrauth.AuditEvent{
			newEvent(qrauth.AuditSignIn, "u_alice"),
			newEvent(qrauth.AuditDenied, "u_bob"),
			{Time: t0, Type: qrauth.AuditDenied, IP: "203.0.113.9"},
		}
		noError(t, s.AppendAudit(t.Context(), evs...))
		if evs[0].Seq == 0 || evs[1].Seq <= evs[0].Seq || evs[2].Seq <= evs[1].Seq {
			t.Fatalf("Seqs = %v, want increasing from at least 1", seqs(evs))
		}
		wantAudit(t, s, evs...)
	})
	t.Run("Increasing", func(t *testing.T) {
		s := open(t)
		var all []*qrauth.AuditEvent
		for i := range 5 {
			e := newEvent(qrauth.AuditSignIn, qrauth.UserID(fmt.Sprint("u_", i)))
			noError(t, s.AppendAudit(t.Context(), e))
			if len(all) > 0 && e.Seq <= all[len(all)-1].Seq {
				t.Fatalf("Seq %d after %d", e.Seq, all[len(all)-1].Seq)
			}
			all = append(all, e)
		}
		wantAudit(t, s, all...)
	})
	t.Run("WithChange", func(t *testing.T) {
		s := open(t)
		u := newUser("alice")
		d := newDevice(u.ID, "alice", t0)
		signup := newEvent(qrauth.AuditSignUp, u.ID)
		linked := newEvent(qrauth.AuditDeviceLinked, u.ID)
		noError(t, s.CreateUser(t.Context(), u, d, signup, linked))
		other := newEvent(qrauth.AuditSignIn, u.ID)
		noError(t, s.AppendAudit(t.Context(), other))
		if signup.Seq == 0 || linked.Seq <= signup.Seq || other.Seq <= linked.Seq {
			t.Fatalf("Seqs = %v, want increasing from at least 1", seqs([]*qrauth.AuditEvent{signup, linked, other}))
		}
		wantAudit(t, s, signup, linked, other)
	})
	t.Run("None", func(t *testing.T) {
		s := open(t)
		noError(t, s.AppendAudit(t.Context()))
		wantAudit(t, s)
	})
	t.Run("ErrNil", func(t *testing.T) {
		s := open(t)
		e := newEvent(qrauth.AuditSignIn, "u_alice")
		wantError(t, s.AppendAudit(t.Context(), e, nil), qrauth.EINVALID, "")
		wantAudit(t, s)
		wantSeqZero(t, e)
	})
	t.Run("CopiesInput", func(t *testing.T) {
		s := open(t)
		e := newEvent(qrauth.AuditSignIn, "u_alice")
		noError(t, s.AppendAudit(t.Context(), e))
		want := *e
		e.Detail = "changed"
		wantAudit(t, s, &want)
	})
}

func testListAudit(t *testing.T, open opener) {
	// appendN appends n events, alternating between alice and bob.
	appendN := func(t *testing.T, s qrauth.Store, n int) []*qrauth.AuditEvent {
		t.Helper()
		evs := make([]*qrauth.AuditEvent, n)
		for i := range evs {
			uid := qrauth.UserID("u_alice")
			if i%2 == 1 {
				uid = "u_bob"
			}
			evs[i] = newEvent(qrauth.AuditSignIn, uid)
			evs[i].Time = t0.Add(time.Duration(i) * time.Second)
		}
		noError(t, s.AppendAudit(t.Context(), evs...))
		return evs
	}
	wantSeqs := func(t *testing.T, got []*qrauth.AuditEvent, want []*qrauth.AuditEvent) {
		t.Helper()
		if g, w := seqs(got), seqs(want); !reflect.DeepEqual(g, w) {
			t.Fatalf("Seqs = %v, want %v", g, w)
		}
	}
	where := func(evs []*qrauth.AuditEvent, keep func(*qrauth.AuditEvent) bool) []*qrauth.AuditEvent {
		out := []*qrauth.AuditEvent{}
		for _, e := range evs {
			if keep(e) {
				out = append(out, e)
			}
		}
		return out
	}

	t.Run("All", func(t *testing.T) {
		s := open(t)
		evs := appendN(t, s, 10)
		got := listAudit(t, s, qrauth.AuditFilter{})
		wantSeqs(t, got, evs)
		for i := range got {
			same(t, fmt.Sprint("event ", i), got[i], evs[i])
		}
	})
	t.Run("UserID", func(t *testing.T) {
		s := open(t)
		evs := appendN(t, s, 10)
		got := listAudit(t, s, qrauth.AuditFilter{UserID: "u_bob"})
		wantSeqs(t, got, where(evs, func(e *qrauth.AuditEvent) bool { return e.UserID == "u_bob" }))
		if got := listAudit(t, s, qrauth.AuditFilter{UserID: "u_nobody"}); len(got) != 0 {
			t.Fatalf("events of unknown user = %v, want none", seqs(got))
		}
	})
	t.Run("AfterSeq", func(t *testing.T) {
		s := open(t)
		evs := appendN(t, s, 10)
		after := evs[3].Seq
		got := listAudit(t, s, qrauth.AuditFilter{AfterSeq: after})
		wantSeqs(t, got, evs[4:])
		if got := listAudit(t, s, qrauth.AuditFilter{AfterSeq: evs[9].Seq}); len(got) != 0 {
			t.Fatalf("events after the last = %v, want none", seqs(got))
		}
	})
	t.Run("UserIDAndAfterSeq", func(t *testing.T) {
		s := open(t)
		evs := appendN(t, s, 10)
		after := evs[4].Seq
		got := listAudit(t, s, qrauth.AuditFilter{UserID: "u_alice", AfterSeq: after})
		wantSeqs(t, got, where(evs, func(e *qrauth.AuditEvent) bool { return e.UserID == "u_alice" && e.Seq > after }))
	})
	t.Run("Limit", func(t *testing.T) {
		s := open(t)
		evs := appendN(t, s, 10)
		wantSeqs(t, listAudit(t, s, qrauth.AuditFilter{Limit: 3}), evs[:3])
		wantSeqs(t, listAudit(t, s, qrauth.AuditFilter{Limit: 2, AfterSeq: evs[7].Seq}), evs[8:])
		bobs := where(evs, func(e *qrauth.AuditEvent) bool { return e.UserID == "u_bob" })
		wantSeqs(t, listAudit(t, s, qrauth.AuditFilter{Limit: 2, UserID: "u_bob"}), bobs[:2])
	})
	t.Run("DefaultLimit", func(t *testing.T) {
		s := open(t)
		evs := appendN(t, s, 150)
		wantSeqs(t, listAudit(t, s, qrauth.AuditFilter{}), evs[:100])
	})
	t.Run("MaxLimit", func(t *testing.T) {
		s := open(t)
		evs := appendN(t, s, 1100)
		wantSeqs(t, listAudit(t, s, qrauth.AuditFilter{Limit: 5000}), evs[:1000])
	})
	t.Run("Copy", func(t *testing.T) {
		s := open(t)
		evs := appendN(t, s, 1)
		listAudit(t, s, qrauth.AuditFilter{})[0].Detail = "changed"
		same(t, "event", listAudit(t, s, qrauth.AuditFilter{})[0], evs[0])
	})
}

func testConcurrent(t *testing.T, open opener) {
	t.Run("CreateSession", func(t *testing.T) {
		s := open(t)
		u, d := mustCreateUser(t, s, "alice")
		const n = 50
		sessions := make([]*qrauth.Session, n)
		events := make([]*qrauth.AuditEvent, n)
		var wg sync.WaitGroup
		for i := range n {
			sessions[i] = newSession(u.ID, d.ID, i)
			events[i] = newEvent(qrauth.AuditSignIn, u.ID)
			events[i].SessionID = sessions[i].ID
			wg.Go(func() {
				if err := s.CreateSession(t.Context(), sessions[i], events[i]); err != nil {
					t.Errorf("CreateSession %d: %v", i, err)
				}
			})
		}
		wg.Wait()
		if t.Failed() {
			t.FailNow()
		}

		if ids := sessionIDs(t, s, u.ID); len(ids) != n {
			t.Fatalf("%d sessions, want %d", len(ids), n)
		}
		bySeq := map[uint64]*qrauth.AuditEvent{}
		for i, sess := range sessions {
			same(t, "session", findSession(t, s, sess.ID), sess)
			if e := events[i]; e.Seq == 0 || bySeq[e.Seq] != nil {
				t.Fatalf("event %d has Seq %d, which is 0 or taken", i, e.Seq)
			}
			bySeq[events[i].Seq] = events[i]
		}
		logged := allAudit(t, s)
		if len(logged) != n {
			t.Fatalf("%d audit events, want %d", len(logged), n)
		}
		for i, e := range logged {
			if i > 0 && e.Seq <= logged[i-1].Seq {
				t.Fatalf("ListAudit out of order: %d after %d", e.Seq, logged[i-1].Seq)
			}
			same(t, fmt.Sprint("event ", e.Seq), e, bySeq[e.Seq])
		}
	})
	// Pairs of callers race for the same session id: within each pair one
	// must win and one must fail without leaving a trace, however the
	// store groups concurrent writes.
	t.Run("Conflicts", func(t *testing.T) {
		s := open(t)
		u, d := mustCreateUser(t, s, "alice")
		const pairs = 25
		errs := make([]error, 2*pairs)
		events := make([]*qrauth.AuditEvent, 2*pairs)
		var wg sync.WaitGroup
		for i := range 2 * pairs {
			sess := newSession(u.ID, d.ID, 2*pairs+i) // distinct token hash
			sess.ID = qrauth.SessionID(fmt.Sprint("s_pair_", i/2))
			events[i] = newEvent(qrauth.AuditSignIn, u.ID)
			wg.Go(func() { errs[i] = s.CreateSession(t.Context(), sess, events[i]) })
		}
		wg.Wait()

		var won []*qrauth.AuditEvent
		for p := range pairs {
			a, b := errs[2*p], errs[2*p+1]
			if (a == nil) == (b == nil) {
				t.Fatalf("pair %d: errors %v and %v, want exactly one nil", p, a, b)
			}
			for _, i := range []int{2 * p, 2*p + 1} {
				if errs[i] == nil {
					won = append(won, events[i])
				} else {
					wantError(t, errs[i], qrauth.ECONFLICT, "session_exists")
					wantSeqZero(t, events[i])
				}
			}
		}
		if ids := sessionIDs(t, s, u.ID); len(ids) != pairs {
			t.Fatalf("%d sessions, want %d", len(ids), pairs)
		}
		if logged := allAudit(t, s); len(logged) != pairs {
			t.Fatalf("%d audit events, want %d", len(logged), pairs)
		}
		for _, e := range won {
			if e.Seq == 0 {
				t.Fatal("winning event has Seq 0")
			}
		}
	})
	// Readers and the other hot-path writers run alongside session
	// creation; the race detector and the final state catch interference.
	t.Run("Mixed", func(t *testing.T) {
		s := open(t)
		u, d := mustCreateUser(t, s, "alice")
		base := newSession(u.ID, d.ID, 0)
		mustCreateSession(t, s, base)
		const n = 20
		var wg sync.WaitGroup
		for i := 1; i <= n; i++ {
			wg.Go(func() {
				if err := s.CreateSession(t.Context(), newSession(u.ID, d.ID, i)); err != nil {
					t.Error(err)
				}
			})
			wg.Go(func() {
				if err := s.TouchSession(t.Context(), base.ID, t0.Add(time.Duration(i)*time.Hour)); err != nil {
					t.Error(err)
				}
			})
			wg.Go(func() {
				if err := s.AppendAudit(t.Context(), newEvent(qrauth.AuditSignIn, u.ID)); err != nil {
					t.Error(err)
				}
			})
			wg.Go(func() {
				if _, err := s.FindSessionByTokenHash(t.Context(), base.TokenHash); err != nil {
					t.Error(err)
				}
			})
			wg.Go(func() {
				if _, err := s.FindSessionsByUser(t.Context(), u.ID); err != nil {
					t.Error(err)
				}
			})
		}
		wg.Wait()
		if t.Failed() {
			t.FailNow()
		}
		if ids := sessionIDs(t, s, u.ID); len(ids) != n+1 {
			t.Fatalf("%d sessions, want %d", len(ids), n+1)
		}
		if logged := allAudit(t, s); len(logged) != n {
			t.Fatalf("%d audit events, want %d", len(logged), n)
		}
		if got := findSession(t, s, base.ID); got.LastSeenAt.Before(t0.Add(time.Hour)) {
			t.Fatalf("LastSeenAt = %v, want one of the touches", got.LastSeenAt)
		}
	})
}
