package server_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/qrauth/qrauth"
	"github.com/qrauth/qrauth/wire"
)

// wantError reads the error message the server sends before closing, and
// the close code.
func wantError(t *testing.T, ws *websocket.Conn, reason string, closeCode int) {
	t.Helper()
	wantErrorMsg(t, readMsg(t, ws), ws, reason, closeCode)
}

// wantErrorMsg checks an error message already read, then the close code.
func wantErrorMsg(t *testing.T, m *wire.ServerMessage, ws *websocket.Conn, reason string, closeCode int) {
	t.Helper()
	if m.Type != wire.MsgError || m.Reason != reason || m.Message == "" {
		t.Fatalf("got %+v, want error %s", m, reason)
	}
	if c := readClose(t, ws); c != closeCode {
		t.Fatalf("close code %d, want %d", c, closeCode)
	}
}

// registered returns a server with one signed-up phone.
func registered(t *testing.T, edit func(*testConfig)) (*testServer, *phone) {
	srv := MustOpenServer(t, edit)
	p := newPhone(t, srv, "+41 79 123 45 67")
	signUp(t, srv, p)
	return srv, p
}

func TestDecisionRefused(t *testing.T) {
	srv, p := registered(t, nil)
	cases := []struct {
		name string
		edit func(d *wire.Decision, p *phone)
	}{
		{"WrongKey", func(d *wire.Decision, p *phone) { _, p.priv, _ = ed25519.GenerateKey(rand.Reader) }},
		{"OtherOrigin", func(d *wire.Decision, p *phone) { d.Origin = "https://evil.example" }},
		{"OtherRoom", func(d *wire.Decision, p *phone) { d.Room = "AAAAAAAAAAAAAAAAAAAAAA" }},
		{"OtherNonce", func(d *wire.Decision, p *phone) { d.Nonce = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA" }},
		{"OtherMode", func(d *wire.Decision, p *phone) { d.Mode = wire.ModeLink }},
		{"DenySignedAsApprove", func(d *wire.Decision, p *phone) { d.Decision = wire.DecisionDeny }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			before := snapshot(t, srv.DB)
			q := *p
			q.tb = t
			b := newBrowser(t, srv)
			q.join(b.open())
			b.next() // scanned
			d := q.decision(wire.DecisionApprove)
			tc.edit(&d, &q)
			q.send(wire.AppFrame{Type: wire.MsgDecision, Decision: wire.DecisionApprove, Signature: d.Sign(q.priv)})
			wantError(t, q.ws, "bad_signature", 4401)
			// The browser gets a fresh code to scan again; nobody signed in.
			if m := b.next(); m.Type != wire.MsgQR {
				t.Fatalf("browser: %+v, want a new qr", m)
			}
			if after := snapshot(t, srv.DB); after != before {
				t.Fatalf("store changed:\n%s\n%s", before, after)
			}
		})
	}
}

func TestJoinRefused(t *testing.T) {
	t.Run("ReusedPSK", func(t *testing.T) {
		srv, p := registered(t, nil)
		b := newBrowser(t, srv)
		qr := b.open()
		if ch := p.join(qr); ch.Type != wire.MsgChallenge {
			t.Fatalf("first join: %+v", ch)
		}
		before := snapshot(t, srv.DB)
		other := newPhone(t, srv, "+44 7700 900123")
		wantErrorMsg(t, other.join(qr), other.ws, "psk_unknown", 4404)
		if after := snapshot(t, srv.DB); after != before {
			t.Fatal("store changed")
		}
	})
	t.Run("ExpiredPSK", func(t *testing.T) {
		srv := MustOpenServer(t, func(c *testConfig) { c.PSKRotation = 50 * time.Millisecond })
		p := newPhone(t, srv, "+41 79 123 45 67")
		b := newBrowser(t, srv)
		old := b.open()
		if m := b.next(); m.Type != wire.MsgQR || m.URL == old.URL {
			t.Fatalf("rotation: %+v", m)
		}
		before := snapshot(t, srv.DB)
		wantErrorMsg(t, p.join(old), p.ws, "psk_unknown", 4404)
		if after := snapshot(t, srv.DB); after != before {
			t.Fatal("store changed")
		}
	})
	t.Run("UnknownPSK", func(t *testing.T) {
		srv := MustOpenServer(t, nil)
		p := newPhone(t, srv, "+41 79 123 45 67")
		wantErrorMsg(t, p.join(&wire.ServerMessage{URL: srv.URL + wire.Path(wire.PathScan, "AAAAAAAAAAAAAAAAAAAAAA")}), p.ws, "psk_unknown", 4404)
	})
	t.Run("KnownPhoneUnknownDevice", func(t *testing.T) {
		srv, p := registered(t, nil)
		before := snapshot(t, srv.DB)
		// Same phone number, new key: knowing the number is not enough.
		thief := newPhone(t, srv, "+41 79 123 45 67")
		if thief.phone != p.phone {
			t.Fatal("phone hashes differ")
		}
		b := newBrowser(t, srv)
		wantErrorMsg(t, thief.join(b.open()), thief.ws, "device_not_linked", 4409)
		if m := b.next(); m.Type != wire.MsgQR {
			t.Fatalf("browser: %+v, want a new code", m)
		}
		if after := snapshot(t, srv.DB); after != before {
			t.Fatal("store changed")
		}
	})
	t.Run("KnownDeviceOtherPhone", func(t *testing.T) {
		srv, p := registered(t, nil)
		q := *p
		q.tb = t
		q.phone = strings.Repeat("a", 64)
		b := newBrowser(t, srv)
		wantErrorMsg(t, q.join(b.open()), q.ws, "phone_mismatch", 4401)
	})
}

func TestTicketRefused(t *testing.T) {
	approved := func(t *testing.T) (*testServer, *browser, string) {
		srv, p := registered(t, nil)
		b := newBrowser(t, srv)
		p.join(b.open())
		b.next()
		p.decide(wire.DecisionApprove, false, nil)
		m := b.next()
		if m.Type != wire.MsgApproved {
			t.Fatalf("%+v", m)
		}
		return srv, b, m.Ticket
	}
	t.Run("Reused", func(t *testing.T) {
		_, b, tk := approved(t)
		if st, _ := b.exchange(tk); st != 200 {
			t.Fatal(st)
		}
		st, body := b.exchange(tk)
		if st != 401 || body["reason"] != "ticket_invalid" {
			t.Fatalf("%d %v", st, body)
		}
	})
	t.Run("OtherBrowser", func(t *testing.T) {
		srv, b, tk := approved(t)
		before := snapshot(t, srv.DB)
		thief := newBrowser(t, srv)
		st, body := thief.exchange(tk)
		if st != 401 || body["reason"] != "ticket_wrong_browser" {
			t.Fatalf("%d %v", st, body)
		}
		if after := snapshot(t, srv.DB); after != before {
			t.Fatal("store changed")
		}
		// The attempt burnt the ticket.
		if st, _ := b.exchange(tk); st != 401 {
			t.Fatalf("owner after theft attempt: %d", st)
		}
	})
	t.Run("Malformed", func(t *testing.T) {
		srv := MustOpenServer(t, nil)
		b := newBrowser(t, srv)
		for _, body := range []string{"", "{", `{"ticket":1}`, `{"ticket":"x"}`, `{"ticket":"` + strings.Repeat("A", 43) + `","x":1}`, strings.Repeat("[", 20000)} {
			st, m := b.do("POST", wire.PathSession, body)
			if st != 400 && st != 413 {
				t.Fatalf("%q: %d %v", body, st, m)
			}
		}
	})
	t.Run("NoBindCookie", func(t *testing.T) {
		srv, _, tk := approved(t)
		resp, err := http.Post(srv.URL+wire.PathSession, "application/json", strings.NewReader(`{"ticket":"`+tk+`"}`))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 401 {
			t.Fatal(resp.StatusCode)
		}
	})
}

func TestSocketRefused(t *testing.T) {
	t.Run("WrongOrigin", func(t *testing.T) {
		srv := MustOpenServer(t, nil)
		b := newBrowser(t, srv)
		u := "ws" + strings.TrimPrefix(srv.URL, "http") + wire.PathBrowserSocket
		for _, origin := range []string{"https://evil.example", ""} {
			_, resp, err := websocket.DefaultDialer.Dial(u, http.Header{"Origin": {origin}})
			if err == nil || resp == nil || resp.StatusCode != 401 {
				t.Fatalf("origin %q: %v %v", origin, err, resp)
			}
		}
		_, resp, err := websocket.DefaultDialer.Dial("ws"+strings.TrimPrefix(srv.URL, "http")+wire.PathAppSocket, http.Header{"Origin": {"https://evil.example"}})
		if err == nil || resp.StatusCode != 401 {
			t.Fatalf("app socket: %v", err)
		}
		_ = b
		if n := srv.Server; n == nil {
			t.Fatal()
		}
	})
	t.Run("NoBindCookie", func(t *testing.T) {
		srv := MustOpenServer(t, nil)
		u := "ws" + strings.TrimPrefix(srv.URL, "http") + wire.PathBrowserSocket
		_, resp, err := websocket.DefaultDialer.Dial(u, http.Header{"Origin": {srv.URL}})
		if err == nil || resp.StatusCode != 401 {
			t.Fatalf("%v %v", err, resp)
		}
	})
	t.Run("OversizedFrame", func(t *testing.T) {
		srv, p := registered(t, nil)
		before := snapshot(t, srv.DB)
		p.dial()
		p.ws.WriteMessage(websocket.TextMessage, bytes.Repeat([]byte("x"), wire.MaxFrameSize+1))
		if c := readClose(t, p.ws); c != websocket.CloseMessageTooBig {
			t.Fatalf("close %d", c)
		}
		b := newBrowser(t, srv)
		b.open()
		b.ws.WriteMessage(websocket.TextMessage, bytes.Repeat([]byte("x"), wire.MaxFrameSize+1))
		if c := readClose(t, b.ws); c != websocket.CloseMessageTooBig {
			t.Fatalf("close %d", c)
		}
		if after := snapshot(t, srv.DB); after != before {
			t.Fatal("store changed")
		}
	})
	t.Run("MalformedFrame", func(t *testing.T) {
		srv, p := registered(t, nil)
		before := snapshot(t, srv.DB)
		for _, f := range []string{"{", `{"type":"join"}`, `{"type":"nope"}`, `{"type":"join","psk":1}`, `[]`, `{"type":"decision","decision":"maybe"}`} {
			p.dial()
			p.ws.WriteMessage(websocket.TextMessage, []byte(f))
			m := readMsg(t, p.ws)
			if m.Type != wire.MsgError || m.Code != qrauth.EINVALID {
				t.Fatalf("%s: %+v", f, m)
			}
			if c := readClose(t, p.ws); c != 4400 {
				t.Fatalf("%s: close %d", f, c)
			}
		}
		b := newBrowser(t, srv)
		b.open()
		b.ws.WriteMessage(websocket.TextMessage, []byte(`{"type":"profile","name":5}`))
		wantError(t, b.ws, "malformed_frame", 4400)
		if after := snapshot(t, srv.DB); after != before {
			t.Fatal("store changed")
		}
	})
	t.Run("DecisionBeforeJoin", func(t *testing.T) {
		srv := MustOpenServer(t, nil)
		p := newPhone(t, srv, "+41 79 123 45 67")
		p.dial()
		p.send(wire.AppFrame{Type: wire.MsgDecision, Decision: wire.DecisionApprove})
		wantError(t, p.ws, "join_first", 4400)
	})
}

func TestRateLimit(t *testing.T) {
	srv := MustOpenServer(t, func(c *testConfig) { c.RoomRate = 0.001; c.RoomBurst = 2 })
	b := newBrowser(t, srv)
	for i := 0; i < 2; i++ {
		ws, _, err := b.dial("")
		if err != nil {
			t.Fatal(err)
		}
		defer ws.Close()
	}
	_, resp, err := b.dial("")
	if err == nil || resp.StatusCode != 429 || resp.Header.Get("Retry-After") == "" {
		t.Fatalf("third room: %v %+v", err, resp)
	}
}

func TestRoomCap(t *testing.T) {
	srv := MustOpenServer(t, func(c *testConfig) { c.MaxRooms = 1 })
	b := newBrowser(t, srv)
	b.open()
	_, resp, err := b.dial("")
	if err == nil || resp.StatusCode != 429 || resp.Header.Get("Retry-After") == "" {
		t.Fatalf("second room: %v %+v", err, resp)
	}
}

func TestRoomExpires(t *testing.T) {
	srv := MustOpenServer(t, func(c *testConfig) { c.RoomTTL = 100 * time.Millisecond })
	b := newBrowser(t, srv)
	qr := b.open()
	if qr.RoomExpiresIn != 1 {
		t.Fatalf("room_expires_in %d", qr.RoomExpiresIn)
	}
	if m := b.next(); m.Type != wire.MsgExpired {
		t.Fatalf("%+v", m)
	}
	if c := readClose(t, b.ws); c != 4410 {
		t.Fatalf("close %d", c)
	}
	// A new code without reloading the page: just a new socket.
	b.open()
}

func TestDeny(t *testing.T) {
	srv, p := registered(t, nil)
	b := newBrowser(t, srv)
	p.join(b.open())
	b.next()
	if d := p.decide(wire.DecisionDeny, false, nil); d.Type != wire.MsgDone || d.Result != "denied" {
		t.Fatalf("%+v", d)
	}
	if m := b.next(); m.Type != wire.MsgDenied {
		t.Fatalf("%+v", m)
	}
	events, _ := srv.DB.ListAudit(context.Background(), qrauth.AuditFilter{})
	if last := events[len(events)-1]; last.Type != qrauth.AuditDenied {
		t.Fatalf("last audit %+v", last)
	}
}

func TestScanPageDoesNotConsume(t *testing.T) {
	srv, p := registered(t, nil)
	b := newBrowser(t, srv)
	qr := b.open()
	resp, err := http.Get(qr.URL)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") {
		t.Fatalf("%d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	if ch := p.join(qr); ch.Type != wire.MsgChallenge {
		t.Fatalf("%+v", ch)
	}
}

// TestSocketProbe: a plain GET of the socket path tells the page why its
// socket was refused, without using up a token.
func TestSocketProbe(t *testing.T) {
	srv := MustOpenServer(t, func(c *testConfig) { c.RoomRate = 0.001; c.RoomBurst = 1 })
	b := newBrowser(t, srv)
	if st, body := b.do("GET", wire.PathBrowserSocket, ""); st != 400 || body["reason"] != "not_websocket" {
		t.Fatalf("%d %v", st, body)
	}
	resp, err := http.Get(srv.URL + wire.PathBrowserSocket)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 401 {
		t.Fatalf("without cookie: %d", resp.StatusCode)
	}
	b.open() // the probes took no token: the one token is still there
	if st, body := b.do("GET", wire.PathBrowserSocket, ""); st != 429 || body["reason"] != "rate_limited" {
		t.Fatalf("%d %v", st, body)
	}
}
