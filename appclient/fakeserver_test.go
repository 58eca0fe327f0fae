package appclient_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/gorilla/websocket"
	"github.com/qrauth/qrauth"
	"github.com/qrauth/qrauth/appclient"
)

// testSalt is the fake server's phone salt.
var testSalt = []byte("0123456789abcdef")

// testPSK is a well-formed PSK of 22 base64url characters.
const testPSK = "AAAAAAAAAAAAAAAAAAAAAA"

// fakeServer is a stand-in for the qrauth server, just enough to drive the
// app side: discovery, the app socket (each connection runs the test's
// script) and whatever HTTP handlers a test adds. The real server's
// end-to-end tests live with the server.
type fakeServer struct {
	*httptest.Server
	Mux *http.ServeMux

	t      testing.TB
	script func(c *appConn)

	mu    sync.Mutex
	conns []*websocket.Conn
	wg    sync.WaitGroup
	joins int
}

// newFakeServer starts a fake server whose app socket runs script for each
// connection. It is closed when the test ends, after every script returned.
func newFakeServer(t testing.TB, script func(c *appConn)) *fakeServer {
	s := &fakeServer{t: t, script: script, Mux: http.NewServeMux()}
	s.Server = httptest.NewServer(s.Mux)
	s.Mux.HandleFunc("GET /.well-known/qrauth", func(w http.ResponseWriter, r *http.Request) {
		json.NewEncoder(w).Encode(s.Discovery())
	})
	s.Mux.HandleFunc("GET /ws/app", s.handleApp)
	t.Cleanup(func() {
		s.Server.Close()
		s.mu.Lock()
		for _, c := range s.conns {
			c.Close() // unblocks a script still reading
		}
		s.mu.Unlock()
		s.wg.Wait()
	})
	return s
}

// Discovery is the discovery document the fake serves.
func (s *fakeServer) Discovery() qrauth.Discovery {
	return qrauth.Discovery{
		ProtocolVersion: qrauth.ProtocolVersion,
		Origin:          s.URL,
		PhoneSalt:       base64.RawURLEncoding.EncodeToString(testSalt),
		QRPrefix:        s.URL + "/q/",
		AppSocket:       "ws" + strings.TrimPrefix(s.URL, "http") + "/ws/app",
		SessionsURL:     s.URL + "/api/app/sessions",
	}
}

// Joins reports how many app sockets were opened.
func (s *fakeServer) Joins() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.joins
}

func (s *fakeServer) handleApp(w http.ResponseWriter, r *http.Request) {
	if o := r.Header.Get("Origin"); o != "" {
		s.t.Errorf("app socket sent Origin %q; native apps send none", o)
	}
	up := websocket.Upgrader{} // refuses requests with a foreign Origin
	conn, err := up.Upgrade(w, r, nil)
	if err != nil {
		s.t.Errorf("upgrade: %v", err)
		return
	}
	s.mu.Lock()
	s.conns = append(s.conns, conn)
	s.joins++
	s.wg.Add(1)
	s.mu.Unlock()
	defer s.wg.Done()
	defer conn.Close()
	conn.SetReadLimit(qrauth.MaxFrameSize)
	s.script(&appConn{t: s.t, Conn: conn, Origin: s.URL})
}

// appConn is the server's end of one app socket.
type appConn struct {
	*websocket.Conn
	t      testing.TB
	Origin string
}

// Read reads one app frame and validates it with the root package's
// strict decoder, as the real server does. It returns nil at the end of the
// socket.
func (c *appConn) Read() *qrauth.AppFrame {
	_, data, err := c.ReadMessage()
	if err != nil {
		return nil
	}
	f, err := qrauth.DecodeAppFrame(data)
	if err != nil {
		c.t.Errorf("app sent an invalid frame %s: %v", data, err)
		return nil
	}
	return f
}

// Send writes a server message.
func (c *appConn) Send(m *qrauth.ServerMessage) {
	if err := c.WriteJSON(m); err != nil {
		c.t.Errorf("send %s: %v", m.Type, err)
	}
}

// Fail sends an error message and closes with its close code, as the
// server does.
func (c *appConn) Fail(e *qrauth.Error) {
	c.Send(qrauth.ErrorMessageFor(e))
	c.WriteMessage(websocket.CloseMessage, websocket.FormatCloseMessage(qrauth.CloseCode(e.Code), e.Reason))
}

// Done sends the outcome and closes normally.
func (c *appConn) Done(result string, id qrauth.UserID) {
	c.Send(&qrauth.ServerMessage{Type: qrauth.MsgDone, Result: result, UserID: id})
	c.WriteMessage(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, ""))
}

// Challenge builds a challenge of mode for the fake's origin.
func (c *appConn) Challenge(mode string) *qrauth.ServerMessage {
	known := true
	return &qrauth.ServerMessage{
		Type:   qrauth.MsgChallenge,
		Mode:   mode,
		Room:   "room-1",
		Nonce:  "nonce-0123456789abcdef",
		Origin: c.Origin,
		Context: &qrauth.BrowserContext{
			IP: "203.0.113.7", Place: "Zurich, CH", Browser: "Firefox 140", OS: "Linux",
			UserAgent: "Mozilla/5.0", Origin: c.Origin,
		},
		Proximity:    &qrauth.Proximity{SameNetwork: false, AppIP: "198.51.100.2", Warning: "The browser is on another network."},
		KnownAddress: &known,
		Account:      &qrauth.AccountInfo{Name: "Alice"},
	}
}

// ExpectJoin reads the join frame and checks it against d.
func (c *appConn) ExpectJoin(d *appclient.Device) bool {
	f := c.Read()
	if f == nil || f.Type != qrauth.MsgJoin {
		c.t.Errorf("want a join frame, got %+v", f)
		return false
	}
	if f.PSK != testPSK || f.DeviceID != d.ID() || f.PhoneIDHash != d.PhoneIDHash {
		c.t.Errorf("join = %+v; want psk %s, device %s, phone %s", f, testPSK, d.ID(), d.PhoneIDHash)
		return false
	}
	// Protocol 2: the join carries the device's key and its signature
	// for the device's origin.
	if f.PublicKey != base64.RawURLEncoding.EncodeToString(d.PublicKey()) {
		c.t.Errorf("join public key %s is not the device's", f.PublicKey)
		return false
	}
	j := qrauth.Join{Origin: d.Origin, PSK: f.PSK, DeviceID: f.DeviceID, PhoneIDHash: f.PhoneIDHash}
	if err := j.Verify(d.PublicKey(), f.Signature); err != nil {
		c.t.Errorf("join signature: %v", err)
		return false
	}
	return true
}

// ExpectDecision reads a decision frame and verifies its signature over
// the challenge ch with the device's public key.
func (c *appConn) ExpectDecision(d *appclient.Device, ch *qrauth.ServerMessage, decision string) *qrauth.AppFrame {
	f := c.Read()
	if f == nil || f.Type != qrauth.MsgDecision {
		c.t.Errorf("want a decision frame, got %+v", f)
		return nil
	}
	if f.Decision != decision {
		c.t.Errorf("decision = %q, want %q", f.Decision, decision)
	}
	dec := qrauth.Decision{Origin: ch.Origin, Room: ch.Room, Nonce: ch.Nonce, Mode: ch.Mode,
		DeviceID: d.ID(), PhoneIDHash: d.PhoneIDHash, Decision: f.Decision}
	if err := dec.Verify(d.PublicKey(), f.Signature); err != nil {
		c.t.Errorf("decision signature: %v", err)
	}
	wantKey := ch.Mode == qrauth.ModeSignUp || ch.Mode == qrauth.ModeLink
	if got := f.PublicKey != ""; got != wantKey {
		c.t.Errorf("mode %s: public key sent = %v, want %v", ch.Mode, got, wantKey)
	}
	if f.PublicKey != "" && f.PublicKey != base64.RawURLEncoding.EncodeToString(d.PublicKey()) {
		c.t.Errorf("public key %s is not the device's", f.PublicKey)
	}
	if f.PublicKey != "" && qrauth.DeviceIDFromKey(d.PublicKey()) != d.ID() {
		c.t.Errorf("device id does not match the public key")
	}
	return f
}

// mustInit creates a device for s.
func mustInit(tb testing.TB, s *fakeServer) *appclient.Device {
	tb.Helper()
	d, err := appclient.Init(context.Background(), appclient.InitOptions{
		Server: s.URL, Phone: "+41 79 123 45 67", Name: "Test phone",
	})
	if err != nil {
		tb.Fatal(err)
	}
	return d
}

// qrURL is the QR code of testPSK for s.
func qrURL(s *fakeServer) string { return s.URL + "/q/" + testPSK }

// wantError checks that err is a *qrauth.Error with code and reason.
func wantError(tb testing.TB, err error, code, reason string) {
	tb.Helper()
	if err == nil {
		tb.Fatalf("err = nil, want %s/%s", code, reason)
	}
	if qrauth.ErrorCode(err) != code || qrauth.ErrorReason(err) != reason {
		tb.Fatalf("err = %v (%T), want %s/%s", err, err, code, reason)
	}
}
