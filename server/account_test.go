package server_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/qrauth/qrauth"
	"github.com/qrauth/qrauth/wire"
)

func TestLinkPhone(t *testing.T) {
	srv, p := registered(t, nil)
	b := signIn(t, srv, p)
	ws, resp, err := b.dial("?mode=link")
	if err != nil {
		t.Fatalf("%v %v", err, resp)
	}
	b.ws = ws
	qr := b.next()
	if qr.Type != wire.MsgQR || qr.Mode != wire.ModeLink {
		t.Fatalf("%+v", qr)
	}
	second := newPhone(t, srv, "+41 78 000 00 00")
	ch := second.join(qr)
	if ch.Type != wire.MsgChallenge || ch.Mode != wire.ModeLink || ch.Account.Name != "Ada Lovelace" {
		t.Fatalf("%+v", ch)
	}
	b.next() // scanned
	if d := second.decide(wire.DecisionApprove, true, nil); d.Type != wire.MsgDone || d.Result != "linked" {
		t.Fatalf("%+v", d)
	}
	if m := b.next(); m.Type != wire.MsgLinked || m.Device.ID != second.id {
		t.Fatalf("%+v", m)
	}
	_, devs := b.do("GET", wire.PathDevices, "")
	if n := len(devs["devices"].([]any)); n != 2 {
		t.Fatalf("devices %d", n)
	}
	// The linked phone signs in on its own now, to the same account.
	b2 := signIn(t, srv, second)
	_, me := b2.do("GET", wire.PathMe, "")
	if me["user"].(map[string]any)["name"] != "Ada Lovelace" {
		t.Fatalf("%v", me)
	}
}

func TestLinkNeedsSession(t *testing.T) {
	srv := MustOpenServer(t, nil)
	b := newBrowser(t, srv)
	_, resp, err := b.dial("?mode=link")
	if err == nil || resp.StatusCode != 401 {
		t.Fatalf("%v %v", err, resp)
	}
}

func TestSessionsRevokeAndLogout(t *testing.T) {
	srv, p := registered(t, nil)
	b1 := signIn(t, srv, p)
	b2 := signIn(t, srv, p)
	_, me2 := b2.do("GET", wire.PathMe, "")
	id2 := me2["session_id"].(string)
	if st, _ := b1.do("DELETE", wire.Prefix(wire.PathSessionByID)+id2, ""); st != 204 {
		t.Fatal(st)
	}
	if st, body := b2.do("GET", wire.PathMe, ""); st != 401 {
		t.Fatalf("revoked session still works: %d %v", st, body)
	}
	if st, _ := b1.do("DELETE", wire.Path(wire.PathSessionByID, "s_nope"), ""); st != 404 {
		t.Fatal(st)
	}
	if st, _ := b1.do("POST", wire.PathLogout, ""); st != 204 {
		t.Fatal(st)
	}
	if st, _ := b1.do("GET", wire.PathMe, ""); st != 401 {
		t.Fatal(st)
	}
}

func TestProfileUpdate(t *testing.T) {
	srv, p := registered(t, nil)
	b := signIn(t, srv, p)
	if st, body := b.do("PATCH", wire.PathMe, `{"name":"Ada King","email":"not an address"}`); st != 400 || body["reason"] != "invalid_email" {
		t.Fatalf("%d %v", st, body)
	}
	if st, body := b.do("PATCH", wire.PathMe, `{"name":"Ada King","email":"ada@king.example"}`); st != 200 {
		t.Fatalf("%d %v", st, body)
	}
	_, me := b.do("GET", wire.PathMe, "")
	if me["user"].(map[string]any)["name"] != "Ada King" {
		t.Fatal(me)
	}
}

func TestCrossSiteWriteRefused(t *testing.T) {
	srv, p := registered(t, nil)
	b := signIn(t, srv, p)
	req, _ := http.NewRequest("POST", srv.URL+wire.PathLogout, nil)
	req.Header.Set("Origin", "https://evil.example")
	resp, err := b.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 401 {
		t.Fatal(resp.StatusCode)
	}
	if st, _ := b.do("GET", wire.PathMe, ""); st != 200 {
		t.Fatal("cross-site logout worked")
	}
}

// signed makes a device-signed app API request.
func (p *phone) signed(method, path string, nonce string, at time.Time) *http.Response {
	p.tb.Helper()
	r := wire.AppRequest{Method: method, Path: path, Time: at.Unix(), Nonce: nonce, DeviceID: p.id}
	req, _ := http.NewRequest(method, p.srv.URL+path, nil)
	req.Header.Set(wire.HeaderDevice, string(p.id))
	req.Header.Set(wire.HeaderTime, strconv.FormatInt(r.Time, 10))
	req.Header.Set(wire.HeaderNonce, nonce)
	req.Header.Set(wire.HeaderSignature, r.Sign(p.priv))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		p.tb.Fatal(err)
	}
	resp.Body.Close()
	return resp
}

func TestAppSessionsAPI(t *testing.T) {
	srv, p := registered(t, nil)
	b := signIn(t, srv, p)
	_, me := b.do("GET", wire.PathMe, "")
	sid := me["session_id"].(string)
	now := time.Now()
	nonce := base64.RawURLEncoding.EncodeToString([]byte("sixteen bytes!!!"))
	if r := p.signed("GET", wire.PathAppSessions, nonce, now); r.StatusCode != 200 {
		t.Fatal(r.StatusCode)
	}
	if r := p.signed("GET", wire.PathAppSessions, nonce, now); r.StatusCode != 401 {
		t.Fatalf("replay: %d", r.StatusCode)
	}
	if r := p.signed("GET", wire.PathAppSessions, "bm9uY2Utb2xkLWNsb2Nr", now.Add(-time.Hour)); r.StatusCode != 401 {
		t.Fatalf("old: %d", r.StatusCode)
	}
	other := newPhone(t, srv, "+1 202 555 0100")
	if r := other.signed("GET", wire.PathAppSessions, "b3RoZXItcGhvbmUtbm9uY2U", now); r.StatusCode != 401 {
		t.Fatalf("unknown device: %d", r.StatusCode)
	}
	if r := p.signed("DELETE", wire.Prefix(wire.PathAppSessionByID)+sid, "ZGVsZXRlLW5vbmNlLTEyMzQ", now); r.StatusCode != 204 {
		t.Fatal(r.StatusCode)
	}
	if st, _ := b.do("GET", wire.PathMe, ""); st != 401 {
		t.Fatal("session survived revocation from the app")
	}
}

func TestShutdownTellsBrowsersToReconnect(t *testing.T) {
	srv := MustOpenServer(t, nil)
	b := newBrowser(t, srv)
	b.open()
	done := make(chan error)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		done <- srv.Shutdown(ctx)
	}()
	if m := b.next(); m.Type != wire.MsgReconnect {
		t.Fatalf("%+v", m)
	}
	if c := readClose(t, b.ws); c != wire.CloseServiceRestart {
		t.Fatalf("close %d", c)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func TestSecretsNeverLogged(t *testing.T) {
	var logs lockedBuffer
	srv := MustOpenServer(t, func(c *testConfig) {
		c.Logger = slog.New(slog.NewTextHandler(io.MultiWriter(&logs), &slog.HandlerOptions{Level: slog.LevelDebug}))
	})
	p := newPhone(t, srv, "+41 79 123 45 67")
	b := newBrowser(t, srv)
	qr := b.open()
	psk := qr.URL[strings.LastIndex(qr.URL, "/")+1:]
	http.Get(qr.URL) // a camera app opening the link
	p.join(qr)
	b.next()
	p.decide(wire.DecisionApprove, true, &qrauth.Profile{Name: "Ada"})
	tk := b.next().Ticket
	b.exchange(tk)
	b.do("GET", wire.PathMe, "")
	var token string
	for _, c := range b.client.Jar.Cookies(mustURL(srv.URL)) {
		if c.Name == "qrauth_session" {
			token = c.Value
		}
	}
	// And a refused attempt, which is logged.
	q := newPhone(t, srv, "+41 79 123 45 67")
	q.join(b.open())
	if !strings.Contains(logs.String(), "route=/q/:psk") {
		t.Fatalf("request log missing:\n%s", logs.String())
	}
	for name, secret := range map[string]string{"psk": psk, "ticket": tk, "session token": token, "nonce": p.ch.Nonce} {
		if secret == "" {
			t.Fatalf("%s not captured", name)
		}
		if strings.Contains(logs.String(), secret) {
			t.Fatalf("%s appears in the logs", name)
		}
	}
}

func TestRemoveDevice(t *testing.T) {
	srv, p := registered(t, nil)
	b := signIn(t, srv, p)
	other := newBrowser(t, srv)
	if st, _ := other.do("DELETE", wire.Prefix(wire.PathDeviceByID)+string(p.id), ""); st != 401 {
		t.Fatalf("anonymous: %d", st)
	}
	if st, body := b.do("DELETE", wire.Prefix(wire.PathDeviceByID)+string(p.id), ""); st != 204 {
		t.Fatalf("%d %v", st, body)
	}
	if st, _ := b.do("DELETE", wire.Prefix(wire.PathDeviceByID)+string(p.id), ""); st != 404 {
		t.Fatalf("again: %d", st)
	}
	// The removed phone's key signs nobody in; its number still names the
	// account, so it cannot sign up afresh either.
	b2 := newBrowser(t, srv)
	wantErrorMsg(t, p.join(b2.open()), p.ws, "device_not_linked", 4409)
	// The browser session survives and can link a new phone.
	if st, _ := b.do("GET", wire.PathMe, ""); st != 200 {
		t.Fatal(st)
	}
}

// The store belongs to whoever opened it: Shutdown leaves it open, so that
// the caller decides when it closes (cmd/qrauthd's Main closes the file it
// opened). Before, Shutdown closed the store it had been given.
func TestShutdownLeavesStoreOpen(t *testing.T) {
	srv := MustOpenServer(t, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := srv.Server.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := srv.DB.ListUsers(ctx, "", 1); err != nil {
		t.Fatalf("store closed by the server: %v", err)
	}
}
