package server_test

import (
	"log/slog"
	"strings"
	"testing"

	"github.com/qrauth/qrauth/wire"
)

// captureLogs starts a server whose log, at every level, goes to the
// returned buffer.
func captureLogs(t *testing.T) (*testServer, *lockedBuffer) {
	t.Helper()
	logs := new(lockedBuffer)
	srv := MustOpenServer(t, func(c *testConfig) {
		c.Logger = slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	})
	return srv, logs
}

// noErrorLines fails if a client's doing produced an ERROR line: those are
// for our own failures, and a client must not be able to write them at will.
func noErrorLines(t *testing.T, logs *lockedBuffer, want string) {
	t.Helper()
	out := logs.String()
	for _, line := range strings.Split(out, "\n") {
		if strings.Contains(line, "level=ERROR") {
			t.Errorf("client-provoked ERROR line: %s", line)
		}
	}
	if want != "" && !strings.Contains(out, want) {
		t.Errorf("log lacks %q:\n%s", want, out)
	}
}

// TestLostSignUpRaceIsNotAnError: two new phones with one number both reach
// the sign-up form; the second form loses with phone_taken, logged as info.
func TestLostSignUpRaceIsNotAnError(t *testing.T) {
	srv, logs := captureLogs(t)
	p1 := newPhone(t, srv, "+41 79 123 45 67")
	p2 := newPhone(t, srv, "+41 79 123 45 67")
	b1, b2 := newBrowser(t, srv), newBrowser(t, srv)
	for _, pb := range []struct {
		p *phone
		b *browser
	}{{p1, b1}, {p2, b2}} {
		if ch := pb.p.join(pb.b.open()); ch.Mode != wire.ModeSignUp {
			t.Fatalf("%+v", ch)
		}
		pb.b.next() // scanned
		if m := pb.p.decide(wire.DecisionApprove, true, nil); m.Type != wire.MsgNeedsForm {
			t.Fatalf("%+v", m)
		}
		pb.b.next() // signup
	}
	b1.ws.WriteJSON(wire.BrowserFrame{Type: wire.MsgProfile, Name: "Ada"})
	if m := b1.next(); m.Type != wire.MsgApproved {
		t.Fatalf("%+v", m)
	}
	b2.ws.WriteJSON(wire.BrowserFrame{Type: wire.MsgProfile, Name: "Bob"})
	if m := b2.next(); m.Type != wire.MsgError || m.Reason != "phone_taken" {
		t.Fatalf("%+v", m)
	}
	if c := readClose(t, b2.ws); c != 4409 {
		t.Fatalf("close %d", c)
	}
	noErrorLines(t, logs, "phone_taken")
}

// TestEndedLinkSessionIsNotAnError: a link room whose account page signed
// out refuses the phone, logged as info.
func TestEndedLinkSessionIsNotAnError(t *testing.T) {
	srv, logs := captureLogs(t)
	p := newPhone(t, srv, "+41 79 123 45 67")
	signUp(t, srv, p)
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
	second := newPhone(t, srv, "+41 78 000 00 00")
	second.join(qr)
	b.next() // scanned
	if d := second.decide(wire.DecisionApprove, true, nil); d.Reason != "session_ended" {
		t.Fatalf("%+v", d)
	}
	noErrorLines(t, logs, "session_ended")
}
