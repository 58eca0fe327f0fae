package server_test

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/pquerna/otp/totp"
	"github.com/qrauth/qrauth"
	"github.com/qrauth/qrauth/offline"
	"github.com/qrauth/qrauth/server/oathflow"
	"github.com/qrauth/qrauth/wire"
)

// Regression tests for cross-flow attacks found in review: each combines
// two flows that were right on their own.

// TestInsecureBadgeCannotEnrolOATH: under OATH policy "required", the
// holder of someone's insecure badge must not enrol an authenticator of
// their own on that account and so sign in as them.
func TestInsecureBadgeCannotEnrolOATH(t *testing.T) {
	path := filepath.Join(t.TempDir(), "q.db")
	a := badgeServerAt(t, path, badgeMasterKey)
	w := badgeWorldOn(t, a)
	b := w.issue(t, "insecure", "")
	a.Shutdown(context.Background())

	srv := badgeServerAtOATH(t, path, badgeMasterKey, func(c *oathflow.Config) {
		c.Policy = oathflow.PolicyRequired
	})
	k, st, body := (&badgeWorld{srv: srv}).scan(t, b.Payload)
	if st != 200 || body["next"] != wire.PathVerify {
		t.Fatalf("scan: %d %v", st, body)
	}
	if st, body = k.do("POST", wire.PathOATHSignInEnrol, ""); st != 403 || body["reason"] != "oath_enrol_needs_sign_in" {
		t.Fatalf("enrol after an insecure badge: %d %v", st, body)
	}
	code, _ := totp.GenerateCode("JBSWY3DPEHPK3PXP", time.Now())
	if st, _ = k.do("POST", wire.PathOATHSignIn, `{"code":"`+code+`"}`); st == 200 {
		t.Fatal("signed in")
	}
	if st, _ := k.do("GET", wire.PathMe, ""); st != 401 {
		t.Fatalf("kiosk has a session: %d", st)
	}
}

// TestHelpdeskCannotBadgeAnAdmin: a badge signs its holder in, so helpdesk
// must not print one for an admin.
func TestHelpdeskCannotBadgeAnAdmin(t *testing.T) {
	w := newBadgeWorld(t, nil)
	w.setPassword(t, "", "correct horse battery")
	if _, err := w.srv.DB.SetRoles(context.Background(), qrauth.UserID(w.uid), []qrauth.Role{qrauth.RoleAdmin}); err != nil {
		t.Fatal(err)
	}
	st, body := w.helpdesk.do("POST", wire.Prefix(wire.PathAdminBadgeUser)+w.uid, jsonBody(map[string]string{"kind": "secure"}))
	if st != 403 || body["reason"] != "badge_privileged_holder" {
		t.Fatalf("helpdesk issued a badge for an admin: %d %v", st, body)
	}
}

// TestRemovedPhoneOfflineCodesDie: a phone removed from the account (lost,
// stolen) must not approve offline transactions any more.
func TestRemovedPhoneOfflineCodesDie(t *testing.T) {
	e := newOfflineEnv(t, nil)
	e.activate(offline.PIN, "1234")
	sess := e.begin(offline.PIN, "Pay 1000 CHF to Mallory")
	code := e.code(sess, "1234")
	if st, body := e.b.do("DELETE", wire.Prefix(wire.PathDeviceByID)+string(e.p.id), ""); st != 204 {
		t.Fatalf("remove phone: %d %v", st, body)
	}
	if st, body := e.verify(sess, code); body["result"] == "success" {
		t.Fatalf("removed phone's code accepted: %d %v", st, body)
	}
	if st, body := e.api("POST", wire.PathOfflineSessions, map[string]any{"user_id": e.uid, "method": offline.PIN, "context": "again"}); st == 201 {
		t.Fatalf("new session for a removed phone: %v", body)
	}
}
