package storetest

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/qrauth/qrauth"
	"github.com/qrauth/qrauth/recovery"
)

// RecoveryStore is what the recovery suite runs against: the core store
// and the store interface the recovery flow consumes.
type RecoveryStore interface {
	qrauth.Store
	recovery.Store
}

// RunRecovery runs the recovery flow's suite: the contract of
// recovery.Store. open must return a new, empty store on every call.
func RunRecovery(t *testing.T, open func(t *testing.T) RecoveryStore) {
	t.Run("Recovery", func(t *testing.T) { testRecovery(t, open) })
}

// codeHash stands for recovery.Hash of a code: the store only ever sees
// 32-byte hashes.
func codeHash(s string) []byte { h := sha256.Sum256([]byte(s)); return h[:] }

func codeSet(prefix string) [][]byte {
	var hs [][]byte
	for i := range recovery.SetSize {
		hs = append(hs, codeHash(fmt.Sprintf("%s-%d", prefix, i)))
	}
	return hs
}

// newPhone is a device not yet linked to anyone.
func newPhone(name string) *qrauth.Device {
	d := newDevice("", name, t0)
	d.UserID = ""
	return d
}

func testRecovery(t *testing.T, open func(t *testing.T) RecoveryStore) {
	ctx := t.Context
	redeem := func(st RecoveryStore, h []byte, phone string, at time.Time) (*recovery.Redeemed, error) {
		return st.RedeemRecovery(ctx(), &recovery.Redemption{Hash: h, Now: at, Device: newPhone(phone), IP: "192.0.2.9"})
	}

	t.Run("NotFound", func(t *testing.T) {
		st := open(t)
		_, err := st.FindRecoveryStatus(ctx(), "u_missing")
		wantError(t, err, qrauth.ENOTFOUND, "user_not_found")
		_, err = st.ReplaceRecoveryCodes(ctx(), "u_missing", codeSet("a"), t0)
		wantError(t, err, qrauth.ENOTFOUND, "user_not_found")
		err = st.CreateLinkCode(ctx(), &recovery.LinkCode{Hash: codeHash("l"), UserID: "u_missing", IssuedBy: "operator", ExpiresAt: t0.Add(time.Minute)})
		wantError(t, err, qrauth.ENOTFOUND, "user_not_found")
		_, err = redeem(st, codeHash("nothing"), "new", t0)
		wantError(t, err, qrauth.EUNAUTHORIZED, "bad_recovery_code")
		_, err = st.RecordRecoveryFailure(ctx(), "u_missing", t0, 3, nil)
		wantError(t, err, qrauth.ENOTFOUND, "user_not_found")
	})

	t.Run("Invalid", func(t *testing.T) {
		st := open(t)
		u, _ := mustCreateUser(t, st, "rec")
		_, err := st.ReplaceRecoveryCodes(ctx(), u.ID, [][]byte{[]byte("short")}, t0)
		wantError(t, err, qrauth.EINVALID, "")
		_, err = st.ReplaceRecoveryCodes(ctx(), u.ID, [][]byte{codeHash("x"), codeHash("x")}, t0)
		wantError(t, err, qrauth.EINVALID, "")
		err = st.CreateLinkCode(ctx(), &recovery.LinkCode{Hash: codeHash("l"), UserID: u.ID, IssuedBy: "operator"})
		wantError(t, err, qrauth.EINVALID, "")
		s, err := st.FindRecoveryStatus(ctx(), u.ID)
		noError(t, err)
		if s.Remaining != 0 {
			t.Fatalf("refused calls changed the status: %+v", s)
		}
	})

	t.Run("RegenerateReplaces", func(t *testing.T) {
		st := open(t)
		u, _ := mustCreateUser(t, st, "rec")
		ev := newEvent(recovery.AuditCodesGenerated, u.ID)
		s, err := st.ReplaceRecoveryCodes(ctx(), u.ID, codeSet("first"), t0, ev)
		noError(t, err)
		if s.Remaining != recovery.SetSize || !s.GeneratedAt.Equal(t0) || ev.Seq == 0 {
			t.Fatalf("after first set: %+v, event seq %d", s, ev.Seq)
		}
		s, err = st.ReplaceRecoveryCodes(ctx(), u.ID, codeSet("second"), t0.Add(time.Hour))
		noError(t, err)
		if s.Remaining != recovery.SetSize {
			t.Fatalf("after second set: %+v", s)
		}
		_, err = redeem(st, codeSet("first")[0], "new", t0)
		wantError(t, err, qrauth.EUNAUTHORIZED, "bad_recovery_code")
		r, err := redeem(st, codeSet("second")[3], "new", t0)
		noError(t, err)
		if r.UserID != u.ID || r.Kind != recovery.KindRecovery || r.Remaining != recovery.SetSize-1 {
			t.Fatalf("Redeemed = %+v", r)
		}
	})

	t.Run("RedeemLinksAndEndsSessions", func(t *testing.T) {
		st := open(t)
		u, d := mustCreateUser(t, st, "rec")
		other, od := mustCreateUser(t, st, "other")
		mustCreateSession(t, st, newSession(u.ID, d.ID, 1))
		mustCreateSession(t, st, newSession(u.ID, d.ID, 2))
		mustCreateSession(t, st, newSession(other.ID, od.ID, 1))
		_, err := st.ReplaceRecoveryCodes(ctx(), u.ID, codeSet("c"), t0)
		noError(t, err)
		r, err := redeem(st, codeSet("c")[0], "new", t0.Add(time.Minute))
		noError(t, err)
		if r.SessionsEnded != 2 || r.Event == nil || r.Event.Seq == 0 || r.Event.Type != recovery.AuditRecovered ||
			r.Event.UserID != u.ID || r.Event.DeviceID != "d_new" {
			t.Fatalf("Redeemed = %+v, event %+v", r, r.Event)
		}
		if ss, err := st.FindSessionsByUser(ctx(), u.ID); err != nil || len(ss) != 0 {
			t.Fatalf("sessions after recovery: %v, %v", ss, err)
		}
		if ss, err := st.FindSessionsByUser(ctx(), other.ID); err != nil || len(ss) != 1 {
			t.Fatalf("another user's sessions: %v, %v", ss, err)
		}
		dev, err := st.FindDeviceByID(ctx(), "d_new")
		noError(t, err)
		if dev.UserID != u.ID {
			t.Fatalf("new phone belongs to %q", dev.UserID)
		}
		// Used once: a second try, even with another phone, fails.
		_, err = redeem(st, codeSet("c")[0], "newer", t0)
		wantError(t, err, qrauth.EUNAUTHORIZED, "bad_recovery_code")
		evs, err := st.ListAudit(ctx(), qrauth.AuditFilter{UserID: u.ID})
		noError(t, err)
		if n := len(evs); n == 0 || evs[n-1].Type != recovery.AuditRecovered {
			t.Fatalf("audit: %+v", evs)
		}
	})

	t.Run("RefusedRedeemKeepsCode", func(t *testing.T) {
		st := open(t)
		u, d := mustCreateUser(t, st, "rec")
		mustCreateUser(t, st, "other")
		mustCreateSession(t, st, newSession(u.ID, d.ID, 1))
		_, err := st.ReplaceRecoveryCodes(ctx(), u.ID, codeSet("c"), t0)
		noError(t, err)
		// The phone named "other" is another user's device already.
		_, err = st.RedeemRecovery(ctx(), &recovery.Redemption{Hash: codeSet("c")[0], Now: t0, Device: newDevice("", "other", t0)})
		wantError(t, err, qrauth.ECONFLICT, "device_exists")
		if ss, _ := st.FindSessionsByUser(ctx(), u.ID); len(ss) != 1 {
			t.Fatal("a refused redemption ended sessions")
		}
		_, err = redeem(st, codeSet("c")[0], "new", t0)
		noError(t, err)
	})

	t.Run("DisabledAccountKeepsCode", func(t *testing.T) {
		st := open(t)
		u, _ := mustCreateUser(t, st, "rec")
		_, err := st.ReplaceRecoveryCodes(ctx(), u.ID, codeSet("c"), t0)
		noError(t, err)
		_, _, err = st.DisableUser(ctx(), u.ID, qrauth.Disabled{At: t0, By: "operator"})
		noError(t, err)
		// A disabled account is not recovered: no phone is linked and the
		// code is not burned.
		_, err = redeem(st, codeSet("c")[0], "new", t0)
		if !errors.Is(err, qrauth.ErrAccountDisabled) {
			t.Fatalf("redeem on a disabled account: %v, want account_disabled", err)
		}
		if ds, _ := st.FindDevicesByUser(ctx(), u.ID); len(ds) != 1 {
			t.Fatalf("a refused redemption linked a phone: %d devices", len(ds))
		}
		_, err = st.EnableUser(ctx(), u.ID)
		noError(t, err)
		_, err = redeem(st, codeSet("c")[0], "new", t0)
		noError(t, err)
	})

	t.Run("ConcurrentSingleUse", func(t *testing.T) {
		st := open(t)
		u, _ := mustCreateUser(t, st, "rec")
		_, err := st.ReplaceRecoveryCodes(ctx(), u.ID, codeSet("c"), t0)
		noError(t, err)
		const n = 8
		var wg sync.WaitGroup
		errs := make([]error, n)
		for i := range n {
			wg.Go(func() { _, errs[i] = redeem(st, codeSet("c")[5], fmt.Sprintf("p%d", i), t0) })
		}
		wg.Wait()
		ok := 0
		for _, err := range errs {
			if err == nil {
				ok++
			} else if qrauth.ErrorCode(err) != qrauth.EUNAUTHORIZED {
				t.Fatalf("concurrent redemption: %v", err)
			}
		}
		devs, err := st.FindDevicesByUser(ctx(), u.ID)
		noError(t, err)
		if ok != 1 || len(devs) != 2 {
			t.Fatalf("%d redemptions succeeded, user has %d devices; want 1 and 2", ok, len(devs))
		}
	})

	t.Run("LinkCodeExpires", func(t *testing.T) {
		st := open(t)
		u, _ := mustCreateUser(t, st, "rec")
		ev := newEvent(recovery.AuditLinkIssued, u.ID)
		noError(t, st.CreateLinkCode(ctx(), &recovery.LinkCode{Hash: codeHash("l1"), UserID: u.ID, IssuedBy: "operator",
			CreatedAt: t0, ExpiresAt: t0.Add(15 * time.Minute)}, ev))
		noError(t, st.CreateLinkCode(ctx(), &recovery.LinkCode{Hash: codeHash("l2"), UserID: u.ID, IssuedBy: "u_helpdesk",
			CreatedAt: t0, ExpiresAt: t0.Add(15 * time.Minute)}))
		if ev.Seq == 0 {
			t.Fatal("link code event not appended")
		}
		_, err := redeem(st, codeHash("l1"), "new", t0.Add(15*time.Minute))
		wantError(t, err, qrauth.EEXPIRED, "link_code_expired")
		r, err := redeem(st, codeHash("l2"), "new", t0.Add(14*time.Minute))
		noError(t, err)
		if r.Kind != recovery.KindLink || r.IssuedBy != "u_helpdesk" || !bytes.Contains([]byte(r.Event.Detail), []byte("u_helpdesk")) {
			t.Fatalf("Redeemed = %+v", r)
		}
		n, err := st.DeleteExpiredLinkCodes(ctx(), t0.Add(15*time.Minute))
		noError(t, err)
		if n != 1 {
			t.Fatalf("DeleteExpiredLinkCodes = %d, want 1", n)
		}
		_, err = redeem(st, codeHash("l1"), "newer", t0)
		wantError(t, err, qrauth.EUNAUTHORIZED, "bad_recovery_code")
	})

	t.Run("LockAfterFailures", func(t *testing.T) {
		st := open(t)
		u, _ := mustCreateUser(t, st, "rec")
		_, err := st.ReplaceRecoveryCodes(ctx(), u.ID, codeSet("c"), t0)
		noError(t, err)
		lock := newEvent(recovery.AuditLocked, u.ID)
		for i := 1; i <= 3; i++ {
			s, err := st.RecordRecoveryFailure(ctx(), u.ID, t0, 3, lock)
			noError(t, err)
			if s.Failures != i || s.Locked != (i == 3) {
				t.Fatalf("after %d failures: %+v", i, s)
			}
		}
		if lock.Seq == 0 {
			t.Fatal("lock event not appended")
		}
		_, err = redeem(st, codeSet("c")[0], "new", t0)
		wantError(t, err, qrauth.EFORBIDDEN, "recovery_locked")
		// A helpdesk link code still works, and lifts the lock.
		noError(t, st.CreateLinkCode(ctx(), &recovery.LinkCode{Hash: codeHash("l"), UserID: u.ID, IssuedBy: "operator",
			CreatedAt: t0, ExpiresAt: t0.Add(time.Minute)}))
		_, err = redeem(st, codeHash("l"), "new", t0)
		noError(t, err)
		s, err := st.FindRecoveryStatus(ctx(), u.ID)
		noError(t, err)
		if s.Locked || s.Failures != 0 || s.Remaining != recovery.SetSize {
			t.Fatalf("after link code: %+v", s)
		}
		_, err = redeem(st, codeSet("c")[0], "newer", t0)
		noError(t, err)
	})
}
