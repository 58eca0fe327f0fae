package server_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"image"
	"image/draw"
	"image/jpeg"
	"image/png"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/qrauth/qrauth"
	"github.com/qrauth/qrauth/badge"
	"github.com/qrauth/qrauth/server"
	"github.com/qrauth/qrauth/server/badgeflow"
	"github.com/qrauth/qrauth/server/oathflow"
	"github.com/qrauth/qrauth/store"
	"github.com/qrauth/qrauth/wire"
	"golang.org/x/time/rate"
)

// Badge tests run real servers on loopback with badges on, cheap argon2
// parameters (the stored parameters are what verification uses, so the
// code path is the production one) and a fixed master key.

var badgeMasterKey = bytes.Repeat([]byte{7}, 32)

// badgeTestParams keep argon2id fast under the race detector.
var badgeTestParams = badge.PasswordParams{Time: 1, Memory: 64, Threads: 1, KeyLen: 32}

func badgeConfig(cfg *testConfig) {
	cfg.MasterKey = badgeMasterKey
	cfg.BadgeOn = true
	cfg.Badge.InsecureScans = true
	cfg.Badge.Password = badgeTestParams
	cfg.Badge.FrameRate = rate.Inf
	cfg.Badge.PasswordRate = rate.Inf
}

// badgeClock is a settable clock for expiry tests.
type badgeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *badgeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *badgeClock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// badgeWorld is a server with a badge holder (signed in on one browser,
// with a phone) and a helpdesk member (signed in on another).
type badgeWorld struct {
	srv      *testServer
	holder   *browser
	phone    *phone
	uid      string
	helpdesk *browser
}

func newBadgeWorld(t *testing.T, edit func(*testConfig)) *badgeWorld {
	t.Helper()
	srv := MustOpenServer(t, func(cfg *testConfig) {
		badgeConfig(cfg)
		if edit != nil {
			edit(cfg)
		}
	})
	return badgeWorldOn(t, srv)
}

func badgeWorldOn(t *testing.T, srv *testServer) *badgeWorld {
	t.Helper()
	w := &badgeWorld{srv: srv, phone: newPhone(t, srv, "+41 79 123 45 67")}
	w.holder = signUp(t, srv, w.phone)
	w.uid = badgeMe(t, w.holder)
	staffPhone := newPhone(t, srv, "+41 79 999 99 99")
	w.helpdesk = signUp(t, srv, staffPhone)
	if _, err := srv.DB.SetRoles(context.Background(), qrauth.UserID(badgeMe(t, w.helpdesk)), []qrauth.Role{qrauth.RoleHelpdesk}); err != nil {
		t.Fatal(err)
	}
	return w
}

// badgeMe returns the id of the browser's account.
func badgeMe(t *testing.T, b *browser) string {
	t.Helper()
	st, me := b.do("GET", wire.PathMe, "")
	if st != 200 {
		t.Fatalf("me: %d %v", st, me)
	}
	return me["user"].(map[string]any)["id"].(string)
}

func badgeSignedIn(t *testing.T, b *browser) bool {
	t.Helper()
	st, _ := b.do("GET", wire.PathMe, "")
	return st == 200
}

func jsonBody(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

// badgeWant checks an error answer's status and reason, and that it has a
// message for people.
func badgeWant(t *testing.T, what string, st int, body map[string]any, status int, reason string) {
	t.Helper()
	if st != status || body["reason"] != reason || body["message"] == "" || body["message"] == nil {
		t.Fatalf("%s: %d %v, want %d %s", what, st, body, status, reason)
	}
}

func (w *badgeWorld) setPassword(t *testing.T, current, next string) {
	t.Helper()
	st, body := w.holder.do("PUT", wire.PathPassword, jsonBody(map[string]string{"current_password": current, "new_password": next}))
	if st != 200 {
		t.Fatalf("set password: %d %v", st, body)
	}
}

type issued struct {
	ID      string
	Payload string
	PNG     []byte
	PDF     []byte
}

// issue makes a badge for the holder from the helpdesk's browser.
func (w *badgeWorld) issue(t *testing.T, kind, expires string) issued {
	t.Helper()
	st, body := w.helpdesk.do("POST", wire.Prefix(wire.PathAdminBadgeUser)+w.uid, jsonBody(map[string]string{"kind": kind, "expires": expires}))
	if st != 200 {
		t.Fatalf("issue %s: %d %v", kind, st, body)
	}
	return decodeIssued(t, body)
}

func decodeIssued(t *testing.T, body map[string]any) issued {
	t.Helper()
	png, err1 := base64.StdEncoding.DecodeString(body["png"].(string))
	pdf, err2 := base64.StdEncoding.DecodeString(body["pdf"].(string))
	if err1 != nil || err2 != nil {
		t.Fatalf("files: %v %v", err1, err2)
	}
	return issued{ID: body["badge"].(map[string]any)["id"].(string), Payload: body["payload"].(string), PNG: png, PDF: pdf}
}

// scan shows a payload on a fresh kiosk browser.
func (w *badgeWorld) scan(t *testing.T, payload string) (*browser, int, map[string]any) {
	t.Helper()
	k := newBrowser(t, w.srv)
	st, body := k.do("POST", wire.PathBadgeScan, jsonBody(map[string]string{"payload": payload}))
	return k, st, body
}

// methodsOfLastSignIn returns the methods of the newest sign-in event.
func methodsOfLastSignIn(t *testing.T, st qrauth.Store) string {
	t.Helper()
	events, err := st.ListAudit(context.Background(), qrauth.AuditFilter{Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	for i := len(events) - 1; i >= 0; i-- {
		if events[i].Type == qrauth.AuditSignIn {
			return strings.TrimPrefix(events[i].Detail, "methods ")
		}
	}
	return ""
}

func TestBadgeInsecure(t *testing.T) {
	w := newBadgeWorld(t, nil)
	w.setPassword(t, "", "correct horse battery")
	b := w.issue(t, "insecure", "")
	if !strings.HasPrefix(b.Payload, badge.PrefixInsecure) {
		t.Fatalf("payload %q", b.Payload)
	}
	// The badge identifier is opaque: nothing of the account is in it.
	for _, leak := range []string{w.uid, "Ada", "ada@example.com", w.phone.phone} {
		if strings.Contains(b.Payload, leak) || strings.Contains(b.ID, leak) {
			t.Fatalf("payload %q carries %q", b.Payload, leak)
		}
	}

	t.Run("NeedsSecondFactor", func(t *testing.T) {
		before := snapshot(t, w.srv.DB)
		k, st, body := w.scan(t, b.Payload)
		if st != 200 || body["next"] != wire.PathBadge || body["user"] != nil {
			t.Fatalf("scan: %d %v", st, body)
		}
		if badgeSignedIn(t, k) {
			t.Fatal("signed in by an insecure badge alone")
		}
		if after := snapshot(t, w.srv.DB); after != before {
			t.Fatalf("a scan alone changed the store:\n%s\n%s", before, after)
		}
		_, status := k.do("GET", wire.PathBadgeStatus, "")
		p, _ := status["pending"].(map[string]any)
		if p == nil || p["step"] != "second_factor" || p["name"] != "Ada Lovelace" || p["has_password"] != true {
			t.Fatalf("status %v", status)
		}
		// Nothing else turns the parked sign-in into a session.
		if st, body := k.do("POST", wire.PathSession, `{"ticket":"`+strings.Repeat("A", 43)+`"}`); st != 401 {
			t.Fatalf("ticket: %d %v", st, body)
		}
		if badgeSignedIn(t, k) {
			t.Fatal("signed in without a second factor")
		}
	})

	t.Run("WrongPassword", func(t *testing.T) {
		k, _, _ := w.scan(t, b.Payload)
		before := snapshot(t, w.srv.DB)
		st, body := k.do("POST", wire.PathSignInPassword, `{"password":"wrong horse battery"}`)
		badgeWant(t, "wrong password", st, body, 401, "wrong_password")
		if badgeSignedIn(t, k) {
			t.Fatal("signed in with a wrong password")
		}
		if after := snapshot(t, w.srv.DB); after != before {
			t.Fatal("a wrong password changed the store")
		}
		// The parked sign-in survives a typo.
		st, body = k.do("POST", wire.PathSignInPassword, `{"password":"correct horse battery"}`)
		if st != 200 || body["user"] == nil {
			t.Fatalf("right password after a typo: %d %v", st, body)
		}
	})

	t.Run("WithPassword", func(t *testing.T) {
		k, _, _ := w.scan(t, b.Payload)
		st, body := k.do("POST", wire.PathSignInPassword, `{"password":"correct horse battery"}`)
		if st != 200 || body["next"] != wire.PathAccount {
			t.Fatalf("password step: %d %v", st, body)
		}
		if got := badgeMe(t, k); got != w.uid {
			t.Fatalf("signed in as %s, want %s", got, w.uid)
		}
		if m := methodsOfLastSignIn(t, w.srv.DB); m != "badge_insecure+password" {
			t.Fatalf("methods %q", m)
		}
		// The step is used up.
		st, body = k.do("POST", wire.PathSignInPassword, `{"password":"correct horse battery"}`)
		badgeWant(t, "replay", st, body, 401, "no_pending_sign_in")
	})

	t.Run("PendingAttemptsBounded", func(t *testing.T) {
		k, _, _ := w.scan(t, b.Payload)
		for range 5 {
			k.do("POST", wire.PathSignInPassword, `{"password":"guess guess guess"}`)
		}
		st, body := k.do("POST", wire.PathSignInPassword, `{"password":"correct horse battery"}`)
		badgeWant(t, "after five guesses", st, body, 401, "no_pending_sign_in")
	})

	t.Run("NoPasswordOnAccount", func(t *testing.T) {
		w2 := newBadgeWorld(t, nil)
		b2 := w2.issue(t, "insecure", "")
		k, _, _ := w2.scan(t, b2.Payload)
		st, body := k.do("POST", wire.PathSignInPassword, `{"password":"anything at all"}`)
		badgeWant(t, "no password", st, body, 401, "no_password")
		if badgeSignedIn(t, k) {
			t.Fatal("signed in")
		}
	})
}

func TestBadgeInsecureSwitchOff(t *testing.T) {
	w := newBadgeWorld(t, func(cfg *testConfig) { cfg.Badge.InsecureScans = false })
	w.setPassword(t, "", "correct horse battery")
	b := w.issue(t, "insecure", "")
	before := snapshot(t, w.srv.DB)
	k, st, body := w.scan(t, b.Payload)
	badgeWant(t, "switch off", st, body, 403, "badge_insecure_disabled")
	if st, _ := k.do("POST", wire.PathSignInPassword, `{"password":"correct horse battery"}`); st != 401 {
		t.Fatalf("password after a refused scan: %d", st)
	}
	if badgeSignedIn(t, k) || snapshot(t, w.srv.DB) != before {
		t.Fatal("a refused badge changed something")
	}
	_, status := k.do("GET", wire.PathBadgeStatus, "")
	if status["insecure_scans"] != false || status["enabled"] != true {
		t.Fatalf("status %v", status)
	}
}

func TestBadgeInsecurePhoneApproval(t *testing.T) {
	w := newBadgeWorld(t, nil)
	b := w.issue(t, "insecure", "")

	// approve parks an insecure-badge sign-in on a kiosk, opens the login
	// room there and lets p approve it; it returns the kiosk and the answer
	// to the ticket.
	approve := func(t *testing.T, p *phone) (*browser, int, map[string]any) {
		t.Helper()
		k, st, body := w.scan(t, b.Payload)
		if st != 200 || body["next"] != wire.PathBadge {
			t.Fatalf("scan: %d %v", st, body)
		}
		q := *p
		q.tb = t
		if ch := q.join(k.open()); ch.Type != wire.MsgChallenge {
			t.Fatalf("join: %+v", ch)
		}
		k.next() // scanned
		if d := q.decide(wire.DecisionApprove, false, nil); d.Type != wire.MsgDone {
			t.Fatalf("decide: %+v", d)
		}
		m := k.next()
		if m.Type != wire.MsgApproved {
			t.Fatalf("kiosk: %+v", m)
		}
		st, body = k.do("POST", wire.PathBadgePhone, `{"ticket":"`+m.Ticket+`"}`)
		return k, st, body
	}

	t.Run("HoldersPhone", func(t *testing.T) {
		k, st, body := approve(t, w.phone)
		if st != 200 || body["user"] == nil {
			t.Fatalf("phone step: %d %v", st, body)
		}
		if badgeMe(t, k) != w.uid {
			t.Fatal("signed in as someone else")
		}
		if m := methodsOfLastSignIn(t, w.srv.DB); m != "badge_insecure+qr" {
			t.Fatalf("methods %q", m)
		}
	})

	t.Run("OtherPhone", func(t *testing.T) {
		other := newPhone(t, w.srv, "+41 79 555 55 55")
		signUp(t, w.srv, other)
		k, st, body := approve(t, other)
		badgeWant(t, "other phone", st, body, 401, "badge_phone_other_user")
		if badgeSignedIn(t, k) {
			t.Fatal("signed in with another account's phone")
		}
	})

	t.Run("NotAllowed", func(t *testing.T) {
		w2 := newBadgeWorld(t, func(cfg *testConfig) { cfg.Badge.SecondFactors = []string{badgeflow.SecondFactorPassword} })
		b2 := w2.issue(t, "insecure", "")
		k, _, _ := w2.scan(t, b2.Payload)
		st, body := k.do("POST", wire.PathBadgePhone, `{"ticket":"`+strings.Repeat("A", 43)+`"}`)
		badgeWant(t, "phone off", st, body, 403, "second_factor_not_allowed")
	})
}

func TestBadgeSecure(t *testing.T) {
	w := newBadgeWorld(t, nil)
	st, body := w.helpdesk.do("POST", wire.Prefix(wire.PathAdminBadgeUser)+w.uid, `{"kind":"secure"}`)
	badgeWant(t, "secure without a password", st, body, 409, "no_password")

	w.setPassword(t, "", "first password here")
	old := w.issue(t, "secure", "")
	if !strings.HasPrefix(old.Payload, badge.PrefixSecure) {
		t.Fatalf("payload %q", old.Payload)
	}
	k, st, body := w.scan(t, old.Payload)
	if st != 200 || body["next"] != wire.PathAccount {
		t.Fatalf("secure scan: %d %v", st, body)
	}
	if badgeMe(t, k) != w.uid || methodsOfLastSignIn(t, w.srv.DB) != "badge_secure" {
		t.Fatalf("signed in wrongly: %s", methodsOfLastSignIn(t, w.srv.DB))
	}

	// A password change invalidates every secure badge at once.
	second := w.issue(t, "secure", "")
	w.setPassword(t, "first password here", "second password now")
	for _, p := range []string{old.Payload, second.Payload} {
		before := snapshot(t, w.srv.DB)
		k, st, body := w.scan(t, p)
		badgeWant(t, "old badge", st, body, 401, "badge_password_changed")
		if !strings.Contains(body["message"].(string), "password was changed") {
			t.Fatalf("message %q is not clear", body["message"])
		}
		if badgeSignedIn(t, k) || snapshot(t, w.srv.DB) != before {
			t.Fatal("an old badge changed something")
		}
	}
	_, list := w.holder.do("GET", wire.PathBadges, "")
	for _, x := range list["badges"].([]any) {
		if v := x.(map[string]any); v["status"] != "password_changed" {
			t.Fatalf("badge listed as %v", v)
		}
	}
	// A new badge, sealed under the new password, works.
	fresh := w.issue(t, "secure", "")
	if k, st, body := w.scan(t, fresh.Payload); st != 200 || !badgeSignedIn(t, k) {
		t.Fatalf("new badge: %d %v", st, body)
	}

	// Removing the password ends secure badges too.
	st, body = w.holder.do("DELETE", wire.PathPassword, `{"current_password":"second password now"}`)
	if st != 200 {
		t.Fatalf("remove password: %d %v", st, body)
	}
	_, st, body = w.scan(t, fresh.Payload)
	badgeWant(t, "after removal", st, body, 401, "badge_password_changed")
}

func TestBadgeRevoked(t *testing.T) {
	w := newBadgeWorld(t, nil)
	w.setPassword(t, "", "correct horse battery")
	for _, kind := range []string{"insecure", "secure"} {
		t.Run(kind, func(t *testing.T) {
			b := w.issue(t, kind, "")
			keep := w.issue(t, kind, "")
			st, body := w.helpdesk.do("POST", wire.Path(wire.PathAdminBadgeRevoke, b.ID), "")
			if st != 200 || body["badge"].(map[string]any)["status"] != "revoked" {
				t.Fatalf("revoke: %d %v", st, body)
			}
			before := snapshot(t, w.srv.DB)
			k, st, body := w.scan(t, b.Payload)
			badgeWant(t, "revoked", st, body, 401, "badge_revoked")
			if badgeSignedIn(t, k) || snapshot(t, w.srv.DB) != before {
				t.Fatal("a revoked badge changed something")
			}
			// One by one: the other badge still works.
			if _, st, body := w.scan(t, keep.Payload); st != 200 {
				t.Fatalf("other badge: %d %v", st, body)
			}
			st, body = w.helpdesk.do("POST", wire.Path(wire.PathAdminBadgeRevoke, b.ID), "")
			badgeWant(t, "twice", st, body, 409, "badge_revoked")
		})
	}
	t.Run("ByHolder", func(t *testing.T) {
		b := w.issue(t, "secure", "")
		// Someone else cannot revoke it, and learns nothing.
		st, body := w.helpdesk.do("POST", wire.Path(wire.PathBadgeRevoke, b.ID), "")
		badgeWant(t, "someone else's", st, body, 404, "badge_not_found")
		if st, body := w.holder.do("POST", wire.Path(wire.PathBadgeRevoke, b.ID), ""); st != 200 {
			t.Fatalf("holder revokes: %d %v", st, body)
		}
		_, st, body = w.scan(t, b.Payload)
		badgeWant(t, "revoked by holder", st, body, 401, "badge_revoked")
	})
	events, _ := w.srv.DB.ListAudit(context.Background(), qrauth.AuditFilter{UserID: qrauth.UserID(w.uid)})
	var revoked int
	for _, e := range events {
		if e.Type == badge.AuditRevoked {
			revoked++
		}
	}
	if revoked != 3 {
		t.Fatalf("%d revocations audited, want 3", revoked)
	}
}

// badgeTamper returns payload with one character of its base64 changed.
func badgeTamper(payload string, at int) string {
	b := []byte(payload)
	i := len(badge.PrefixSecure) + at
	if b[i] == 'A' {
		b[i] = 'B'
	} else {
		b[i] = 'A'
	}
	return string(b)
}

func TestBadgeTampered(t *testing.T) {
	w := newBadgeWorld(t, nil)
	w.setPassword(t, "", "correct horse battery")
	ins := w.issue(t, "insecure", "")
	sec := w.issue(t, "secure", "")
	cases := map[string]string{
		"InsecureID":       badgeTamper(ins.Payload, 3),
		"InsecureTag":      badgeTamper(ins.Payload, 30),
		"SecureID":         badgeTamper(sec.Payload, 3),
		"SecureNonce":      badgeTamper(sec.Payload, 25),
		"SecureSealed":     badgeTamper(sec.Payload, 60),
		"KindSwapped":      badge.PrefixSecure + strings.TrimPrefix(ins.Payload, badge.PrefixInsecure),
		"SecureAsInsecure": badge.PrefixInsecure + strings.TrimPrefix(sec.Payload, badge.PrefixSecure)[:43],
		"Truncated":        sec.Payload[:len(sec.Payload)-1],
		"Extended":         ins.Payload + "A",
		"NotBase64":        badge.PrefixInsecure + strings.Repeat("*", 43),
	}
	before := snapshot(t, w.srv.DB)
	for name, p := range cases {
		t.Run(name, func(t *testing.T) {
			k, st, body := w.scan(t, p)
			badgeWant(t, name, st, body, 401, "badge_invalid")
			if badgeSignedIn(t, k) {
				t.Fatal("signed in")
			}
		})
	}
	for name, p := range map[string]string{"LoginCode": w.srv.URL + wire.Path(wire.PathScan, "abc"), "Empty": "", "Huge": strings.Repeat("Q", 5000)} {
		t.Run(name, func(t *testing.T) {
			_, st, body := w.scan(t, p)
			badgeWant(t, name, st, body, 400, "not_a_badge")
		})
	}
	if after := snapshot(t, w.srv.DB); after != before {
		t.Fatal("tampered badges changed the store")
	}
}

// badgeServerAt runs a server over the bbolt file at path with master key;
// edits change the config before start.
func badgeServerAt(t *testing.T, path string, key []byte, edits ...func(*testConfig)) *testServer {
	t.Helper()
	return badgeServerAtOATH(t, path, key, nil, edits...)
}

// badgeServerAtOATH is badgeServerAt with the OATH flow's config edited by
// oath.
func badgeServerAtOATH(t *testing.T, path string, key []byte, oath func(*oathflow.Config), edits ...func(*testConfig)) *testServer {
	t.Helper()
	db, err := store.Open(path, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	cfg := testConfig{Config: server.Config{Addr: "127.0.0.1:0", RoomRate: rate.Inf, AppRate: rate.Inf,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}}
	badgeConfig(&cfg)
	cfg.MasterKey = key
	for _, edit := range edits {
		edit(&cfg)
	}
	if oath != nil {
		cfg.OATHOn = true
		oath(&cfg.OATH)
	}
	s, err := server.New(cfg.Config, db, testFlows(t, cfg, db)...)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Open(); err != nil {
		t.Fatal(err)
	}
	srv := &testServer{Server: s, DB: db, URL: s.Origin()}
	t.Cleanup(func() { srv.Shutdown(context.Background()) })
	return srv
}

func TestBadgeOtherDeployment(t *testing.T) {
	path := filepath.Join(t.TempDir(), "a.db")
	a := badgeServerAt(t, path, badgeMasterKey)
	w := badgeWorldOn(t, a)
	w.setPassword(t, "", "correct horse battery")
	ins := w.issue(t, "insecure", "")
	sec := w.issue(t, "secure", "")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := a.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}

	otherKey := bytes.Repeat([]byte{9}, 32)
	cases := map[string]func() *testServer{
		// Another deployment: its own database and key.
		"OwnDatabase": func() *testServer { return badgeServerAt(t, filepath.Join(t.TempDir(), "b.db"), otherKey) },
		// Even a copy of this deployment's records does not help without
		// its master key: the badges are bound to the key, not the records.
		"CopiedDatabase": func() *testServer {
			p := filepath.Join(t.TempDir(), "copy.db")
			if err := os.WriteFile(p, data, 0o600); err != nil {
				t.Fatal(err)
			}
			return badgeServerAt(t, p, otherKey)
		},
	}
	for name, open := range cases {
		t.Run(name, func(t *testing.T) {
			other := badgeWorld{srv: open()}
			for _, p := range []string{ins.Payload, sec.Payload} {
				k, st, body := other.scan(t, p)
				badgeWant(t, name, st, body, 401, "badge_invalid")
				if badgeSignedIn(t, k) {
					t.Fatal("signed in on another deployment")
				}
			}
		})
	}
	// Control: the same copy under the right key accepts both, so the
	// refusals above come from the key.
	p := filepath.Join(t.TempDir(), "same.db")
	if err := os.WriteFile(p, data, 0o600); err != nil {
		t.Fatal(err)
	}
	same := badgeWorld{srv: badgeServerAt(t, p, badgeMasterKey)}
	if _, st, body := same.scan(t, sec.Payload); st != 200 || body["user"] == nil {
		t.Fatalf("secure badge on its own deployment: %d %v", st, body)
	}
	if _, st, body := same.scan(t, ins.Payload); st != 200 || body["next"] != wire.PathBadge {
		t.Fatalf("insecure badge on its own deployment: %d %v", st, body)
	}
}

func TestBadgeExpiry(t *testing.T) {
	clock := &badgeClock{t: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)}
	w := newBadgeWorld(t, func(cfg *testConfig) { cfg.Now = clock.Now; cfg.SessionTTL = 365 * 24 * time.Hour })
	w.setPassword(t, "", "correct horse battery")
	st, body := w.helpdesk.do("POST", wire.Prefix(wire.PathAdminBadgeUser)+w.uid, `{"kind":"insecure","expires":"2026-03-10"}`)
	badgeWant(t, "insecure with expiry", st, body, 400, "insecure_badge_expiry")
	for _, bad := range []string{"2026-02-28", "10 March", "2040-01-01"} {
		st, body := w.helpdesk.do("POST", wire.Prefix(wire.PathAdminBadgeUser)+w.uid, `{"kind":"secure","expires":"`+bad+`"}`)
		badgeWant(t, bad, st, body, 400, "invalid_expiry")
	}
	b := w.issue(t, "secure", "2026-03-10")
	clock.Add(9 * 24 * time.Hour) // 10 March, noon: the last day still counts
	if _, st, body := w.scan(t, b.Payload); st != 200 {
		t.Fatalf("last day: %d %v", st, body)
	}
	clock.Add(12 * time.Hour) // 11 March, midnight
	_, st, body = w.scan(t, b.Payload)
	badgeWant(t, "expired", st, body, 410, "badge_expired")
}

func TestBadgeMethodPolicy(t *testing.T) {
	w := newBadgeWorld(t, func(cfg *testConfig) {
		cfg.Badge.Policy = badgeflow.BadgeMethod
		cfg.Badge.InsecureScans = false
	})
	w.setPassword(t, "", "correct horse battery")

	// Without a badge the phone alone signs in, as before.
	if b := signIn(t, w.srv, w.phone); !badgeSignedIn(t, b) {
		t.Fatal("phone sign-in without a badge")
	}

	b := w.issue(t, "secure", "")
	// A badge is not a first step under this policy.
	_, st, body := w.scan(t, b.Payload)
	badgeWant(t, "badge first", st, body, 401, "badge_needs_first_step")

	// The phone identifies; the badge is then asked for.
	k := newBrowser(t, w.srv)
	ch := w.phone.join(k.open())
	if ch.Type != wire.MsgChallenge {
		t.Fatalf("%+v", ch)
	}
	k.next()
	w.phone.decide(wire.DecisionApprove, false, nil)
	m := k.next()
	st, body = k.exchange(m.Ticket)
	if st != 200 || body["next"] != wire.PathBadge || badgeSignedIn(t, k) {
		t.Fatalf("phone step: %d %v", st, body)
	}
	_, status := k.do("GET", wire.PathBadgeStatus, "")
	if p, _ := status["pending"].(map[string]any); p == nil || p["step"] != "badge" {
		t.Fatalf("status %v", status)
	}

	// Someone else's badge does not do.
	strangerPhone := newPhone(t, w.srv, "+41 79 444 44 44")
	stranger := signUp(t, w.srv, strangerPhone)
	st, body = stranger.do("PUT", wire.PathPassword, `{"current_password":"","new_password":"stranger's password"}`)
	if st != 200 {
		t.Fatalf("%d %v", st, body)
	}
	sid := badgeMe(t, stranger)
	st, body = w.helpdesk.do("POST", wire.Prefix(wire.PathAdminBadgeUser)+sid, `{"kind":"secure"}`)
	if st != 200 {
		t.Fatalf("%d %v", st, body)
	}
	strangers := decodeIssued(t, body)
	st, body = k.do("POST", wire.PathBadgeScan, jsonBody(map[string]string{"payload": strangers.Payload}))
	badgeWant(t, "wrong holder", st, body, 401, "badge_wrong_user")

	st, body = k.do("POST", wire.PathBadgeScan, jsonBody(map[string]string{"payload": b.Payload}))
	if st != 200 || body["user"] == nil || badgeMe(t, k) != w.uid {
		t.Fatalf("badge step: %d %v", st, body)
	}
	if m := methodsOfLastSignIn(t, w.srv.DB); m != "qr+badge_secure" {
		t.Fatalf("methods %q", m)
	}
}

func TestBadgeFrame(t *testing.T) {
	w := newBadgeWorld(t, nil)
	w.setPassword(t, "", "correct horse battery")
	b := w.issue(t, "secure", "")

	post := func(t *testing.T, k *browser, ctype string, data []byte) (int, map[string]any) {
		t.Helper()
		req, _ := http.NewRequest("POST", k.srv.URL+wire.PathBadgeFrame, bytes.NewReader(data))
		req.Header.Set("Content-Type", ctype)
		resp, err := k.client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var m map[string]any
		json.NewDecoder(resp.Body).Decode(&m)
		return resp.StatusCode, m
	}

	t.Run("CameraFrame", func(t *testing.T) {
		// What the page sends: grey 480×360 JPEGs with the badge in them,
		// under the 16 KiB body limit, one every 300 ms until one reads.
		// A single lossy frame is missed now and then (ZXing), so, like the
		// page, send the next "frame" (the badge a little nearer) when the
		// answer is {"found": false}; three are plenty.
		k := newBrowser(t, w.srv)
		var st int
		var body map[string]any
		for _, size := range []int{200, 216, 232} {
			frame := badgeFrame(t, b.PNG, 480, 360, size)
			// The server's body limit is 16 KiB ("16K" in server.go); the
			// JPEG's size varies with the random badge content.
			if len(frame) > 16<<10 {
				t.Fatalf("frame of %d bytes over the 16 KiB body limit", len(frame))
			}
			if st, body = post(t, k, "image/jpeg", frame); st != 200 || body["found"] != false {
				break
			}
		}
		if st != 200 || body["user"] == nil || !badgeSignedIn(t, k) {
			t.Fatalf("frame: %d %v", st, body)
		}
	})
	t.Run("NoCode", func(t *testing.T) {
		k := newBrowser(t, w.srv)
		blank := badgeFrame(t, nil, 320, 240, 0)
		if st, body := post(t, k, "image/jpeg", blank); st != 200 || body["found"] != false {
			t.Fatalf("blank frame: %d %v", st, body)
		}
	})
	t.Run("Refusals", func(t *testing.T) {
		k := newBrowser(t, w.srv)
		st, body := post(t, k, "image/jpeg", []byte("not a picture"))
		badgeWant(t, "garbage", st, body, 400, "unreadable_image")
		st, body = post(t, k, "text/plain", b.PNG)
		badgeWant(t, "content type", st, body, 400, "unsupported_image")
		st, body = post(t, k, "image/png", bytes.Repeat([]byte{0}, 20000))
		if st != 413 && body["reason"] != "body_too_large" {
			t.Fatalf("oversized: %d %v", st, body)
		}
		if badgeSignedIn(t, k) {
			t.Fatal("signed in")
		}
	})
	t.Run("RateLimited", func(t *testing.T) {
		w2 := newBadgeWorld(t, func(cfg *testConfig) { cfg.Badge.FrameRate, cfg.Badge.FrameBurst = 0.001, 2 })
		k := newBrowser(t, w2.srv)
		blank := badgeFrame(t, nil, 64, 48, 0)
		post(t, k, "image/jpeg", blank)
		post(t, k, "image/jpeg", blank)
		st, body := post(t, k, "image/jpeg", blank)
		badgeWant(t, "third frame", st, body, 429, "too_many_scans")
	})
}

// badgeFrame draws the PNG badge (if any) side by side into a grey frame of
// w×h, the badge scaled to side pixels, and returns it as a JPEG.
func badgeFrame(t *testing.T, badgePNG []byte, w, h, side int) []byte {
	t.Helper()
	frame := image.NewGray(image.Rect(0, 0, w, h))
	draw.Draw(frame, frame.Bounds(), image.NewUniform(image.White), image.Point{}, draw.Src)
	if badgePNG != nil {
		src, err := png.Decode(bytes.NewReader(badgePNG))
		if err != nil {
			t.Fatal(err)
		}
		sb := src.Bounds()
		x0, y0 := (w-side)/2, (h-side)/2
		for y := range side {
			for x := range side {
				frame.Set(x0+x, y0+y, src.At(sb.Min.X+x*sb.Dx()/side, sb.Min.Y+y*sb.Dy()/side))
			}
		}
	}
	var buf bytes.Buffer
	if err := jpeg.Encode(&buf, frame, &jpeg.Options{Quality: 60}); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// TestBadgePrintout renders the badge PDF with pdftoppm and reads the QR
// code back: a printed badge must scan to the very payload issued.
func TestBadgePrintout(t *testing.T) {
	if _, err := exec.LookPath("pdftoppm"); err != nil {
		if os.Getenv("QRAUTH_SKIP_BROWSER") != "" {
			t.Skip("pdftoppm not installed and QRAUTH_SKIP_BROWSER set")
		}
		t.Fatal("pdftoppm not on the PATH: apt-get install poppler-utils")
	}
	w := newBadgeWorld(t, nil)
	w.setPassword(t, "", "correct horse battery")
	for _, kind := range []string{"insecure", "secure"} {
		t.Run(kind, func(t *testing.T) {
			b := w.issue(t, kind, "")
			if !bytes.HasPrefix(b.PDF, []byte("%PDF-")) {
				t.Fatalf("not a PDF: %.20q", b.PDF)
			}
			dir := t.TempDir()
			pdf := filepath.Join(dir, "badge.pdf")
			if err := os.WriteFile(pdf, b.PDF, 0o600); err != nil {
				t.Fatal(err)
			}
			out, err := exec.Command("pdftoppm", "-r", "300", "-png", "-singlefile", pdf, filepath.Join(dir, "page")).CombinedOutput()
			if err != nil {
				t.Fatalf("pdftoppm: %v %s", err, out)
			}
			page, err := os.ReadFile(filepath.Join(dir, "page.png"))
			if err != nil {
				t.Fatal(err)
			}
			if img, err := png.Decode(bytes.NewReader(page)); err != nil || img.Bounds().Dx() < 900 {
				t.Fatalf("page image: %v", err)
			}
			if dst := os.Getenv("QRAUTH_BADGE_SAMPLES"); dst != "" {
				os.WriteFile(filepath.Join(dst, "badge-"+kind+".png"), page, 0o644)
			}
			text, err := badgeflow.DecodeBadgeImage(page)
			if err != nil || text != b.Payload {
				t.Fatalf("PDF decodes to %q (%v), want %q", text, err, b.Payload)
			}
			// The PNG decodes to it as well.
			if text, err := badgeflow.DecodeBadgeImage(b.PNG); err != nil || text != b.Payload {
				t.Fatalf("PNG decodes to %q (%v)", text, err)
			}
		})
	}
}

func TestBadgePassword(t *testing.T) {
	w := newBadgeWorld(t, nil)
	_, v := w.holder.do("GET", wire.PathPassword, "")
	if p := v["password"].(map[string]any); p["set"] != false || p["enabled"] != true {
		t.Fatalf("%v", v)
	}
	st, body := w.holder.do("PUT", wire.PathPassword, `{"new_password":"short"}`)
	badgeWant(t, "short", st, body, 400, "password_too_short")
	w.setPassword(t, "", "first password here")
	st, body = w.holder.do("PUT", wire.PathPassword, `{"new_password":"another password"}`)
	badgeWant(t, "change without current", st, body, 400, "current_password_required")
	before := snapshot(t, w.srv.DB)
	st, body = w.holder.do("PUT", wire.PathPassword, `{"current_password":"not it at all","new_password":"another password"}`)
	badgeWant(t, "change with wrong current", st, body, 401, "wrong_password")
	if snapshot(t, w.srv.DB) != before {
		t.Fatal("a refused change changed the store")
	}
	st, body = w.holder.do("PUT", wire.PathPassword, `{"current_password":"first password here","new_password":"another password","x":1}`)
	badgeWant(t, "unknown field", st, body, 400, "malformed_body")
	w.setPassword(t, "first password here", "another password")
	st, body = w.holder.do("DELETE", wire.PathPassword, `{"current_password":"first password here"}`)
	badgeWant(t, "remove with old", st, body, 401, "wrong_password")

	stored, err := w.srv.DB.FindPassword(context.Background(), qrauth.UserID(w.uid))
	if err != nil || stored.Algorithm != "argon2id" || stored.Params != badgeTestParams || len(stored.Salt) != 16 {
		t.Fatalf("stored %+v %v", stored, err)
	}
	if bytes.Contains(stored.Hash, []byte("another")) {
		t.Fatal("password stored in the clear")
	}
	events, _ := w.srv.DB.ListAudit(context.Background(), qrauth.AuditFilter{UserID: qrauth.UserID(w.uid)})
	var types []string
	for _, e := range events {
		if strings.HasPrefix(e.Type, "password") {
			types = append(types, e.Type)
			if strings.Contains(e.Detail, "password here") || strings.Contains(e.Detail, "another password") {
				t.Fatalf("audit detail %q holds a password", e.Detail)
			}
		}
	}
	if strings.Join(types, ",") != "password_set,password_changed" {
		t.Fatalf("audit %v", types)
	}
	// Anonymous callers get nothing.
	anon := newBrowser(t, w.srv)
	st, body = anon.do("PUT", wire.PathPassword, `{"new_password":"whatever you like"}`)
	badgeWant(t, "anonymous", st, body, 401, "not_signed_in")
}

// TestBadgePasswordRehash raises the argon2 parameters: the next correct
// password is rehashed with them, and the secure badge keeps working
// because the credential's stamp stays.
func TestBadgePasswordRehash(t *testing.T) {
	path := filepath.Join(t.TempDir(), "q.db")
	a := badgeServerAt(t, path, badgeMasterKey)
	w := badgeWorldOn(t, a)
	w.setPassword(t, "", "correct horse battery")
	sec := w.issue(t, "secure", "")
	ins := w.issue(t, "insecure", "")
	old, _ := a.DB.FindPassword(context.Background(), qrauth.UserID(w.uid))
	a.Shutdown(context.Background())

	db, err := store.Open(path, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	cfg := testConfig{Config: server.Config{Addr: "127.0.0.1:0", Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}}
	badgeConfig(&cfg)
	cfg.Badge.Password = badge.PasswordParams{Time: 2, Memory: 128, Threads: 1, KeyLen: 32}
	s, err := server.New(cfg.Config, db, testFlows(t, cfg, db)...)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Open(); err != nil {
		t.Fatal(err)
	}
	b := badgeWorld{srv: &testServer{Server: s, DB: db, URL: s.Origin()}}
	t.Cleanup(func() { b.srv.Shutdown(context.Background()) })
	k, _, _ := b.scan(t, ins.Payload)
	if st, body := k.do("POST", wire.PathSignInPassword, `{"password":"correct horse battery"}`); st != 200 {
		t.Fatalf("password: %d %v", st, body)
	}
	now, _ := db.FindPassword(context.Background(), qrauth.UserID(w.uid))
	if now.Params != cfg.Badge.Password || !bytes.Equal(now.Stamp, old.Stamp) || bytes.Equal(now.Hash, old.Hash) {
		t.Fatalf("after rehash %+v, before %+v", now, old)
	}
	if _, st, body := b.scan(t, sec.Payload); st != 200 {
		t.Fatalf("secure badge after rehash: %d %v", st, body)
	}
}

func TestBadgeIssueRights(t *testing.T) {
	w := newBadgeWorld(t, nil)
	w.setPassword(t, "", "correct horse battery")
	// No role: no admin API.
	st, body := w.holder.do("POST", wire.Prefix(wire.PathAdminBadgeUser)+w.uid, `{"kind":"insecure"}`)
	badgeWant(t, "no role", st, body, 403, "forbidden")
	// Self-issue is off by default.
	st, body = w.holder.do("POST", wire.PathBadges, `{"kind":"secure","current_password":"correct horse battery"}`)
	badgeWant(t, "self-issue off", st, body, 403, "self_issue_not_allowed")
	st, body = w.helpdesk.do("POST", wire.Prefix(wire.PathAdminBadgeUser)+w.uid, `{"kind":"golden"}`)
	badgeWant(t, "kind", st, body, 400, "invalid_badge_kind")
	st, body = w.helpdesk.do("POST", wire.Path(wire.PathAdminBadgeUser, "u_nobody"), `{"kind":"insecure"}`)
	badgeWant(t, "unknown user", st, body, 404, "user_not_found")

	b := w.issue(t, "insecure", "")
	_, list := w.helpdesk.do("GET", wire.Prefix(wire.PathAdminBadgeUser)+w.uid, "")
	rows := list["badges"].([]any)
	if len(rows) != 1 || rows[0].(map[string]any)["id"] != b.ID || rows[0].(map[string]any)["created_by"] == "self" {
		t.Fatalf("list %v", list)
	}
	events, _ := w.srv.DB.ListAudit(context.Background(), qrauth.AuditFilter{UserID: qrauth.UserID(w.uid)})
	last := events[len(events)-1]
	if last.Type != badge.AuditIssued || !strings.Contains(last.Detail, b.ID) || strings.Contains(last.Detail, b.Payload) {
		t.Fatalf("audit %+v", last)
	}
	_, users := w.helpdesk.do("GET", wire.Prefix(wire.PathAdminUser)+w.uid, "")
	if m := users["user"].(map[string]any)["methods"].(map[string]any); m["password"] != true || m["badge"] != 1.0 {
		t.Fatalf("admin methods %v", m)
	}

	t.Run("SelfIssue", func(t *testing.T) {
		w := newBadgeWorld(t, func(cfg *testConfig) { cfg.Badge.SelfIssue = badgeflow.SelfIssueSecure })
		w.setPassword(t, "", "correct horse battery")
		st, body := w.holder.do("POST", wire.PathBadges, `{"kind":"insecure"}`)
		badgeWant(t, "insecure self", st, body, 403, "self_issue_not_allowed")
		st, body = w.holder.do("POST", wire.PathBadges, `{"kind":"secure"}`)
		badgeWant(t, "without password", st, body, 400, "current_password_required")
		st, body = w.holder.do("POST", wire.PathBadges, `{"kind":"secure","current_password":"wrong password!"}`)
		badgeWant(t, "wrong password", st, body, 401, "wrong_password")
		st, body = w.holder.do("POST", wire.PathBadges, `{"kind":"secure","current_password":"correct horse battery"}`)
		if st != 200 {
			t.Fatalf("self-issue: %d %v", st, body)
		}
		mine := decodeIssued(t, body)
		_, list := w.holder.do("GET", wire.PathBadges, "")
		if rows := list["badges"].([]any); len(rows) != 1 || rows[0].(map[string]any)["created_by"] != "self" {
			t.Fatalf("own list %v", list)
		}
		if k, st, _ := w.scan(t, mine.Payload); st != 200 || !badgeSignedIn(t, k) {
			t.Fatal("self-printed badge does not sign in")
		}
	})
}

func TestBadgeConfig(t *testing.T) {
	db, err := store.Open(filepath.Join(t.TempDir(), "q.db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for name, tc := range map[string]struct {
		cfg  badgeflow.Config
		key  []byte
		want string
	}{
		"NoKey":            {badgeflow.Config{}, nil, "genkey"},
		"Policy":           {badgeflow.Config{Policy: "sometimes"}, badgeMasterKey, "policy"},
		"MethodInsecure":   {badgeflow.Config{Policy: badgeflow.BadgeMethod, InsecureScans: true}, badgeMasterKey, "insecure"},
		"SecondFactor":     {badgeflow.Config{SecondFactors: []string{"sms"}}, badgeMasterKey, "second factor"},
		"SelfIssue":        {badgeflow.Config{SelfIssue: "all"}, badgeMasterKey, "self-issue"},
		"WeakArgon2Memory": {badgeflow.Config{Password: badge.PasswordParams{Memory: 4, Threads: 1}}, badgeMasterKey, "memory"},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := badgeflow.New(tc.cfg, db, tc.key)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err %v, want one about %q", err, tc.want)
			}
		})
	}
}

// TestBadgeOff: with badges off the flow is not listed: its routes do not
// exist, and neither the login page nor the account page carries what
// would call them (the account page's badge and password scripts).
func TestBadgeOff(t *testing.T) {
	scripts := []string{`src="/static/account-badge.js"`, `src="/static/account-password.js"`}
	off := MustOpenServer(t, nil)
	k := newBrowser(t, off)
	for _, r := range [][2]string{{"POST", wire.PathBadgeScan}, {"GET", wire.PathBadgeStatus}, {"GET", wire.PathPassword}, {"GET", wire.PathBadges}} {
		st, body := k.do(r[0], r[1], `{"payload":"QRB1I.x"}`)
		if st != http.StatusNotFound {
			t.Errorf("%s %s with badges off: %d %v", r[0], r[1], st, body)
		}
	}
	if resp, _ := get(t, off.URL+wire.PathBadge, browserAccept); resp.StatusCode != http.StatusNotFound {
		t.Errorf("badge page with badges off: %d", resp.StatusCode)
	}
	_, page := get(t, off.URL+wire.PathAccount, browserAccept)
	for _, s := range scripts {
		if strings.Contains(page, s) {
			t.Errorf("account page with badges off loads %s", s)
		}
	}

	on := MustOpenServer(t, badgeConfig)
	_, page = get(t, on.URL+wire.PathAccount, browserAccept)
	for _, s := range scripts {
		if !strings.Contains(page, s) {
			t.Errorf("account page with badges on lacks %s", s)
		}
	}
}

func FuzzDecodeBadgeImage(f *testing.F) {
	var buf bytes.Buffer
	png.Encode(&buf, image.NewGray(image.Rect(0, 0, 8, 8)))
	f.Add(buf.Bytes())
	buf.Reset()
	jpeg.Encode(&buf, image.NewGray(image.Rect(0, 0, 8, 8)), nil)
	f.Add(buf.Bytes())
	f.Add([]byte("\x89PNG\r\n\x1a\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		_, err := badgeflow.DecodeBadgeImage(data)
		if err != nil && qrauth.ErrorCode(err) != qrauth.EINVALID {
			t.Fatalf("code %s: %v", qrauth.ErrorCode(err), err)
		}
	})
}

// TestBadgeInsecureThenOATH: when another flow's gate asks for a step of
// its own after the scan (here OATH, required for everyone), that step is
// the second factor: the badge does not ask for a password first.
func TestBadgeInsecureThenOATH(t *testing.T) {
	path := filepath.Join(t.TempDir(), "q.db")
	a := badgeServerAt(t, path, badgeMasterKey)
	w := badgeWorldOn(t, a)
	b := w.issue(t, "insecure", "")
	a.Shutdown(context.Background())

	srv := badgeServerAtOATH(t, path, badgeMasterKey, func(c *oathflow.Config) {
		c.Policy = oathflow.PolicyRequired
	})
	k, st, body := (&badgeWorld{srv: srv}).scan(t, b.Payload)
	if st != 200 || body["next"] != wire.PathVerify || badgeSignedIn(t, k) {
		t.Fatalf("scan: %d %v", st, body)
	}
	// The badge page has nothing to ask for this sign-in.
	if _, status := k.do("GET", wire.PathBadgeStatus, ""); status["pending"] != nil {
		t.Fatalf("status %v", status)
	}
}
