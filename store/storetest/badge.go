package storetest

import (
	"bytes"
	"fmt"
	"testing"
	"time"

	"github.com/qrauth/qrauth"
	"github.com/qrauth/qrauth/badge"
)

func newPassword(uid qrauth.UserID, n byte) *badge.Password {
	return &badge.Password{
		UserID: uid, Algorithm: badge.PasswordAlgorithm,
		Params: badge.PasswordParams{Time: 1, Memory: 64, Threads: 1, KeyLen: 32},
		Salt:   bytes.Repeat([]byte{n}, 16), Hash: bytes.Repeat([]byte{n + 1}, 32), Stamp: bytes.Repeat([]byte{n + 2}, 32),
		SetAt: t0.Add(time.Duration(n) * time.Minute),
	}
}

func newBadge(uid qrauth.UserID, n byte, kind badge.Kind) *badge.Badge {
	b := &badge.Badge{
		ID: badge.IDFromBytes(bytes.Repeat([]byte{n}, 16)), UserID: uid, Kind: kind,
		CreatedBy: "operator", CreatedAt: t0.Add(time.Duration(n) * time.Minute),
	}
	if kind == badge.Secure {
		b.Credential = []byte("12345678")
		b.ExpiresAt = t0.Add(365 * 24 * time.Hour)
	}
	return b
}

// testBadge checks the badge.Store methods.
// BadgeStore is what the badge suite runs against: the core store (to
// create users) and the store interface the badge flow consumes.
type BadgeStore interface {
	qrauth.Store
	badge.Store
}

// RunBadge runs the badge flow's suite: the contract of badge.Store.
// open must return a new, empty store on every call.
func RunBadge(t *testing.T, open func(t *testing.T) BadgeStore) {
	t.Run("Badges", func(t *testing.T) { testBadge(t, open) })
}

func testBadge(t *testing.T, open func(t *testing.T) BadgeStore) {
	t.Run("Password", func(t *testing.T) {
		st := open(t)
		ctx := t.Context()
		u, _ := mustCreateUser(t, st, "pw")
		_, err := st.FindPassword(ctx, u.ID)
		wantError(t, err, qrauth.ENOTFOUND, "no_password")

		first := newPassword(u.ID, 1)
		ev := newEvent(badge.AuditPasswordSet, u.ID)
		noError(t, st.SetPassword(ctx, first, nil, ev))
		if ev.Seq == 0 {
			t.Fatal("event not appended")
		}
		got, err := st.FindPassword(ctx, u.ID)
		noError(t, err)
		same(t, "password", got, first)
		got.Hash[0] ^= 0xff // a copy: the store must not change
		if again, _ := st.FindPassword(ctx, u.ID); !bytes.Equal(again.Hash, first.Hash) {
			t.Fatal("FindPassword returned the store's own slice")
		}

		// A second "first" password, or a change naming another stamp,
		// is a lost race: refused, nothing appended.
		for name, prev := range map[string][]byte{"NilPrev": nil, "WrongPrev": []byte("not the stamp")} {
			ev := newEvent(badge.AuditPasswordChanged, u.ID)
			wantError(t, st.SetPassword(ctx, newPassword(u.ID, 5), prev, ev), qrauth.ECONFLICT, "password_changed")
			if ev.Seq != 0 {
				t.Fatalf("%s: event appended for a refused change", name)
			}
		}
		second := newPassword(u.ID, 9)
		noError(t, st.SetPassword(ctx, second, first.Stamp, newEvent(badge.AuditPasswordChanged, u.ID)))
		got, _ = st.FindPassword(ctx, u.ID)
		same(t, "changed password", got, second)

		// Rehash with the same stamp (stronger parameters).
		rehash := newPassword(u.ID, 9)
		rehash.Params.Time, rehash.Hash = 3, []byte("another hash")
		noError(t, st.SetPassword(ctx, rehash, second.Stamp))
		got, _ = st.FindPassword(ctx, u.ID)
		same(t, "rehashed password", got, rehash)

		wantError(t, st.DeletePassword(ctx, u.ID, first.Stamp), qrauth.ECONFLICT, "password_changed")
		ev = newEvent(badge.AuditPasswordRemoved, u.ID)
		noError(t, st.DeletePassword(ctx, u.ID, rehash.Stamp, ev))
		if ev.Seq == 0 {
			t.Fatal("event not appended")
		}
		_, err = st.FindPassword(ctx, u.ID)
		wantError(t, err, qrauth.ENOTFOUND, "no_password")
		wantError(t, st.DeletePassword(ctx, u.ID, rehash.Stamp), qrauth.ENOTFOUND, "no_password")
		// Set again after removal: a nil prevStamp is right once more.
		noError(t, st.SetPassword(ctx, newPassword(u.ID, 20), nil))
	})

	t.Run("PasswordErrors", func(t *testing.T) {
		st := open(t)
		ctx := t.Context()
		u, _ := mustCreateUser(t, st, "pw")
		wantError(t, st.SetPassword(ctx, newPassword("u_missing", 1), nil), qrauth.ENOTFOUND, "user_not_found")
		bad := newPassword(u.ID, 1)
		bad.Stamp = nil
		wantError(t, st.SetPassword(ctx, bad, nil), qrauth.EINVALID, "")
		wantError(t, st.SetPassword(ctx, nil, nil), qrauth.EINVALID, "")
		_, err := st.FindPassword(ctx, "")
		wantError(t, err, qrauth.ENOTFOUND, "no_password")
		_, err = st.FindPassword(ctx, u.ID)
		wantError(t, err, qrauth.ENOTFOUND, "no_password")
	})

	t.Run("Badges", func(t *testing.T) {
		st := open(t)
		ctx := t.Context()
		u, _ := mustCreateUser(t, st, "holder")
		other, _ := mustCreateUser(t, st, "other")

		// Created out of order: the list is by age, not by id.
		b3 := newBadge(u.ID, 3, badge.Secure)
		b1 := newBadge(u.ID, 1, badge.Insecure)
		b2 := newBadge(other.ID, 2, badge.Insecure)
		for _, b := range []*badge.Badge{b3, b1, b2} {
			ev := newEvent(badge.AuditIssued, b.UserID)
			noError(t, st.CreateBadge(ctx, b, ev))
			if ev.Seq == 0 {
				t.Fatal("event not appended")
			}
		}
		got, err := st.FindBadgeByID(ctx, b3.ID)
		noError(t, err)
		same(t, "badge", got, b3)

		list, err := st.FindBadgesByUser(ctx, u.ID)
		noError(t, err)
		if len(list) != 2 || list[0].ID != b1.ID || list[1].ID != b3.ID {
			t.Fatalf("badges of %s: %v", u.ID, ids(list))
		}
		if list, _ := st.FindBadgesByUser(ctx, "u_nobody"); len(list) != 0 {
			t.Fatalf("badges of nobody: %v", ids(list))
		}

		at := t0.Add(time.Hour)
		ev := newEvent(badge.AuditRevoked, u.ID)
		r, err := st.RevokeBadge(ctx, b1.ID, at, "helpdesk", ev)
		noError(t, err)
		if !r.Revoked() || !r.RevokedAt.Equal(at) || r.RevokedBy != "helpdesk" || ev.Seq == 0 {
			t.Fatalf("revoked %+v, event %d", r, ev.Seq)
		}
		ev = newEvent(badge.AuditRevoked, u.ID)
		_, err = st.RevokeBadge(ctx, b1.ID, at.Add(time.Hour), "someone else", ev)
		wantError(t, err, qrauth.ECONFLICT, "badge_revoked")
		if ev.Seq != 0 {
			t.Fatal("event appended for a refused revocation")
		}
		got, _ = st.FindBadgeByID(ctx, b1.ID)
		if got.RevokedBy != "helpdesk" || !got.RevokedAt.Equal(at) {
			t.Fatalf("second revocation changed the record: %+v", got)
		}
		if got.Active(at) || !b3.Active(at) {
			t.Fatal("Active disagrees with the records")
		}
		// Revoked badges stay listed: the record is the history.
		if list, _ := st.FindBadgesByUser(ctx, u.ID); len(list) != 2 {
			t.Fatalf("after revocation: %v", ids(list))
		}
	})

	t.Run("BadgeErrors", func(t *testing.T) {
		st := open(t)
		ctx := t.Context()
		u, _ := mustCreateUser(t, st, "holder")
		b := newBadge(u.ID, 1, badge.Insecure)
		noError(t, st.CreateBadge(ctx, b))
		ev := newEvent(badge.AuditIssued, u.ID)
		wantError(t, st.CreateBadge(ctx, newBadge(u.ID, 1, badge.Secure), ev), qrauth.ECONFLICT, "badge_exists")
		wantError(t, st.CreateBadge(ctx, newBadge("u_missing", 2, badge.Insecure), ev), qrauth.ENOTFOUND, "user_not_found")
		expiring := newBadge(u.ID, 3, badge.Insecure)
		expiring.ExpiresAt = t0.Add(time.Hour)
		wantError(t, st.CreateBadge(ctx, expiring, ev), qrauth.EINVALID, "")
		odd := newBadge(u.ID, 4, "golden")
		wantError(t, st.CreateBadge(ctx, odd, ev), qrauth.EINVALID, "")
		malformed := newBadge(u.ID, 5, badge.Insecure)
		malformed.ID = "b_short"
		wantError(t, st.CreateBadge(ctx, malformed, ev), qrauth.EINVALID, "")
		if ev.Seq != 0 {
			t.Fatal("event appended for a refused badge")
		}
		_, err := st.FindBadgeByID(ctx, "b_missing")
		wantError(t, err, qrauth.ENOTFOUND, "badge_not_found")
		_, err = st.RevokeBadge(ctx, "b_missing", t0, "x")
		wantError(t, err, qrauth.ENOTFOUND, "badge_not_found")
	})
}

func ids(list []*badge.Badge) string {
	var s []badge.ID
	for _, b := range list {
		s = append(s, b.ID)
	}
	return fmt.Sprint(s)
}
