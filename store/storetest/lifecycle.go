package storetest

import (
	"errors"
	"slices"
	"testing"

	"github.com/qrauth/qrauth"
)

// An account's lifecycle under an administrator: disable, enable, delete,
// and removing one phone with what it approved.

func testDisableUser(t *testing.T, open opener) {
	t.Run("OK", func(t *testing.T) {
		s := open(t)
		u, d := mustCreateUser(t, s, "alice")
		other, od := mustCreateUser(t, s, "bob")
		s1, s2 := newSession(u.ID, d.ID, 1), newSession(u.ID, "", 2)
		keep := newSession(other.ID, od.ID, 3)
		for _, x := range []*qrauth.Session{s1, s2, keep} {
			mustCreateSession(t, s, x)
		}
		ev := newEvent(qrauth.AuditUserDisabled, u.ID)
		dis := qrauth.Disabled{At: t0, By: "operator", Reason: "left the company"}
		got, ended, err := s.DisableUser(t.Context(), u.ID, dis, ev)
		noError(t, err)
		if ended != 2 || got.Disabled == nil || got.Disabled.Reason != dis.Reason || got.CheckEnabled() == nil {
			t.Fatalf("DisableUser = %+v, %d ended", got, ended)
		}
		stored := findUser(t, s, u.ID)
		if stored.Disabled == nil || !stored.Disabled.At.Equal(t0) || stored.Disabled.By != "operator" {
			t.Fatalf("stored user %+v", stored)
		}
		wantSessionNotFound(t, s, s1)
		wantSessionNotFound(t, s, s2)
		findSession(t, s, keep.ID)
		wantAudit(t, s, ev)

		// No session can be made while it lasts, whatever checked
		// before.
		err = s.CreateSession(t.Context(), newSession(u.ID, d.ID, 4))
		if !errors.Is(err, qrauth.ErrAccountDisabled) {
			t.Fatalf("CreateSession of a disabled user: %v", err)
		}
		if ids := sessionIDs(t, s, u.ID); len(ids) != 0 {
			t.Fatalf("sessions %v", ids)
		}
	})
	t.Run("ErrNotFound", func(t *testing.T) {
		s := open(t)
		ev := newEvent(qrauth.AuditUserDisabled, "u_nobody")
		_, _, err := s.DisableUser(t.Context(), "u_nobody", qrauth.Disabled{At: t0}, ev)
		wantError(t, err, qrauth.ENOTFOUND, "user_not_found")
		wantSeqZero(t, ev)
		wantAudit(t, s)
	})
}

func testEnableUser(t *testing.T, open opener) {
	t.Run("OK", func(t *testing.T) {
		s := open(t)
		u, d := mustCreateUser(t, s, "alice")
		_, _, err := s.DisableUser(t.Context(), u.ID, qrauth.Disabled{At: t0, By: "operator"})
		noError(t, err)
		ev := newEvent(qrauth.AuditUserEnabled, u.ID)
		got, err := s.EnableUser(t.Context(), u.ID, ev)
		noError(t, err)
		if got.Disabled != nil || findUser(t, s, u.ID).Disabled != nil {
			t.Fatalf("still disabled: %+v", got)
		}
		mustCreateSession(t, s, newSession(u.ID, d.ID, 1))
		wantAudit(t, s, ev)
	})
	t.Run("ErrNotFound", func(t *testing.T) {
		s := open(t)
		_, err := s.EnableUser(t.Context(), "u_nobody")
		wantError(t, err, qrauth.ENOTFOUND, "user_not_found")
	})
}

func testDeleteUser(t *testing.T, open opener) {
	t.Run("OK", func(t *testing.T) {
		s := open(t)
		u, d := mustCreateUser(t, s, "alice")
		other, od := mustCreateUser(t, s, "bob")
		// A second phone, then removed: its number stays indexed to
		// alice until she is deleted.
		d2 := newDevice(u.ID, "alice2", t0)
		noError(t, s.CreateDevice(t.Context(), d2))
		noError(t, s.DeleteDevice(t.Context(), d2.ID))
		sess := newSession(u.ID, d.ID, 1)
		mustCreateSession(t, s, sess)
		keep := newSession(other.ID, od.ID, 2)
		mustCreateSession(t, s, keep)
		own := newEvent(qrauth.AuditRolesChanged, u.ID)
		own.Actor = "operator"
		theirs := newEvent(qrauth.AuditSignIn, other.ID)
		noError(t, s.AppendAudit(t.Context(), own, theirs))

		del := &qrauth.AuditEvent{Time: t0, Type: qrauth.AuditUserDeleted, Detail: "by operator"}
		noError(t, s.DeleteUser(t.Context(), u.ID, del))
		wantUserNotFound(t, s, u.ID)
		wantPhoneNotFound(t, s, d.PhoneIDHash)
		wantPhoneNotFound(t, s, d2.PhoneIDHash)
		wantDeviceNotFound(t, s, d.ID)
		wantSessionNotFound(t, s, sess)
		wantKnown(t, s, u.ID, sess.IP, false)
		if ids := deviceIDs(t, s, u.ID); len(ids) != 0 {
			t.Fatalf("devices %v", ids)
		}
		if evs := listAudit(t, s, qrauth.AuditFilter{UserID: u.ID}); len(evs) != 0 {
			t.Fatalf("the deleted user still has audit events %+v", evs)
		}
		// The user's event keeps its place, kind and actor, and nothing
		// else.
		all := allAudit(t, s)
		if len(all) != 3 || !slices.Equal(seqs(all), []uint64{own.Seq, theirs.Seq, del.Seq}) {
			t.Fatalf("audit %+v", all)
		}
		same(t, "anonymized event", all[0], &qrauth.AuditEvent{Seq: own.Seq, Time: own.Time, Type: own.Type, Actor: "operator"})
		same(t, "other user's event", all[1], theirs)

		// The others are untouched, and the number can sign up afresh.
		findUser(t, s, other.ID)
		findSession(t, s, keep.ID)
		mustCreateUser(t, s, "alice")
	})
	t.Run("ErrNotFound", func(t *testing.T) {
		s := open(t)
		ev := newEvent(qrauth.AuditUserDeleted, "")
		wantError(t, s.DeleteUser(t.Context(), "u_nobody", ev), qrauth.ENOTFOUND, "user_not_found")
		wantSeqZero(t, ev)
	})
}

func testRemoveDevice(t *testing.T, open opener) {
	t.Run("OK", func(t *testing.T) {
		s := open(t)
		u, d := mustCreateUser(t, s, "alice")
		d2 := newDevice(u.ID, "alice2", t0)
		d2.PhoneIDHash = d.PhoneIDHash
		noError(t, s.CreateDevice(t.Context(), d2))
		byD, byD2, none := newSession(u.ID, d.ID, 1), newSession(u.ID, d2.ID, 2), newSession(u.ID, "", 3)
		for _, x := range []*qrauth.Session{byD, byD2, none} {
			mustCreateSession(t, s, x)
		}
		ev := newEvent(qrauth.AuditDeviceRemoved, u.ID)
		ended, err := s.RemoveDevice(t.Context(), d.ID, ev)
		noError(t, err)
		if ended != 1 {
			t.Fatalf("ended %d sessions, want 1", ended)
		}
		wantDeviceNotFound(t, s, d.ID)
		wantSessionNotFound(t, s, byD)
		findSession(t, s, byD2.ID)
		findSession(t, s, none.ID)
		wantAudit(t, s, ev)
	})
	t.Run("ErrNotFound", func(t *testing.T) {
		s := open(t)
		ev := newEvent(qrauth.AuditDeviceRemoved, "")
		_, err := s.RemoveDevice(t.Context(), "d_nothing", ev)
		wantError(t, err, qrauth.ENOTFOUND, "device_not_found")
		wantSeqZero(t, ev)
	})
}
