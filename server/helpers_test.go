package server_test

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/qrauth/qrauth"
	"github.com/qrauth/qrauth/server"
	"github.com/qrauth/qrauth/server/badgeflow"
	"github.com/qrauth/qrauth/server/oathflow"
	"github.com/qrauth/qrauth/server/offlineflow"
	"github.com/qrauth/qrauth/server/recoveryflow"
	"github.com/qrauth/qrauth/store"
	"github.com/qrauth/qrauth/wire"
	"golang.org/x/time/rate"
)

// testServer is a real server on a loopback port over a real bbolt file.
type testServer struct {
	*server.Server
	DB  *store.DB
	URL string // the public origin
	// Dial, when set, is where this instance listens, if not at URL: the
	// instances of a cluster share one origin (cluster_test.go).
	Dial string
}

// base is where requests to this instance go.
func (s *testServer) base() string {
	if s.Dial != "" {
		return s.Dial
	}
	return s.URL
}

// Shutdown stops the server, then closes its store, which the test opened
// (the server never closes the store it is given), so that the file can
// be opened again.
func (s *testServer) Shutdown(ctx context.Context) error {
	err := s.Server.Shutdown(ctx)
	return errors.Join(err, s.DB.Close())
}

// testConfig is a test server's configuration: the core's and that of
// the flows that live in packages of their own.
type testConfig struct {
	server.Config
	Badge   badgeflow.Config
	BadgeOn bool // lists the badge flow, as -badges does
	OATH    oathflow.Config
	OATHOn  bool // lists the OATH flow, as -oath does
	Offline offlineflow.Config
	// OfflineOn lists the offline flow, as cmd/qrauthd's -offline does.
	OfflineOn bool
	// Recovery configures the recovery flow, always listed as cmd/qrauthd does.
	Recovery recoveryflow.Config
	// Extra flows are listed last, as OpenID Connect is.
	Extra []server.Flow
}

// MustOpenServer starts a server on 127.0.0.1:0; edit changes the config
// before start. Cleanup shuts it down and checks nothing is left open.
func MustOpenServer(tb testing.TB, edit func(*testConfig)) *testServer {
	tb.Helper()
	return MustOpenServerOATH(tb, edit, nil)
}

// newTestFlows returns the flows of cfg in gate order, as cmd/qrauthd
// lists them: badges, OATH, offline codes; or the error of one's New.
func newTestFlows(cfg testConfig, db *store.DB) ([]server.Flow, error) {
	var flows []server.Flow
	if cfg.BadgeOn {
		bf, err := badgeflow.New(cfg.Badge, db, cfg.MasterKey)
		if err != nil {
			return nil, err
		}
		flows = append(flows, bf)
	}
	if cfg.OATHOn {
		of, err := oathflow.New(cfg.OATH, db, cfg.MasterKey)
		if err != nil {
			return nil, err
		}
		flows = append(flows, of)
	}
	if cfg.OfflineOn {
		off, err := offlineflow.New(cfg.Offline, db, cfg.MasterKey)
		if err != nil {
			return nil, err
		}
		flows = append(flows, off)
	}
	rec, err := recoveryflow.New(cfg.Recovery, db)
	if err != nil {
		return nil, err
	}
	flows = append(flows, rec)
	return append(flows, cfg.Extra...), nil
}

// testFlows is newTestFlows for a test that expects no error.
func testFlows(tb testing.TB, cfg testConfig, db *store.DB) []server.Flow {
	tb.Helper()
	flows, err := newTestFlows(cfg, db)
	if err != nil {
		tb.Fatal(err)
	}
	return flows
}

// MustOpenServerOATH is MustOpenServer with the OATH flow listed and its
// config edited by oath (after edit); a nil oath leaves it out.
func MustOpenServerOATH(tb testing.TB, edit func(*testConfig), oath func(*oathflow.Config)) *testServer {
	tb.Helper()
	db, err := store.Open(tb.TempDir()+"/qrauth.db", store.Options{})
	if err != nil {
		tb.Fatal(err)
	}
	cfg := testConfig{Config: server.Config{Addr: "127.0.0.1:0", RoomRate: rate.Inf, AppRate: rate.Inf,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}}
	if edit != nil {
		edit(&cfg)
	}
	if oath != nil {
		cfg.OATHOn = true
		oath(&cfg.OATH)
	}
	s, err := server.New(cfg.Config, db, testFlows(tb, cfg, db)...)
	if err != nil {
		tb.Fatal(err)
	}
	if err := s.Open(); err != nil {
		tb.Fatal(err)
	}
	ts := &testServer{Server: s, DB: db, URL: s.Origin()}
	tb.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := ts.Shutdown(ctx); err != nil {
			tb.Errorf("shutdown: %v", err)
		}
	})
	return ts
}

// browser is a browser: a cookie jar, the login page, the browser socket.
type browser struct {
	tb     testing.TB
	srv    *testServer
	client *http.Client
	ws     *websocket.Conn
}

func newBrowser(tb testing.TB, srv *testServer) *browser {
	jar, _ := cookiejar.New(nil)
	b := &browser{tb: tb, srv: srv, client: &http.Client{Jar: jar, Timeout: 10 * time.Second}}
	resp, err := b.client.Get(srv.base() + wire.PathLogin)
	if err != nil {
		tb.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		tb.Fatalf("GET /: %d", resp.StatusCode)
	}
	return b
}

// dial opens the browser socket; query is e.g. "?mode=link".
func (b *browser) dial(query string) (*websocket.Conn, *http.Response, error) {
	u, _ := url.Parse(b.srv.URL)
	h := http.Header{"Origin": {b.srv.URL}, "User-Agent": {"Mozilla/5.0 (X11; Linux x86_64) Chrome/120.0 Safari/537.36"}}
	for _, c := range b.client.Jar.Cookies(u) {
		h.Add("Cookie", c.Name+"="+c.Value)
	}
	return websocket.DefaultDialer.Dial("ws"+strings.TrimPrefix(b.srv.base(), "http")+wire.PathBrowserSocket+query, h)
}

func (b *browser) open() *wire.ServerMessage {
	b.tb.Helper()
	ws, resp, err := b.dial("")
	if err != nil {
		b.tb.Fatalf("dial browser socket: %v (%v)", err, resp)
	}
	b.ws = ws
	b.tb.Cleanup(func() { ws.Close() })
	m := b.next()
	if m.Type != wire.MsgQR {
		b.tb.Fatalf("first message %+v, want qr", m)
	}
	return m
}

// next reads the next message within a deadline.
func (b *browser) next() *wire.ServerMessage {
	b.tb.Helper()
	return readMsg(b.tb, b.ws)
}

func readMsg(tb testing.TB, ws *websocket.Conn) *wire.ServerMessage {
	tb.Helper()
	ws.SetReadDeadline(time.Now().Add(10 * time.Second))
	_, data, err := ws.ReadMessage()
	if err != nil {
		tb.Fatalf("read: %v", err)
	}
	var m wire.ServerMessage
	if err := json.Unmarshal(data, &m); err != nil {
		tb.Fatalf("decode %q: %v", data, err)
	}
	return &m
}

// readClose reads until the socket closes and returns the close code.
func readClose(tb testing.TB, ws *websocket.Conn) int {
	tb.Helper()
	ws.SetReadDeadline(time.Now().Add(10 * time.Second))
	for {
		_, _, err := ws.ReadMessage()
		if err != nil {
			if ce, ok := err.(*websocket.CloseError); ok {
				return ce.Code
			}
			tb.Fatalf("want close frame, got %v", err)
		}
	}
}

// exchange posts a ticket and returns the status and decoded body.
func (b *browser) exchange(ticket string) (int, map[string]any) {
	b.tb.Helper()
	return b.do("POST", wire.PathSession, `{"ticket":"`+ticket+`"}`)
}

func (b *browser) do(method, path, body string) (int, map[string]any) {
	b.tb.Helper()
	req, _ := http.NewRequest(method, b.srv.base()+path, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	resp, err := b.client.Do(req)
	if err != nil {
		b.tb.Fatal(err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	var m map[string]any
	if len(data) > 0 {
		if err := json.Unmarshal(data, &m); err != nil {
			b.tb.Fatalf("%s %s: body %q", method, path, data)
		}
	}
	return resp.StatusCode, m
}

// phone is a raw app: it speaks the protocol by hand, so tests can also
// send what a real app never would.
type phone struct {
	tb    testing.TB
	srv   *testServer
	priv  ed25519.PrivateKey
	pub   ed25519.PublicKey
	id    qrauth.DeviceID
	phone string
	ws    *websocket.Conn
	ch    *wire.ServerMessage
}

func newPhone(tb testing.TB, srv *testServer, number string) *phone {
	pub, priv, _ := ed25519.GenerateKey(rand.Reader)
	resp, err := http.Get(srv.base() + wire.PathDiscovery)
	if err != nil {
		tb.Fatal(err)
	}
	defer resp.Body.Close()
	var d wire.Discovery
	json.NewDecoder(resp.Body).Decode(&d)
	salt, _ := base64.RawURLEncoding.DecodeString(d.PhoneSalt)
	e164, err := qrauth.NormalizePhone(number)
	if err != nil {
		tb.Fatal(err)
	}
	return &phone{tb: tb, srv: srv, priv: priv, pub: pub, id: qrauth.DeviceIDFromKey(pub), phone: qrauth.PhoneIDHash(salt, e164)}
}

func (p *phone) dial() {
	p.tb.Helper()
	ws, _, err := websocket.DefaultDialer.Dial("ws"+strings.TrimPrefix(p.srv.base(), "http")+wire.PathAppSocket, nil)
	if err != nil {
		p.tb.Fatal(err)
	}
	p.ws = ws
	p.tb.Cleanup(func() { ws.Close() })
}

func (p *phone) send(v any) {
	p.tb.Helper()
	if err := p.ws.WriteJSON(v); err != nil {
		p.tb.Fatal(err)
	}
}

// join scans a QR message and returns the server's answer.
func (p *phone) join(qr *wire.ServerMessage) *wire.ServerMessage {
	p.tb.Helper()
	p.dial()
	psk := qr.URL[strings.LastIndex(qr.URL, "/")+1:]
	p.send(p.joinFrame(psk))
	m := readMsg(p.tb, p.ws)
	if m.Type == wire.MsgChallenge {
		p.ch = m
	}
	return m
}

// joinFrame builds the signed join for psk (protocol 2).
func (p *phone) joinFrame(psk string) wire.AppFrame {
	j := wire.Join{Origin: p.srv.URL, PSK: psk, DeviceID: p.id, PhoneIDHash: p.phone}
	return wire.AppFrame{Type: wire.MsgJoin, PSK: psk, DeviceID: p.id, PhoneIDHash: p.phone,
		PublicKey: base64.RawURLEncoding.EncodeToString(p.pub), Signature: j.Sign(p.priv)}
}

// decision builds the signed decision for the current challenge.
func (p *phone) decision(decision string) wire.Decision {
	return wire.Decision{Origin: p.ch.Origin, Room: p.ch.Room, Nonce: p.ch.Nonce, Mode: p.ch.Mode,
		DeviceID: p.id, PhoneIDHash: p.phone, Decision: decision}
}

func (p *phone) decide(decision string, withKey bool, profile *qrauth.Profile) *wire.ServerMessage {
	p.tb.Helper()
	d := p.decision(decision)
	f := wire.AppFrame{Type: wire.MsgDecision, Decision: decision, Signature: d.Sign(p.priv), DeviceName: "Test phone", Profile: profile}
	if withKey {
		f.PublicKey = base64.RawURLEncoding.EncodeToString(p.pub)
	}
	p.send(f)
	return readMsg(p.tb, p.ws)
}

// snapshot is everything the store holds that a refusal must not change.
func snapshot(tb testing.TB, st qrauth.Store) string {
	tb.Helper()
	ctx := context.Background()
	events, err := st.ListAudit(ctx, qrauth.AuditFilter{Limit: 1000})
	if err != nil {
		tb.Fatal(err)
	}
	var users []qrauth.UserID
	for _, e := range events {
		if e.UserID != "" && !slices.Contains(users, e.UserID) {
			users = append(users, e.UserID)
		}
	}
	var out []any
	out = append(out, events)
	for _, id := range users {
		u, _ := st.FindUserByID(ctx, id)
		ds, _ := st.FindDevicesByUser(ctx, id)
		ss, _ := st.FindSessionsByUser(ctx, id)
		out = append(out, u, ds, ss)
	}
	b, _ := json.Marshal(out)
	return string(b)
}

func mustURL(s string) *url.URL {
	u, err := url.Parse(s)
	if err != nil {
		panic(err)
	}
	return u
}
