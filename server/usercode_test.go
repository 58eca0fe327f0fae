package server_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/qrauth/qrauth"
	"github.com/qrauth/qrauth/appclient"
	"github.com/qrauth/qrauth/server"
	"github.com/qrauth/qrauth/wire"
	"golang.org/x/time/rate"
)

// postCode posts a typed code as the app does, from the client address ip
// (X-Forwarded-For; the servers of these tests trust the loopback proxy),
// and returns the status, the reason of a refusal and the URL of a success.
func postCode(t *testing.T, srv *testServer, ip, code string) (status int, reason, url string) {
	t.Helper()
	body, _ := json.Marshal(wire.CodeRequest{Code: code})
	req, _ := http.NewRequest(http.MethodPost, srv.base()+wire.PathAppCode, strings.NewReader(string(body)))
	req.Header.Set("Content-Type", "application/json")
	if ip != "" {
		req.Header.Set("X-Forwarded-For", ip)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	if resp.StatusCode == http.StatusOK {
		var out wire.CodeResponse
		if err := json.Unmarshal(data, &out); err != nil {
			t.Fatalf("body %q", data)
		}
		return resp.StatusCode, "", out.URL
	}
	var e wire.ErrorBody
	if err := json.Unmarshal(data, &e); err != nil || e.Message == "" {
		t.Fatalf("error body %q", data)
	}
	if resp.StatusCode == http.StatusTooManyRequests && resp.Header.Get("Retry-After") == "" {
		t.Error("429 without Retry-After")
	}
	return resp.StatusCode, e.Reason, ""
}

// otherCode returns a well-formed code that differs from code.
func otherCode(code string) string {
	c, _ := wire.NormalizeUserCode(code)
	if c[0] == 'Z' {
		return "Y" + c[1:]
	}
	return "Z" + c[1:]
}

// TestSignInByTypedCode: a real browser socket shows a code under its QR
// code; appclient phones type it (in lower case, without the dash) instead
// of scanning: first a sign-up, then a sign-in, each ending with the
// browser's ticket exactly as after a scan.
func TestSignInByTypedCode(t *testing.T) {
	srv := MustOpenServer(t, nil)
	ctx := context.Background()
	dev, err := appclient.Init(ctx, appclient.InitOptions{Server: srv.URL, Phone: "+41 79 123 45 67", Name: "Typed"})
	if err != nil {
		t.Fatal(err)
	}
	for i, want := range []string{wire.ResultSignedUp, wire.ResultSignedIn} {
		b := newBrowser(t, srv)
		qr := b.open()
		if len(qr.UserCode) != 9 || qr.UserCode[4] != '-' {
			t.Fatalf("qr message without a user code: %+v", qr)
		}
		if _, err := wire.NormalizeUserCode(qr.UserCode); err != nil {
			t.Fatalf("shown code %q: %v", qr.UserCode, err)
		}
		typed := strings.ToLower(strings.ReplaceAll(qr.UserCode, "-", " "))
		url, err := dev.ExchangeCode(ctx, typed)
		if err != nil {
			t.Fatal(err)
		}
		if url != qr.URL {
			t.Fatalf("the code gave %s, the QR code shows %s", url, qr.URL)
		}
		sc, err := dev.Scan(ctx, url, appclient.ScanOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if m := b.next(); m.Type != wire.MsgScanned {
			t.Fatalf("browser: %+v", m)
		}
		opts := appclient.ApproveOptions{}
		if i == 0 {
			opts.Profile = &qrauth.Profile{Name: "Ada Lovelace"}
		}
		done, err := sc.Approve(ctx, opts)
		sc.Close()
		if err != nil || done.Result != want {
			t.Fatalf("approve: %+v %v", done, err)
		}
		m := b.next()
		if m.Type != wire.MsgApproved {
			t.Fatalf("browser: %+v", m)
		}
		if st, body := b.exchange(m.Ticket); st != 200 {
			t.Fatalf("exchange: %d %v", st, body)
		}
		if st, me := b.do("GET", wire.PathMe, ""); st != 200 || me["user"].(map[string]any)["name"] != "Ada Lovelace" {
			t.Fatalf("me: %d %v", st, me)
		}
	}

	// ScanCode does both steps; a code works once.
	b := newBrowser(t, srv)
	qr := b.open()
	sc, err := dev.ScanCode(ctx, qr.UserCode, appclient.ScanOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if sc.Challenge.Mode != wire.ModeLogin || sc.Challenge.Account.Name != "Ada Lovelace" {
		t.Fatalf("challenge %+v", sc.Challenge)
	}
	sc.Close()
	_, err = dev.ExchangeCode(ctx, qr.UserCode)
	if qrauth.ErrorReason(err) != "code_unknown" || qrauth.ErrorCode(err) != qrauth.ENOTFOUND {
		t.Fatalf("second use of a code: %v", err)
	}
	// Text that is no code is refused before anything is sent.
	if _, err := dev.ExchangeCode(ctx, "https://example.com/"); qrauth.ErrorReason(err) != "invalid_code" {
		t.Fatalf("not a code: %v", err)
	}
}

// TestTypedCodeOnce: a code works once, and not at all once its QR code
// was scanned; a link room shows no code.
func TestTypedCodeOnce(t *testing.T) {
	srv, p := registered(t, nil)
	b := newBrowser(t, srv)
	qr := b.open()
	if st, _, url := postCode(t, srv, "", qr.UserCode); st != 200 || url != qr.URL {
		t.Fatalf("first use: %d %s", st, url)
	}
	if st, reason, _ := postCode(t, srv, "", qr.UserCode); st != 404 || reason != "code_unknown" {
		t.Fatalf("second use: %d %s", st, reason)
	}
	// The PSK the code gave is the one that joins.
	if ch := p.join(qr); ch.Type != wire.MsgChallenge {
		t.Fatalf("join with the code's PSK: %+v", ch)
	}

	// Scanned: the code names a spent PSK and is gone too.
	b2 := newBrowser(t, srv)
	qr2 := b2.open()
	q := *p
	q.tb = t
	if ch := q.join(qr2); ch.Type != wire.MsgChallenge {
		t.Fatalf("join: %+v", ch)
	}
	if st, reason, _ := postCode(t, srv, "", qr2.UserCode); st != 404 || reason != "code_unknown" {
		t.Fatalf("code of a scanned room: %d %s", st, reason)
	}

	// Link rooms: a guessed code would add the guesser's phone to the
	// account, so they have none.
	b3 := signIn(t, srv, p)
	ws, resp, err := b3.dial("?mode=link")
	if err != nil {
		t.Fatalf("%v %v", err, resp)
	}
	b3.ws = ws
	t.Cleanup(func() { ws.Close() })
	if m := b3.next(); m.Type != wire.MsgQR || m.Mode != wire.ModeLink || m.UserCode != "" {
		t.Fatalf("link qr: %+v", m)
	}
}

// TestTypedCodeRotates: the code rotates with the PSK; the old code is
// refused, the new one gives the new QR code's URL.
func TestTypedCodeRotates(t *testing.T) {
	srv := MustOpenServer(t, func(c *testConfig) { c.PSKRotation = 2 * time.Second })
	b := newBrowser(t, srv)
	old := b.open()
	next := b.next()
	if next.Type != wire.MsgQR || next.URL == old.URL || next.UserCode == "" || next.UserCode == old.UserCode {
		t.Fatalf("rotation: %+v after %+v", next, old)
	}
	if st, reason, _ := postCode(t, srv, "", old.UserCode); st != 404 || reason != "code_unknown" {
		t.Fatalf("old code: %d %s", st, reason)
	}
	if st, _, url := postCode(t, srv, "", next.UserCode); st != 200 || url != next.URL {
		t.Fatalf("new code: %d %s (QR %s)", st, url, next.URL)
	}
}

// TestTypedCodeLimits: wrong codes count against the client's address and
// against the whole instance; once either limit is reached even the right
// code is refused (else a guesser could keep trying), and malformed text,
// which can name no room, counts against neither.
func TestTypedCodeLimits(t *testing.T) {
	srv := MustOpenServer(t, func(c *testConfig) {
		c.TrustedProxies = []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}
		c.CodeRate, c.CodeBurst = rate.Every(time.Hour), 2
		c.CodeGlobalRate, c.CodeGlobalBurst = rate.Every(time.Hour), 3
	})
	before := snapshot(t, srv.DB)
	b := newBrowser(t, srv)
	qr := b.open()
	wrong := otherCode(qr.UserCode)

	for range 5 {
		if st, reason, _ := postCode(t, srv, "203.0.113.1", "not a code!"); st != 400 || reason != "invalid_code" {
			t.Fatalf("malformed: %d %s", st, reason)
		}
	}
	for range 2 {
		if st, reason, _ := postCode(t, srv, "203.0.113.1", wrong); st != 404 || reason != "code_unknown" {
			t.Fatalf("wrong code: %d %s", st, reason)
		}
	}
	// This address has used its guesses: refused, the right code too.
	if st, reason, _ := postCode(t, srv, "203.0.113.1", qr.UserCode); st != 429 || reason != "rate_limited" {
		t.Fatalf("per-address limit: %d %s", st, reason)
	}
	// Another address guesses once more: the instance's budget is spent.
	if st, reason, _ := postCode(t, srv, "203.0.113.2", wrong); st != 404 || reason != "code_unknown" {
		t.Fatalf("wrong code: %d %s", st, reason)
	}
	if st, reason, _ := postCode(t, srv, "198.51.100.9", qr.UserCode); st != 429 || reason != "too_many_guesses" {
		t.Fatalf("global limit: %d %s", st, reason)
	}
	// Scanning still works, and the refused code was never consumed.
	p := newPhone(t, srv, "+41 79 123 45 67")
	if ch := p.join(qr); ch.Type != wire.MsgChallenge {
		t.Fatalf("scan after the limits: %+v", ch)
	}
	if after := snapshot(t, srv.DB); after != before {
		t.Fatal("refused codes changed the store")
	}
}

// TestTypedCodeDefaultLimits: with the defaults, a sixth wrong code from
// one address is refused (the arithmetic of docs/threat-model.md assumes
// these numbers).
func TestTypedCodeDefaultLimits(t *testing.T) {
	srv := MustOpenServer(t, nil)
	b := newBrowser(t, srv)
	qr := b.open()
	wrong := otherCode(qr.UserCode)
	for i := range server.DefaultCodeBurst {
		if st, reason, _ := postCode(t, srv, "", wrong); st != 404 || reason != "code_unknown" {
			t.Fatalf("wrong code %d: %d %s", i, st, reason)
		}
	}
	if st, reason, _ := postCode(t, srv, "", wrong); st != 429 || reason != "rate_limited" {
		t.Fatalf("after %d wrong codes: %d %s", server.DefaultCodeBurst, st, reason)
	}
}
