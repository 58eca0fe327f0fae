package server_test

import (
	"testing"

	"github.com/gorilla/websocket"
	"github.com/qrauth/qrauth/wire"
)

// TestProfileUpdateRefusesInvalidUTF8: PATCH /api/me with bytes that are
// not UTF-8 (or an escaped lone surrogate) is refused with invalid_utf8 and
// stores nothing, where it used to store U+FFFD.
func TestProfileUpdateRefusesInvalidUTF8(t *testing.T) {
	srv, p := registered(t, nil)
	b := signIn(t, srv, p)
	before := snapshot(t, srv.DB)
	for _, body := range []string{
		"{\"name\":\"\xff\xfe\"}",
		"{\"name\":\"Ada\",\"email\":\"\xc3(@example.com\"}",
		`{"name":"\ud800"}`,
	} {
		if st, m := b.do("PATCH", wire.PathMe, body); st != 400 || m["code"] != "invalid" || m["reason"] != "invalid_utf8" {
			t.Errorf("%q: %d %v", body, st, m)
		}
	}
	if after := snapshot(t, srv.DB); after != before {
		t.Fatal("store changed")
	}
	// Any JSON body goes the same way, e.g. the ticket exchange.
	if st, m := b.do("POST", wire.PathSession, "{\"ticket\":\"\xff\"}"); st != 400 || m["reason"] != "invalid_utf8" {
		t.Errorf("ticket: %d %v", st, m)
	}
}

// signUpForm brings a new phone and a browser to the sign-up form.
func signUpForm(t *testing.T, srv *testServer) (*phone, *browser) {
	t.Helper()
	p := newPhone(t, srv, "+41 79 123 45 67")
	b := newBrowser(t, srv)
	p.join(b.open())
	b.next() // scanned
	if m := p.decide(wire.DecisionApprove, true, nil); m.Type != wire.MsgNeedsForm {
		t.Fatalf("%+v", m)
	}
	if m := b.next(); m.Type != wire.MsgSignUp {
		t.Fatalf("%+v", m)
	}
	return p, b
}

// TestSocketRefusesInvalidUTF8: a text frame that is not UTF-8 closes the
// socket with 1007 (RFC 6455 §8.1) after an invalid_utf8 error, on either
// socket; an escaped lone surrogate in a valid frame is invalid_utf8, 4400.
func TestSocketRefusesInvalidUTF8(t *testing.T) {
	srv := MustOpenServer(t, nil)
	before := snapshot(t, srv.DB)

	p, b := signUpForm(t, srv)
	b.ws.WriteMessage(websocket.TextMessage, []byte("{\"type\":\"profile\",\"name\":\"\xff\xfe\"}"))
	if m := b.next(); m.Type != wire.MsgError || m.Reason != "invalid_utf8" {
		t.Fatalf("%+v", m)
	}
	if c := readClose(t, b.ws); c != websocket.CloseInvalidFramePayloadData {
		t.Fatalf("browser close %d, want 1007", c)
	}
	if m := readMsg(t, p.ws); m.Reason != "browser_gone" {
		t.Fatalf("app: %+v", m)
	}

	p, b = signUpForm(t, srv)
	p.ws.WriteMessage(websocket.TextMessage, []byte("{\"type\":\"profile\",\"name\":\"\xc0\xaf\"}"))
	if m := readMsg(t, p.ws); m.Type != wire.MsgError || m.Reason != "invalid_utf8" {
		t.Fatalf("%+v", m)
	}
	if c := readClose(t, p.ws); c != websocket.CloseInvalidFramePayloadData {
		t.Fatalf("app close %d, want 1007", c)
	}

	b.ws.WriteMessage(websocket.TextMessage, []byte(`{"type":"profile","name":"\udcff"}`))
	if m := b.next(); m.Type != wire.MsgError || m.Reason != "invalid_utf8" {
		t.Fatalf("%+v", m)
	}
	if c := readClose(t, b.ws); c != 4400 {
		t.Fatalf("browser close %d, want 4400", c)
	}
	if after := snapshot(t, srv.DB); after != before {
		t.Fatal("store changed")
	}
}
