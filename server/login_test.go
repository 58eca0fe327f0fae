package server_test

import (
	"context"
	"testing"

	"github.com/qrauth/qrauth"
	"github.com/qrauth/qrauth/wire"
)

// signUp runs a whole sign-up with the profile sent from the browser form
// and returns the signed-in browser.
func signUp(t *testing.T, srv *testServer, p *phone) *browser {
	t.Helper()
	b := newBrowser(t, srv)
	qr := b.open()
	ch := p.join(qr)
	if ch.Type != wire.MsgChallenge || ch.Mode != wire.ModeSignUp {
		t.Fatalf("join: %+v", ch)
	}
	if m := b.next(); m.Type != wire.MsgScanned {
		t.Fatalf("browser: %+v, want scanned", m)
	}
	if m := p.decide(wire.DecisionApprove, true, nil); m.Type != wire.MsgNeedsForm {
		t.Fatalf("decide: %+v", m)
	}
	if m := b.next(); m.Type != wire.MsgSignUp {
		t.Fatalf("browser: %+v, want signup", m)
	}
	b.ws.WriteJSON(wire.BrowserFrame{Type: wire.MsgProfile, Name: "Ada Lovelace", Email: "ada@example.com"})
	m := b.next()
	if m.Type != wire.MsgApproved || m.Ticket == "" {
		t.Fatalf("browser: %+v, want approved", m)
	}
	if d := readMsg(t, p.ws); d.Type != wire.MsgDone || d.Result != "signed_up" {
		t.Fatalf("app: %+v", d)
	}
	if st, body := b.exchange(m.Ticket); st != 200 {
		t.Fatalf("exchange: %d %v", st, body)
	}
	return b
}

// signIn runs a whole sign-in for a registered phone.
func signIn(t *testing.T, srv *testServer, p *phone) *browser {
	t.Helper()
	b := newBrowser(t, srv)
	ch := p.join(b.open())
	if ch.Type != wire.MsgChallenge || ch.Mode != wire.ModeLogin {
		t.Fatalf("join: %+v", ch)
	}
	b.next() // scanned
	if d := p.decide(wire.DecisionApprove, false, nil); d.Type != wire.MsgDone || d.Result != "signed_in" {
		t.Fatalf("decide: %+v", d)
	}
	m := b.next()
	if m.Type != wire.MsgApproved {
		t.Fatalf("browser: %+v", m)
	}
	if st, body := b.exchange(m.Ticket); st != 200 {
		t.Fatalf("exchange: %d %v", st, body)
	}
	return b
}

func TestSignUpThenSignIn(t *testing.T) {
	srv := MustOpenServer(t, nil)
	p := newPhone(t, srv, "+41 79 123 45 67")
	b := signUp(t, srv, p)
	st, me := b.do("GET", wire.PathMe, "")
	if st != 200 || me["user"].(map[string]any)["name"] != "Ada Lovelace" {
		t.Fatalf("me: %d %v", st, me)
	}

	b2 := signIn(t, srv, p)
	st, me2 := b2.do("GET", wire.PathMe, "")
	if st != 200 || me2["user"].(map[string]any)["id"] != me["user"].(map[string]any)["id"] {
		t.Fatalf("me after sign-in: %d %v", st, me2)
	}
	_, list := b2.do("GET", wire.PathSessions, "")
	if n := len(list["sessions"].([]any)); n != 2 {
		t.Fatalf("sessions: %d, want 2", n)
	}
	events, _ := srv.DB.ListAudit(context.Background(), qrauth.AuditFilter{})
	var types []string
	for _, e := range events {
		types = append(types, e.Type)
	}
	if want := []string{"signup", "signin", "signin"}; !equal(types, want) {
		t.Fatalf("audit %v, want %v", types, want)
	}
}

func equal(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// TestSignUpFormMistake: an invalid form from the browser is refused with
// its error and closes the socket with 4400, which ends the room (the page
// checks the form before sending). An invalid form from the app closes the
// app's socket with 4400 and leaves the room to the browser's form
// (docs/protocol.md §6.3, §7.6).
func TestSignUpFormMistake(t *testing.T) {
	srv := MustOpenServer(t, nil)
	p, b := signUpForm(t, srv)
	b.ws.WriteJSON(wire.BrowserFrame{Type: wire.MsgProfile, Email: "not-an-address"})
	if m := b.next(); m.Type != wire.MsgError || m.Reason != "invalid_email" {
		t.Fatalf("%+v", m)
	}
	if c := readClose(t, b.ws); c != 4400 {
		t.Fatalf("browser close %d, want 4400", c)
	}
	if m := readMsg(t, p.ws); m.Reason != "browser_gone" {
		t.Fatalf("app: %+v", m)
	}

	p, b = signUpForm(t, srv)
	p.send(wire.AppFrame{Type: wire.MsgProfile, Name: "a\nb"})
	if m := readMsg(t, p.ws); m.Type != wire.MsgError || m.Reason != "invalid_name" {
		t.Fatalf("%+v", m)
	}
	if c := readClose(t, p.ws); c != 4400 {
		t.Fatalf("app close %d, want 4400", c)
	}
	b.ws.WriteJSON(wire.BrowserFrame{Type: wire.MsgProfile, Email: "ada@example.com"})
	if m := b.next(); m.Type != wire.MsgApproved {
		t.Fatalf("%+v", m)
	}
}

// TestLinkAfterSignOut: a link room opened by a session that has since
// signed out links nothing.
func TestLinkAfterSignOut(t *testing.T) {
	srv, p := registered(t, nil)
	b := signIn(t, srv, p)
	ws, _, err := b.dial("?mode=link")
	if err != nil {
		t.Fatal(err)
	}
	b.ws = ws
	qr := b.next()
	if st, _ := b.do("POST", wire.PathLogout, ""); st != 204 {
		t.Fatal(st)
	}
	before := snapshot(t, srv.DB)
	second := newPhone(t, srv, "+41 78 000 00 00")
	second.join(qr)
	b.next() // scanned
	d := second.decide(wire.DecisionApprove, true, nil)
	if d.Type != wire.MsgError || d.Reason != "session_ended" {
		t.Fatalf("%+v", d)
	}
	if after := snapshot(t, srv.DB); after != before {
		t.Fatal("store changed")
	}
}
