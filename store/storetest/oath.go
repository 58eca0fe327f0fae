package storetest

import (
	"sync"
	"testing"
	"time"

	"github.com/qrauth/qrauth"
	"github.com/qrauth/qrauth/oath"
)

func newOATHToken(id string, kind oath.Kind) *oath.Token {
	return &oath.Token{ID: id, Kind: kind, Algorithm: oath.SHA1, Digits: 6, Period: 30,
		Secret: []byte("sealed:" + id), Source: oath.SourceAccount, CreatedAt: t0}
}

func findOATH(t *testing.T, s OATHStore, id qrauth.UserID) *oath.Account {
	t.Helper()
	a, err := s.FindOATHAccount(t.Context(), id)
	noError(t, err)
	return a
}

// activeOATH returns a store with user "oath" holding the active token
// t_1, confirmed at counter 100.
func activeOATH(t *testing.T, open oathOpener) (OATHStore, qrauth.UserID) {
	t.Helper()
	st := open(t)
	u, _ := mustCreateUser(t, st, "oath")
	_, err := st.PutOATHPending(t.Context(), u.ID, newOATHToken("t_1", oath.TOTP))
	noError(t, err)
	_, err = st.ActivateOATHPending(t.Context(), u.ID, oath.Use{TokenID: "t_1", Counter: 100, Offset: 1, At: t0})
	noError(t, err)
	return st, u.ID
}

// OATHStore is what the OATH suite runs against: the core store (to create
// users) and the store interface the OATH flow consumes.
type OATHStore interface {
	qrauth.Store
	oath.Store
}

type oathOpener = func(t *testing.T) OATHStore

// RunOATH runs the OATH flow's suite: the contract of oath.Store.
// open must return a new, empty store on every call.
func RunOATH(t *testing.T, open func(t *testing.T) OATHStore) {
	t.Run("OATH", func(t *testing.T) { testOATH(t, open) })
}

// testOATH checks the oath.Store methods.
func testOATH(t *testing.T, open oathOpener) {
	ctx := t.Context
	t.Run("NotFound", func(t *testing.T) {
		st := open(t)
		_, err := st.FindOATHAccount(ctx(), "u_missing")
		wantError(t, err, qrauth.ENOTFOUND, "user_not_found")
		u, _ := mustCreateUser(t, st, "oath")
		_, err = st.FindOATHAccount(ctx(), u.ID)
		wantError(t, err, qrauth.ENOTFOUND, "oath_not_found")
		_, err = st.PutOATHPending(ctx(), "u_missing", newOATHToken("t_1", oath.TOTP))
		wantError(t, err, qrauth.ENOTFOUND, "user_not_found")
		wantError(t, st.DeleteOATHAccount(ctx(), u.ID), qrauth.ENOTFOUND, "oath_not_found")
		_, err = st.UnlockOATHAccount(ctx(), u.ID)
		wantError(t, err, qrauth.ENOTFOUND, "oath_not_found")
		_, err = st.RecordOATHUse(ctx(), u.ID, oath.Use{TokenID: "t_1"})
		wantError(t, err, qrauth.ENOTFOUND, "oath_not_found")
	})

	t.Run("PendingThenActive", func(t *testing.T) {
		st := open(t)
		u, _ := mustCreateUser(t, st, "oath")
		ev := newEvent(oath.AuditSecretAdded, u.ID)
		a, err := st.PutOATHPending(ctx(), u.ID, newOATHToken("t_1", oath.TOTP))
		noError(t, err)
		if a.Active() || a.Pending == nil || a.Pending.ID != "t_1" || a.UserID != u.ID {
			t.Fatalf("after PutOATHPending: %+v", a)
		}
		// A newer enrolment replaces the pending token.
		_, err = st.PutOATHPending(ctx(), u.ID, newOATHToken("t_2", oath.TOTP))
		noError(t, err)
		_, err = st.ActivateOATHPending(ctx(), u.ID, oath.Use{TokenID: "t_1", Counter: 5, At: t0}, ev)
		wantError(t, err, qrauth.ECONFLICT, "oath_pending_changed")
		if ev.Seq != 0 {
			t.Fatal("event appended for a refused activation")
		}
		at := t0.Add(time.Minute)
		a, err = st.ActivateOATHPending(ctx(), u.ID, oath.Use{TokenID: "t_2", Counter: 5, Offset: -1, At: at}, ev)
		noError(t, err)
		if ev.Seq == 0 {
			t.Fatal("activation event not appended")
		}
		got := findOATH(t, st, u.ID)
		if !got.Active() || got.Token.ID != "t_2" || got.Pending != nil || got.NextCounter != 6 || got.Offset != -1 ||
			!got.ActivatedAt.Equal(at) || !got.LastUsedAt.Equal(at) || string(got.Token.Secret) != "sealed:t_2" {
			t.Fatalf("after activation: %+v", got)
		}
		same(t, "returned account", a.Token, got.Token)
		// The same pending token cannot be activated twice.
		_, err = st.ActivateOATHPending(ctx(), u.ID, oath.Use{TokenID: "t_2", Counter: 7, At: at})
		wantError(t, err, qrauth.ECONFLICT, "oath_pending_changed")

		// Re-enrolment keeps the active token until the new one is confirmed.
		_, err = st.PutOATHPending(ctx(), u.ID, newOATHToken("t_3", oath.HOTP))
		noError(t, err)
		if got := findOATH(t, st, u.ID); got.Token.ID != "t_2" || got.Pending.ID != "t_3" {
			t.Fatalf("during re-enrolment: %+v", got)
		}
	})

	t.Run("Replay", func(t *testing.T) {
		st, uid := activeOATH(t, open)
		_, err := st.RecordOATHUse(ctx(), uid, oath.Use{TokenID: "t_1", Counter: 100, At: t0})
		wantError(t, err, qrauth.ECONFLICT, "oath_replayed")
		_, err = st.RecordOATHUse(ctx(), uid, oath.Use{TokenID: "t_1", Counter: 99, At: t0})
		wantError(t, err, qrauth.ECONFLICT, "oath_replayed")
		_, err = st.RecordOATHUse(ctx(), uid, oath.Use{TokenID: "t_0", Counter: 200, At: t0})
		wantError(t, err, qrauth.ECONFLICT, "oath_changed")
		a, err := st.RecordOATHUse(ctx(), uid, oath.Use{TokenID: "t_1", Counter: 101, Offset: 2, At: t0.Add(time.Hour)})
		noError(t, err)
		if a.NextCounter != 102 || a.Offset != 2 || !a.LastUsedAt.Equal(t0.Add(time.Hour)) {
			t.Fatalf("after use: %+v", a)
		}
		_, err = st.RecordOATHUse(ctx(), uid, oath.Use{TokenID: "t_1", Counter: 101, At: t0})
		wantError(t, err, qrauth.ECONFLICT, "oath_replayed")
	})

	t.Run("ConcurrentReplay", func(t *testing.T) {
		st, uid := activeOATH(t, open)
		var wg sync.WaitGroup
		errs := make(chan error, 8)
		for range 8 {
			wg.Go(func() {
				_, err := st.RecordOATHUse(ctx(), uid, oath.Use{TokenID: "t_1", Counter: 150, At: t0})
				errs <- err
			})
		}
		wg.Wait()
		close(errs)
		ok := 0
		for err := range errs {
			if err == nil {
				ok++
			} else if qrauth.ErrorReason(err) != "oath_replayed" {
				t.Fatal(err)
			}
		}
		if ok != 1 {
			t.Fatalf("the same code was accepted %d times", ok)
		}
	})

	t.Run("LockAndUnlock", func(t *testing.T) {
		st, uid := activeOATH(t, open)
		lock := newEvent(oath.AuditLocked, uid)
		for i := 1; i <= 2; i++ {
			a, err := st.RecordOATHFailure(ctx(), uid, "t_1", t0, 3, lock)
			noError(t, err)
			if a.Failures != i || a.Locked() || lock.Seq != 0 {
				t.Fatalf("failure %d: %+v (lock event seq %d)", i, a, lock.Seq)
			}
		}
		// A success in between resets the count.
		_, err := st.RecordOATHUse(ctx(), uid, oath.Use{TokenID: "t_1", Counter: 101, At: t0})
		noError(t, err)
		if a := findOATH(t, st, uid); a.Failures != 0 {
			t.Fatalf("failures after success: %d", a.Failures)
		}
		_, err = st.RecordOATHFailure(ctx(), uid, "t_0", t0, 3, lock)
		wantError(t, err, qrauth.ECONFLICT, "oath_changed")
		for range 3 {
			_, err = st.RecordOATHFailure(ctx(), uid, "t_1", t0.Add(time.Minute), 3, lock)
			noError(t, err)
		}
		a := findOATH(t, st, uid)
		if !a.Locked() || !a.LockedAt.Equal(t0.Add(time.Minute)) || lock.Seq == 0 {
			t.Fatalf("not locked after 3 failures: %+v (lock event seq %d)", a, lock.Seq)
		}
		// Locked: neither failures nor successes count any more.
		_, err = st.RecordOATHFailure(ctx(), uid, "t_1", t0, 3)
		wantError(t, err, qrauth.EFORBIDDEN, "oath_locked")
		_, err = st.RecordOATHUse(ctx(), uid, oath.Use{TokenID: "t_1", Counter: 300, At: t0})
		wantError(t, err, qrauth.EFORBIDDEN, "oath_locked")

		unlock := newEvent(oath.AuditUnlocked, uid)
		a, err = st.UnlockOATHAccount(ctx(), uid, unlock)
		noError(t, err)
		if a.Locked() || a.Failures != 0 || unlock.Seq == 0 {
			t.Fatalf("after unlock: %+v", a)
		}
		again := newEvent(oath.AuditUnlocked, uid)
		_, err = st.UnlockOATHAccount(ctx(), uid, again)
		wantError(t, err, qrauth.ECONFLICT, "oath_not_locked")
		if again.Seq != 0 {
			t.Fatal("event appended for a refused unlock")
		}
		_, err = st.RecordOATHUse(ctx(), uid, oath.Use{TokenID: "t_1", Counter: 300, At: t0})
		noError(t, err)
	})

	t.Run("CreateToken", func(t *testing.T) {
		st := open(t)
		u, _ := mustCreateUser(t, st, "oath")
		_, err := st.PutOATHPending(ctx(), u.ID, newOATHToken("t_p", oath.TOTP))
		noError(t, err)
		ev := newEvent(oath.AuditLetterOrdered, u.ID)
		a, err := st.CreateOATHToken(ctx(), u.ID, newOATHToken("t_l", oath.HOTP), ev)
		noError(t, err)
		if !a.Active() || a.Token.ID != "t_l" || a.Pending != nil || a.NextCounter != 0 || ev.Seq == 0 {
			t.Fatalf("after CreateOATHToken: %+v", a)
		}
		ev2 := newEvent(oath.AuditLetterOrdered, u.ID)
		_, err = st.CreateOATHToken(ctx(), u.ID, newOATHToken("t_x", oath.TOTP), ev2)
		wantError(t, err, qrauth.ECONFLICT, "oath_exists")
		if ev2.Seq != 0 || findOATH(t, st, u.ID).Token.ID != "t_l" {
			t.Fatal("refused CreateOATHToken changed something")
		}
		_, err = st.CreateOATHToken(ctx(), u.ID, &oath.Token{ID: "t_bad", Kind: oath.TOTP})
		wantError(t, err, qrauth.EINVALID, "")
	})

	t.Run("Delete", func(t *testing.T) {
		st, uid := activeOATH(t, open)
		ev := newEvent(oath.AuditSecretDeleted, uid)
		noError(t, st.DeleteOATHAccount(ctx(), uid, ev))
		if ev.Seq == 0 {
			t.Fatal("delete event not appended")
		}
		_, err := st.FindOATHAccount(ctx(), uid)
		wantError(t, err, qrauth.ENOTFOUND, "oath_not_found")
		// A fresh enrolment starts from scratch: no replay state survives.
		_, err = st.PutOATHPending(ctx(), uid, newOATHToken("t_2", oath.TOTP))
		noError(t, err)
		a, err := st.ActivateOATHPending(ctx(), uid, oath.Use{TokenID: "t_2", Counter: 1, At: t0})
		noError(t, err)
		if a.NextCounter != 2 || a.Failures != 0 {
			t.Fatalf("%+v", a)
		}
	})
}
