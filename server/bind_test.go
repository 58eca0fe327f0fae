package server_test

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/gorilla/websocket"
	"github.com/qrauth/qrauth"
)

// forgedBinds are bind cookie values the server never issued.
var forgedBinds = []string{"abc", strings.Repeat("b", 43), "5QUSJENPyP_HLO6AedQzDr8yIU5TY9mHnW2uMISIjU4"}

// TestBindCookieMustBeIssued: a bind cookie value the server did not issue
// (or an empty one) opens no room; the probe says why; a page load replaces
// it with an issued one.
func TestBindCookieMustBeIssued(t *testing.T) {
	srv := MustOpenServer(t, nil)
	for _, v := range append([]string{""}, forgedBinds...) {
		h := http.Header{"Origin": {srv.URL}, "Cookie": {"qrauth_bind=" + v}}
		ws, resp, err := websocket.DefaultDialer.Dial("ws"+strings.TrimPrefix(srv.URL, "http")+"/ws/browser", h)
		if err == nil {
			ws.Close()
			t.Fatalf("bind %q opened a room", v)
		}
		if resp == nil || resp.StatusCode != http.StatusUnauthorized {
			t.Fatalf("bind %q: %v %v", v, err, resp)
		}
		req, _ := http.NewRequest("GET", srv.URL+"/ws/browser", nil)
		req.Header.Set("Cookie", "qrauth_bind="+v)
		if st, body := doRaw(t, req); st != 401 || body["reason"] != "no_bind_cookie" {
			t.Fatalf("probe with bind %q: %d %v", v, st, body)
		}
		// The login page issues a real one in its place.
		req, _ = http.NewRequest("GET", srv.URL+"/", nil)
		req.Header.Set("Cookie", "qrauth_bind="+v)
		resp, err = http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		var issued string
		for _, c := range resp.Cookies() {
			if c.Name == "qrauth_bind" {
				issued = c.Value
			}
		}
		if issued == "" || issued == v || !qrauth.ValidToken(issued, 43, 43) {
			t.Fatalf("GET / with bind %q set %q", v, issued)
		}
	}
	// An issued value is kept, and opens a room.
	b := newBrowser(t, srv)
	req, _ := http.NewRequest("GET", srv.URL+"/", nil)
	for _, c := range b.client.Jar.Cookies(mustURL(srv.URL)) {
		req.AddCookie(c)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if len(resp.Cookies()) != 0 {
		t.Fatalf("a valid bind cookie was replaced: %v", resp.Cookies())
	}
	b.open()
}

// TestTicketExchangeEmptyBind: an empty or forged bind cookie at the ticket
// exchange is "missing" and does not burn the ticket.
func TestTicketExchangeEmptyBind(t *testing.T) {
	srv, p := registered(t, nil)
	b := newBrowser(t, srv)
	p.join(b.open())
	b.next() // scanned
	if d := p.decide(qrauth.DecisionApprove, false, nil); d.Result != qrauth.ResultSignedIn {
		t.Fatalf("%+v", d)
	}
	m := b.next()
	if m.Type != qrauth.MsgApproved {
		t.Fatalf("%+v", m)
	}
	for _, v := range append([]string{""}, forgedBinds...) {
		req, _ := http.NewRequest("POST", srv.URL+"/api/session", strings.NewReader(`{"ticket":"`+m.Ticket+`"}`))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Origin", srv.URL)
		req.Header.Set("Cookie", "qrauth_bind="+v)
		if st, body := doRaw(t, req); st != 401 || body["reason"] != "no_bind_cookie" {
			t.Fatalf("bind %q: %d %v", v, st, body)
		}
	}
	if st, body := b.exchange(m.Ticket); st != 200 {
		t.Fatalf("the ticket was burnt: %d %v", st, body)
	}
}

func doRaw(t *testing.T, req *http.Request) (int, map[string]any) {
	t.Helper()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var m map[string]any
	jsonDecode(resp.Body, &m)
	return resp.StatusCode, m
}

func jsonDecode(r io.Reader, v any) { json.NewDecoder(r).Decode(v) }
