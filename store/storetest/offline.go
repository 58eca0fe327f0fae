package storetest

import (
	"testing"
	"time"

	"github.com/qrauth/qrauth"
	"github.com/qrauth/qrauth/offline"
	"github.com/qrauth/qrauth/wire"
)

func newCred(u *qrauth.User, d *qrauth.Device, m offline.Method, keyID string) *offline.Credential {
	return &offline.Credential{UserID: u.ID, DeviceID: d.ID, Method: m, SealedKey: []byte("sealed-" + keyID),
		KeyID: keyID, ActivatedAt: t0}
}

func newOfflineSession(id string, c *offline.Credential, ttl time.Duration) *offline.Session {
	return &offline.Session{ID: id, Purpose: offline.ForAPI, UserID: c.UserID, DeviceID: c.DeviceID,
		Method: c.Method, KeyID: c.KeyID, VerificationData: "1D6AAAAAAAAAAAcontext", State: offline.Pending,
		CreatedAt: t0, ExpiresAt: t0.Add(ttl)}
}

func attempt(id, keyID string, ok bool, at time.Time, onLock *qrauth.AuditEvent) offline.Attempt {
	return offline.Attempt{SessionID: id, KeyID: keyID, OK: ok, At: at, MaxFailures: 3, OnLock: onLock}
}

// testOffline checks the offline.Store methods.
// OfflineStore is what the offline suite runs against: the core store (to
// create users and devices) and the store interface the offline flow
// consumes.
type OfflineStore interface {
	qrauth.Store
	offline.Store
}

// RunOffline runs the offline flow's suite: the contract of
// offline.Store. open must return a new, empty store on every call.
func RunOffline(t *testing.T, open func(t *testing.T) OfflineStore) {
	t.Run("Offline", func(t *testing.T) { testOffline(t, open) })
}

func testOffline(t *testing.T, open func(t *testing.T) OfflineStore) {
	t.Run("Credentials", func(t *testing.T) {
		s := open(t)
		u, d := mustCreateUser(t, s, "alice")
		ev := newEvent(offline.AuditActivated, u.ID)
		c := newCred(u, d, offline.PIN, "k1")
		noError(t, s.PutOfflineCredential(t.Context(), c, ev))
		noError(t, s.PutOfflineCredential(t.Context(), newCred(u, d, offline.Device, "k2")))
		got, err := s.FindOfflineCredential(t.Context(), d.ID, offline.PIN)
		noError(t, err)
		same(t, "credential", got, c)
		list, err := s.FindOfflineCredentialsByUser(t.Context(), u.ID)
		noError(t, err)
		if len(list) != 2 || list[0].Method != offline.Device || list[1].Method != offline.PIN {
			t.Fatalf("list %+v", list)
		}
		wantAudit(t, s, ev)

		// Activating again replaces the key and clears failures.
		c.Failures = 2
		noError(t, s.PutOfflineCredential(t.Context(), c))
		c2 := newCred(u, d, offline.PIN, "k3")
		noError(t, s.PutOfflineCredential(t.Context(), c2))
		got, _ = s.FindOfflineCredential(t.Context(), d.ID, offline.PIN)
		same(t, "replaced", got, c2)

		del := newEvent(offline.AuditDeactivated, u.ID)
		noError(t, s.DeleteOfflineCredential(t.Context(), d.ID, offline.PIN, del))
		_, err = s.FindOfflineCredential(t.Context(), d.ID, offline.PIN)
		wantError(t, err, qrauth.ENOTFOUND, "offline_method_not_found")
		wantError(t, s.DeleteOfflineCredential(t.Context(), d.ID, offline.PIN), qrauth.ENOTFOUND, "offline_method_not_found")
		list, _ = s.FindOfflineCredentialsByUser(t.Context(), u.ID)
		if len(list) != 1 {
			t.Fatalf("after delete: %+v", list)
		}
	})
	t.Run("ErrDeviceOfAnotherUser", func(t *testing.T) {
		s := open(t)
		u, _ := mustCreateUser(t, s, "alice")
		_, d2 := mustCreateUser(t, s, "bob")
		ev := newEvent(offline.AuditActivated, u.ID)
		err := s.PutOfflineCredential(t.Context(), newCred(u, d2, offline.Device, "k"), ev)
		wantError(t, err, qrauth.ENOTFOUND, "device_not_found")
		wantSeqZero(t, ev)
		wantAudit(t, s)
		_, err = s.FindOfflineCredential(t.Context(), d2.ID, offline.Device)
		wantError(t, err, qrauth.ENOTFOUND, "offline_method_not_found")
	})
	t.Run("AttemptsLockAndUnlock", func(t *testing.T) {
		s := open(t)
		u, d := mustCreateUser(t, s, "alice")
		c := newCred(u, d, offline.PIN, "k1")
		noError(t, s.PutOfflineCredential(t.Context(), c))
		noError(t, s.PutOfflineCredential(t.Context(), newCred(u, d, offline.Device, "k2")))

		// Two wrong codes in one session, one in the next: the count
		// carries over and the third locks.
		noError(t, s.CreateOfflineSession(t.Context(), newOfflineSession("o1", c, time.Minute)))
		for i := 1; i <= 2; i++ {
			sess, cred, err := s.SettleOfflineAttempt(t.Context(), attempt("o1", "k1", false, t0, nil))
			noError(t, err)
			if sess.State != offline.Pending || sess.Failures != i || cred.Failures != i || cred.Locked {
				t.Fatalf("wrong code %d: %+v %+v", i, sess, cred)
			}
		}
		noError(t, s.CreateOfflineSession(t.Context(), newOfflineSession("o2", c, time.Minute)))
		lock := newEvent(offline.AuditLocked, u.ID)
		sess, cred, err := s.SettleOfflineAttempt(t.Context(), attempt("o2", "k1", false, t0, lock))
		noError(t, err)
		if sess.State != offline.Locked || !cred.Locked || cred.Failures != 3 || !sess.EndedAt.Equal(t0) {
			t.Fatalf("third wrong code: %+v %+v", sess, cred)
		}
		wantAudit(t, s, lock)

		// The first session, still pending, now ends locked, right code or not.
		sess, _, err = s.SettleOfflineAttempt(t.Context(), attempt("o1", "k1", true, t0, nil))
		noError(t, err)
		if sess.State != offline.Locked {
			t.Fatalf("session of a locked method: %+v", sess)
		}
		// A locked method is not replaced by activating it again.
		err = s.PutOfflineCredential(t.Context(), newCred(u, d, offline.PIN, "k9"))
		wantError(t, err, qrauth.ECONFLICT, "method_locked")
		// The other method is untouched.
		other, _ := s.FindOfflineCredential(t.Context(), d.ID, offline.Device)
		if other.Locked || other.Failures != 0 {
			t.Fatalf("other method %+v", other)
		}

		unlock := newEvent(offline.AuditUnlocked, u.ID)
		cred, err = s.UnlockOfflineCredential(t.Context(), d.ID, offline.PIN, unlock)
		noError(t, err)
		if cred.Locked || cred.Failures != 0 || !cred.LockedAt.IsZero() {
			t.Fatalf("unlocked %+v", cred)
		}
		wantAudit(t, s, lock, unlock)

		// One wrong, then right: success resets the count.
		noError(t, s.CreateOfflineSession(t.Context(), newOfflineSession("o3", c, time.Minute)))
		s.SettleOfflineAttempt(t.Context(), attempt("o3", "k1", false, t0, nil))
		ok := newEvent(offline.AuditVerified, u.ID)
		a := attempt("o3", "k1", true, t0.Add(time.Second), nil)
		a.OnSuccess = ok
		sess, cred, err = s.SettleOfflineAttempt(t.Context(), a)
		noError(t, err)
		if sess.State != offline.Succeeded || cred.Failures != 0 || !cred.LastUsedAt.Equal(t0.Add(time.Second)) {
			t.Fatalf("success %+v %+v", sess, cred)
		}
		wantAudit(t, s, lock, unlock, ok)
		// Never twice.
		_, _, err = s.SettleOfflineAttempt(t.Context(), attempt("o3", "k1", true, t0, nil))
		wantError(t, err, qrauth.ECONFLICT, "session_succeeded")
		_, _, err = s.SettleOfflineAttempt(t.Context(), attempt("missing", "k1", true, t0, nil))
		wantError(t, err, qrauth.ENOTFOUND, "offline_session_not_found")
	})
	t.Run("SessionFailsWhenKeyChanges", func(t *testing.T) {
		s := open(t)
		u, d := mustCreateUser(t, s, "alice")
		c := newCred(u, d, offline.Device, "k1")
		noError(t, s.PutOfflineCredential(t.Context(), c))
		noError(t, s.CreateOfflineSession(t.Context(), newOfflineSession("o1", c, time.Minute)))
		noError(t, s.PutOfflineCredential(t.Context(), newCred(u, d, offline.Device, "k2")))
		sess, cred, err := s.SettleOfflineAttempt(t.Context(), attempt("o1", "k2", true, t0, nil))
		noError(t, err)
		if sess.State != offline.Failed || cred.Failures != 0 {
			t.Fatalf("%+v %+v", sess, cred)
		}
		noError(t, s.CreateOfflineSession(t.Context(), newOfflineSession("o2", newCred(u, d, offline.Device, "k2"), time.Minute)))
		noError(t, s.DeleteOfflineCredential(t.Context(), d.ID, offline.Device))
		sess, cred, err = s.SettleOfflineAttempt(t.Context(), attempt("o2", "k2", true, t0, nil))
		noError(t, err)
		if sess.State != offline.Failed || cred != nil {
			t.Fatalf("deactivated: %+v %+v", sess, cred)
		}
	})
	t.Run("ExpiryAndCancel", func(t *testing.T) {
		s := open(t)
		u, d := mustCreateUser(t, s, "alice")
		c := newCred(u, d, offline.Device, "k1")
		noError(t, s.PutOfflineCredential(t.Context(), c))
		noError(t, s.CreateOfflineSession(t.Context(), newOfflineSession("o1", c, time.Minute)))
		wantError(t, s.CreateOfflineSession(t.Context(), newOfflineSession("o1", c, time.Minute)), qrauth.ECONFLICT, "session_exists")
		_, _, err := s.SettleOfflineAttempt(t.Context(), attempt("o1", "k1", false, t0.Add(time.Minute), nil))
		wantError(t, err, qrauth.EEXPIRED, "session_expired")
		cred, _ := s.FindOfflineCredential(t.Context(), d.ID, offline.Device)
		if cred.Failures != 0 {
			t.Fatal("an attempt on an expired session counted")
		}
		_, err = s.CancelOfflineSession(t.Context(), "o1", t0.Add(time.Minute))
		wantError(t, err, qrauth.EEXPIRED, "session_expired")

		noError(t, s.CreateOfflineSession(t.Context(), newOfflineSession("o2", c, time.Minute)))
		sess, err := s.CancelOfflineSession(t.Context(), "o2", t0)
		noError(t, err)
		if sess.State != offline.Cancelled {
			t.Fatalf("%+v", sess)
		}
		if _, err := s.CancelOfflineSession(t.Context(), "o2", t0); err != nil {
			t.Fatalf("cancel twice: %v", err)
		}
		_, _, err = s.SettleOfflineAttempt(t.Context(), attempt("o2", "k1", true, t0, nil))
		wantError(t, err, qrauth.ECONFLICT, "session_cancelled")
		got, err := s.FindOfflineSession(t.Context(), "o2")
		noError(t, err)
		if got.Status(t0) != offline.Cancelled {
			t.Fatalf("%+v", got)
		}

		// Records expired before the cut-off go, later ones stay.
		noError(t, s.CreateOfflineSession(t.Context(), newOfflineSession("o3", c, time.Hour)))
		n, err := s.DeleteOfflineRecords(t.Context(), t0.Add(2*time.Minute))
		noError(t, err)
		if n != 2 {
			t.Fatalf("deleted %d, want 2", n)
		}
		_, err = s.FindOfflineSession(t.Context(), "o1")
		wantError(t, err, qrauth.ENOTFOUND, "offline_session_not_found")
		if _, err := s.FindOfflineSession(t.Context(), "o3"); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("Approvals", func(t *testing.T) {
		s := open(t)
		u, d := mustCreateUser(t, s, "alice")
		a := &offline.Approval{ID: "t1", UserID: u.ID, Text: "Pay 10 CHF", TextSHA256: wire.TextSHA256("Pay 10 CHF"),
			TokenHash: qrauth.HashToken("token1"), ViewTokenHash: qrauth.HashToken("view1"),
			State: offline.ApprovalPending, CreatedAt: t0, ExpiresAt: t0.Add(time.Minute)}
		noError(t, s.CreateApproval(t.Context(), a))
		wantError(t, s.CreateApproval(t.Context(), a), qrauth.ECONFLICT, "approval_exists")
		got, err := s.FindApprovalByTokenHash(t.Context(), qrauth.HashToken("token1"))
		noError(t, err)
		same(t, "approval", got, a)
		_, err = s.FindApprovalByTokenHash(t.Context(), qrauth.HashToken("token2"))
		wantError(t, err, qrauth.ENOTFOUND, "approval_not_found")

		got, err = s.ScanApproval(t.Context(), "t1", d.ID, t0.Add(time.Second))
		noError(t, err)
		if got.ScannedBy != d.ID {
			t.Fatalf("%+v", got)
		}
		ev := newEvent(offline.AuditApprovalApproved, u.ID)
		got, err = s.DecideApproval(t.Context(), "t1", offline.ApprovalDecision{State: offline.ApprovalApproved,
			DeviceID: d.ID, Signature: "sig", At: t0.Add(2 * time.Second)}, ev)
		noError(t, err)
		if got.State != offline.ApprovalApproved || got.Signature != "sig" || got.DecidedBy != d.ID {
			t.Fatalf("%+v", got)
		}
		wantAudit(t, s, ev)
		ev2 := newEvent(offline.AuditApprovalDenied, u.ID)
		_, err = s.DecideApproval(t.Context(), "t1", offline.ApprovalDecision{State: offline.ApprovalDenied, At: t0}, ev2)
		wantError(t, err, qrauth.ECONFLICT, "approval_approved")
		wantSeqZero(t, ev2)
		_, err = s.ScanApproval(t.Context(), "t1", d.ID, t0)
		wantError(t, err, qrauth.ECONFLICT, "approval_approved")

		b := *a
		b.ID, b.TokenHash = "t2", qrauth.HashToken("token2")
		noError(t, s.CreateApproval(t.Context(), &b))
		_, err = s.DecideApproval(t.Context(), "t2", offline.ApprovalDecision{State: offline.ApprovalApproved, At: t0.Add(time.Minute)})
		wantError(t, err, qrauth.EEXPIRED, "approval_expired")
		n, err := s.DeleteOfflineRecords(t.Context(), t0.Add(time.Hour))
		noError(t, err)
		if n != 2 {
			t.Fatalf("deleted %d", n)
		}
		_, err = s.FindApprovalByTokenHash(t.Context(), qrauth.HashToken("token1"))
		wantError(t, err, qrauth.ENOTFOUND, "approval_not_found")
	})
}
