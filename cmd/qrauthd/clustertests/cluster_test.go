package clustertests

// Cluster tests with real processes: two qrauthd binaries on loopback
// ports sharing one real Redis and one real PostgreSQL, both serving the
// origin of the first (as behind a load balancer). The browser is a
// gorilla WebSocket and a cookie jar, the phone the appclient package;
// each reaches the instance a test chooses through a transport that dials
// that instance's port whatever the URL says (clustertest.Instance).

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/jackc/pgx/v5"
	"github.com/qrauth/qrauth"
	"github.com/qrauth/qrauth/appclient"
	"github.com/qrauth/qrauth/internal/clustertest"
	"github.com/qrauth/qrauth/internal/pgtest"
	"github.com/qrauth/qrauth/internal/redistest"
	"github.com/qrauth/qrauth/internal/testutil"
	"github.com/qrauth/qrauth/offline"
	"github.com/qrauth/qrauth/wire"
)

// cluster is two running qrauthd processes, A and B, on one origin.
type cluster struct {
	t      *testing.T
	origin string
	a, b   *clustertest.Instance
	pgURL  string // the schema's URL, as the test sees it
	redis  *redistest.Server
}

type clusterOpts struct {
	// redis is the instances' Redis; nil: the test binary's shared one,
	// with a key prefix of the test's own.
	redis *redistest.Server
	// store, if set, turns the schema's URL into what the instances are
	// given (a proxy's address).
	store func(string) string
	// args are added to both instances' flags.
	args []string
	// origin, if set, is the origin both serve (a proxy's); default the
	// first instance's URL.
	origin string
}

func startCluster(t *testing.T, o clusterOpts) *cluster {
	t.Helper()
	bin := clustertest.Build(t, "github.com/qrauth/qrauth/cmd/qrauthd")
	c := &cluster{t: t, redis: o.redis}
	c.pgURL = pgtest.Shared(t).Schema(t)
	if c.redis == nil {
		c.redis = redistest.Shared(t)
	}
	storeURL := c.pgURL
	if o.store != nil {
		storeURL = o.store(c.pgURL)
	}
	dir := t.TempDir()
	tokens := filepath.Join(dir, "tokens")
	if err := os.WriteFile(tokens, []byte(offlineTestToken+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	key := mustKeyFile(t, bin)
	addrA, addrB := clustertest.FreeAddr(t), clustertest.FreeAddr(t)
	c.origin = "http://" + addrA
	if o.origin != "" {
		c.origin = o.origin
	}
	newInst := func(name, addr string) *clustertest.Instance {
		args := []string{"-addr", addr, "-origin", c.origin,
			"-store", storeURL, "-redis", c.redis.URL, "-redis-prefix", "t-" + t.Name() + ":",
			"-key-file", key, "-data", filepath.Join(dir, name+".db"), "-admin-socket", "off",
			"-log-level", "debug",
			"-room-rate", "1000", "-room-burst", "1000", "-app-rate", "1000", "-app-burst", "1000",
			"-offline", "-offline-api-token-file", tokens, "-oath", "-oath-policy", "if-enrolled"}
		return clustertest.New(t, clustertest.Options{Name: name, Binary: bin, Addr: addr,
			Args: append(args, o.args...), DropEnv: []string{"QRAUTH_", "PG"}})
	}
	c.a, c.b = newInst("A", addrA), newInst("B", addrB)
	// Together, as an operator's two hosts would: the migrations take
	// their advisory lock.
	var wg sync.WaitGroup
	errs := make([]error, 2)
	for i, in := range []*clustertest.Instance{c.a, c.b} {
		wg.Add(1)
		go func() { defer wg.Done(); errs[i] = in.Start() }()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	return c
}

// cbrowser is a browser behind the balancer: one cookie jar for the
// origin, whichever instance a request reaches.
type cbrowser struct {
	t   *testing.T
	c   *cluster
	jar http.CookieJar
	ws  *websocket.Conn
}

func (c *cluster) browser(on *clustertest.Instance) *cbrowser {
	c.t.Helper()
	jar, _ := cookiejar.New(nil)
	b := &cbrowser{t: c.t, c: c, jar: jar}
	if st, _ := b.do(on, "GET", wire.PathLogin, ""); st != 200 {
		c.t.Fatalf("GET / on %s: %d", on.Name, st)
	}
	return b
}

// open opens the browser socket on an instance and returns the first
// message (the QR code); query is e.g. "?mode=link".
func (b *cbrowser) open(on *clustertest.Instance, query string) *wire.ServerMessage {
	b.t.Helper()
	ws, _, err := b.dial(on, query)
	if err != nil {
		b.t.Fatalf("browser socket on %s: %v", on.Name, err)
	}
	b.ws = ws
	m := b.next()
	if m.Type != wire.MsgQR {
		b.t.Fatalf("first message on %s: %+v, want qr", on.Name, m)
	}
	return m
}

func (b *cbrowser) dial(on *clustertest.Instance, query string) (*websocket.Conn, *http.Response, error) {
	u, _ := url.Parse(b.c.origin)
	h := http.Header{"Origin": {b.c.origin}}
	for _, ck := range b.jar.Cookies(u) {
		h.Add("Cookie", ck.Name+"="+ck.Value)
	}
	ws, resp, err := on.Dialer().Dial("ws"+strings.TrimPrefix(b.c.origin, "http")+wire.PathBrowserSocket+query, h)
	if err == nil {
		b.t.Cleanup(func() { ws.Close() })
	}
	return ws, resp, err
}

func (b *cbrowser) next() *wire.ServerMessage {
	b.t.Helper()
	m, err := readWS(b.ws, 15*time.Second)
	if err != nil {
		b.t.Fatalf("browser: %v", err)
	}
	return m
}

func readWS(ws *websocket.Conn, d time.Duration) (*wire.ServerMessage, error) {
	ws.SetReadDeadline(time.Now().Add(d))
	var m wire.ServerMessage
	if err := ws.ReadJSON(&m); err != nil {
		return nil, err
	}
	return &m, nil
}

// approved reads until the ticket.
func (b *cbrowser) approved() string {
	b.t.Helper()
	for {
		m := b.next()
		switch m.Type {
		case wire.MsgApproved:
			return m.Ticket
		case wire.MsgScanned, wire.MsgSignUp:
		default:
			b.t.Fatalf("browser waiting for its ticket: %+v", m)
		}
	}
}

// do sends a request for the origin to instance on.
func (b *cbrowser) do(on *clustertest.Instance, method, path, body string) (int, map[string]any) {
	b.t.Helper()
	req, _ := http.NewRequest(method, b.c.origin+path, strings.NewReader(body))
	req.Header.Set("Origin", b.c.origin)
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := on.Client(b.jar).Do(req)
	if err != nil {
		b.t.Fatalf("%s %s on %s: %v", method, path, on.Name, err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	var m map[string]any
	if strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") {
		json.Unmarshal(data, &m)
	}
	return resp.StatusCode, m
}

func (b *cbrowser) exchange(on *clustertest.Instance, ticket string) (int, map[string]any) {
	b.t.Helper()
	return b.do(on, "POST", wire.PathSession, `{"ticket":"`+ticket+`"}`)
}

// me is /api/me on an instance: the status and the user's id.
func (b *cbrowser) me(on *clustertest.Instance) (int, string) {
	b.t.Helper()
	st, body := b.do(on, "GET", wire.PathMe, "")
	u, _ := body["user"].(map[string]any)
	id, _ := u["id"].(string)
	return st, id
}

// phone makes a new appclient device for number whose calls reach on.
func (c *cluster) phone(on *clustertest.Instance, number, name string) *appclient.Device {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	dev, err := appclient.Init(ctx, appclient.InitOptions{Server: c.origin, Phone: number, Name: name, HTTPClient: on.Client(nil)})
	if err != nil {
		c.t.Fatal(err)
	}
	return dev
}

// scan scans qr with dev through instance on.
func scanOn(ctx context.Context, dev *appclient.Device, on *clustertest.Instance, qr *wire.ServerMessage) (*appclient.Scan, error) {
	dev.HTTPClient = on.Client(nil)
	return dev.Scan(ctx, qr.URL, appclient.ScanOptions{Dialer: on.Dialer()})
}

func mustScan(t *testing.T, dev *appclient.Device, on *clustertest.Instance, qr *wire.ServerMessage) *appclient.Scan {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	s, err := scanOn(ctx, dev, on, qr)
	if err != nil {
		t.Fatalf("scan through %s: %v", on.Name, err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func mustApprove(t *testing.T, s *appclient.Scan, profile *qrauth.Profile, want string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	done, err := s.Approve(ctx, appclient.ApproveOptions{Profile: profile})
	if err != nil || done.Result != want {
		t.Fatalf("approve: %+v %v, want %s", done, err, want)
	}
}

func wantRefused(t *testing.T, what string, st int, body map[string]any, status int, reason string) {
	t.Helper()
	if st != status || body["reason"] != reason {
		t.Fatalf("%s: %d %v, want %d %s", what, st, body, status, reason)
	}
}

// signIn is a whole QR sign-in (or sign-up, with a profile): the
// browser's room on bOn, the phone on pOn, the ticket exchanged on xOn;
// it returns the browser, signed in.
func (c *cluster) signIn(dev *appclient.Device, bOn, pOn, xOn *clustertest.Instance, profile *qrauth.Profile) *cbrowser {
	c.t.Helper()
	br := c.browser(bOn)
	s := mustScan(c.t, dev, pOn, br.open(bOn, ""))
	want := wire.ResultSignedIn
	if profile != nil {
		want = wire.ResultSignedUp
	}
	mustApprove(c.t, s, profile, want)
	if st, body := br.exchange(xOn, br.approved()); st != 200 {
		c.t.Fatalf("exchange on %s: %d %v", xOn.Name, st, body)
	}
	return br
}

// TestClusterFlows: every flow with the browser on one instance and the
// phone on the other, the ticket exchanged on the instance the browser
// did not use, and what was used once refused on the other instance: the
// ticket, the PSK, the signed decision and the OATH code.
func TestClusterFlows(t *testing.T) {
	t.Parallel()
	c := startCluster(t, clusterOpts{})
	A, B := c.a, c.b
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	// Sign-up: browser on A, phone on B, ticket exchanged on B.
	dev := c.phone(B, "+41 79 555 14 01", "Pixel 8")
	br := c.browser(A)
	s := mustScan(t, dev, B, br.open(A, ""))
	mustApprove(t, s, &qrauth.Profile{Name: "Ada Lovelace", Email: "ada@example.com"}, wire.ResultSignedUp)
	ticket := br.approved()
	if st, body := br.exchange(B, ticket); st != 200 {
		t.Fatalf("exchange on B: %d %v", st, body)
	}
	_, uid := br.me(A)
	if st, id := br.me(B); st != 200 || id != uid || uid == "" {
		t.Fatalf("me on B: %d %q, on A %q", st, id, uid)
	}
	// The ticket again, on either instance.
	for _, in := range []*clustertest.Instance{A, B} {
		st, body := br.exchange(in, ticket)
		wantRefused(t, "ticket replayed on "+in.Name, st, body, 401, "ticket_invalid")
	}

	// Sign-in: browser on B, phone on A, ticket exchanged on A.
	br2 := c.browser(B)
	qr := br2.open(B, "")
	s = mustScan(t, dev, A, qr)
	if s.Challenge.Mode != wire.ModeLogin || s.Challenge.Account == nil || s.Challenge.Account.Name != "Ada Lovelace" {
		t.Fatalf("challenge through A: %+v", s.Challenge)
	}
	// The PSK the phone just used, by another phone on either instance.
	thief := c.phone(B, "+41 79 555 14 02", "")
	for _, in := range []*clustertest.Instance{A, B} {
		if _, err := scanOn(ctx, thief, in, qr); qrauth.ErrorReason(err) != "psk_unknown" {
			t.Fatalf("PSK replayed on %s: %v", in.Name, err)
		}
	}
	mustApprove(t, s, nil, wire.ResultSignedIn)
	if st, body := br2.exchange(A, br2.approved()); st != 200 {
		t.Fatalf("exchange on A: %d %v", st, body)
	}
	if st, id := br2.me(B); st != 200 || id != uid {
		t.Fatalf("me on B after the sign-in: %d %q", st, id)
	}
	// The phone's signed decision (Ed25519 signs deterministically, so
	// this is the frame appclient sent) replayed on both instances: the
	// room is gone and a socket must join first.
	ch := s.Challenge
	d := wire.Decision{Origin: ch.Origin, Room: ch.Room, Nonce: ch.Nonce, Mode: ch.Mode,
		DeviceID: dev.ID(), PhoneIDHash: dev.PhoneIDHash, Decision: wire.DecisionApprove}
	signed := wire.AppFrame{Type: wire.MsgDecision, Decision: wire.DecisionApprove, Signature: d.Sign(dev.PrivateKey)}
	for _, in := range []*clustertest.Instance{A, B} {
		ws, _, err := in.Dialer().Dial("ws"+strings.TrimPrefix(c.origin, "http")+wire.PathAppSocket, nil)
		if err != nil {
			t.Fatal(err)
		}
		ws.WriteJSON(signed)
		m, err := readWS(ws, 10*time.Second)
		ws.Close()
		if err != nil || m.Type != wire.MsgError || m.Reason != "join_first" {
			t.Fatalf("decision replayed on %s: %+v %v", in.Name, m, err)
		}
	}

	// Link a second phone: the account page's socket on A, the new phone
	// on B.
	dev2 := c.phone(B, "+41 79 555 14 01", "iPhone")
	lqr := br.open(A, "?mode=link")
	if lqr.Mode != wire.ModeLink {
		t.Fatalf("link code: %+v", lqr)
	}
	mustApprove(t, mustScan(t, dev2, B, lqr), nil, wire.ResultLinked)
	for {
		m := br.next()
		if m.Type == wire.MsgLinked {
			break
		}
		if m.Type != wire.MsgScanned {
			t.Fatalf("account page on A: %+v, want linked", m)
		}
	}
	// The linked phone signs in: browser on A, phone on B, exchange on B.
	if st, id := c.signIn(dev2, A, B, B, nil).me(A); st != 200 || id != uid {
		t.Fatalf("the linked phone signs in as %q (%d)", id, st)
	}

	// Offline code: the phone activates through B; the browser starts on
	// A and types the code on B.
	keys := &appclient.OfflineKeys{}
	dev.HTTPClient = B.Client(nil)
	k, err := dev.ActivateOffline(ctx, offline.PIN, appclient.ActivateOptions{PIN: "2468"})
	if err != nil {
		t.Fatal(err)
	}
	keys.Put(*k)
	br3 := c.browser(A)
	st, body := br3.do(A, "POST", wire.PathOfflineSignIn, `{"identifier":"ada@example.com"}`)
	if st != 200 {
		t.Fatalf("offline sign-in on A: %d %v", st, body)
	}
	png := testutil.DataURLPNG(t, body["qr"].(string))
	text, err := appclient.DecodeQRImage(strings.NewReader(string(png)))
	if err != nil {
		t.Fatal(err)
	}
	code, _, err := appclient.OfflineCode(text, keys, "2468")
	if err != nil {
		t.Fatal(err)
	}
	verify := wire.Path(wire.PathOfflineSignInVerify, body["id"].(string))
	if st, body := br3.do(B, "POST", verify, `{"otp":"`+code+`"}`); st != 200 || body["next"] != wire.PathAccount {
		t.Fatalf("offline code on B: %d %v", st, body)
	}
	if st, id := br3.me(A); st != 200 || id != uid {
		t.Fatalf("me on A after the offline code: %d %q", st, id)
	}
	st, body = br3.do(A, "POST", verify, `{"otp":"`+code+`"}`)
	wantRefused(t, "offline code replayed on A", st, body, 409, "session_succeeded")

	// OATH: enrol on A, confirm on B; then a sign-in whose second step is
	// on the instance other than the exchange's.
	st, body = br.do(A, "POST", wire.PathOATHEnrol, "")
	if st != 200 {
		t.Fatalf("enrol on A: %d %v", st, body)
	}
	ok := testutil.ParseOTPAuth(t, body["uri"].(string))
	step := ok.Step()
	if st, body := br.do(B, "POST", wire.PathOATHConfirm, `{"code":"`+ok.Code(step)+`"}`); st != 200 {
		t.Fatalf("confirm on B: %d %v", st, body)
	}
	oathFirst := func(bOn, pOn, xOn *clustertest.Instance) *cbrowser {
		b := c.browser(bOn)
		mustApprove(t, mustScan(t, dev, pOn, b.open(bOn, "")), nil, wire.ResultSignedIn)
		st, body := b.exchange(xOn, b.approved())
		if st != 200 || body["next"] != wire.PathVerify {
			t.Fatalf("exchange on %s: %d %v, want next /verify", xOn.Name, st, body)
		}
		if st, _ := b.me(bOn); st != 401 {
			t.Fatalf("signed in before the second step: %d", st)
		}
		return b
	}
	b4 := oathFirst(A, B, B)
	next := ok.Code(step + 1)
	// The pending sign-in is in the shared store: the second step on A.
	if st, body := b4.do(A, "POST", wire.PathOATHSignIn, `{"code":"`+next+`"}`); st != 200 {
		t.Fatalf("OATH code on A: %d %v", st, body)
	}
	if st, id := b4.me(B); st != 200 || id != uid {
		t.Fatalf("me on B after the OATH code: %d %q", st, id)
	}
	// The same code in another sign-in, on the other instance: replayed.
	b5 := oathFirst(B, A, A)
	st, body = b5.do(B, "POST", wire.PathOATHSignIn, `{"code":"`+next+`"}`)
	wantRefused(t, "OATH code replayed on B", st, body, 409, "oath_replayed")

	// A device-signed app request made on A, replayed word for word on
	// B (and on A): its nonce is marked in the shared store.
	rec := &recorder{rt: A.Transport()}
	dev.HTTPClient = &http.Client{Transport: rec, Timeout: 15 * time.Second}
	if _, err := dev.Sessions(ctx); err != nil {
		t.Fatalf("signed request on A: %v", err)
	}
	for _, in := range []*clustertest.Instance{B, A} {
		req, _ := http.NewRequest("GET", c.origin+wire.PathAppSessions, nil)
		req.Header = rec.header.Clone()
		resp, err := in.Client(nil).Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var body map[string]any
		json.NewDecoder(resp.Body).Decode(&body)
		resp.Body.Close()
		wantRefused(t, "signed app request replayed on "+in.Name, resp.StatusCode, body, 401, "replayed")
	}
}

// recorder keeps the headers of the last request it sent.
type recorder struct {
	rt     http.RoundTripper
	header http.Header
}

func (r *recorder) RoundTrip(req *http.Request) (*http.Response, error) {
	r.header = req.Header.Clone()
	return r.rt.RoundTrip(req)
}

// TestClusterRateLimits: the per-address limits of new codes (browser
// sockets) and of app connections are counted in the shared store, so a
// burst spent on A is spent on B too.
func TestClusterRateLimits(t *testing.T) {
	t.Parallel()
	// The later flags win: a burst of 3 that refills in about 17 minutes.
	c := startCluster(t, clusterOpts{args: []string{"-room-rate", "0.001", "-room-burst", "3",
		"-app-rate", "0.001", "-app-burst", "3"}})
	A, B := c.a, c.b
	br := c.browser(A)
	for i := range 3 {
		ws, _, err := br.dial(A, "")
		if err != nil {
			t.Fatalf("browser socket %d on A: %v", i+1, err)
		}
		ws.Close()
	}
	appSocket := "ws" + strings.TrimPrefix(c.origin, "http") + wire.PathAppSocket
	for i := range 3 {
		ws, _, err := A.Dialer().Dial(appSocket, nil)
		if err != nil {
			t.Fatalf("app socket %d on A: %v", i+1, err)
		}
		ws.Close()
	}
	for _, in := range []*clustertest.Instance{B, A} {
		_, resp, err := br.dial(in, "")
		if err == nil || resp == nil || resp.StatusCode != http.StatusTooManyRequests || resp.Header.Get("Retry-After") == "" {
			t.Fatalf("4th browser socket, on %s: %v %v, want 429 with Retry-After", in.Name, resp, err)
		}
		_, resp, err = in.Dialer().Dial(appSocket, nil)
		if err == nil || resp == nil || resp.StatusCode != http.StatusTooManyRequests || resp.Header.Get("Retry-After") == "" {
			t.Fatalf("4th app socket, on %s: %v %v, want 429 with Retry-After", in.Name, resp, err)
		}
	}
	// The refusal of the browser socket says why, on B as on A.
	st, body := br.do(B, "GET", wire.PathBrowserSocket, "")
	wantRefused(t, "probe on B", st, body, 429, "rate_limited")
}

// wantRoomGone checks how a relayed phone is told that its room went
// away, within a deadline: the error of its Approve, which must be room_gone (its instance found
// the room's instance dead or its record lost) or server_going_away
// (close 1012).
func wantRoomGone(t *testing.T, s *appclient.Scan, within time.Duration) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), within)
	defer cancel()
	start := time.Now()
	done, err := s.Approve(ctx, appclient.ApproveOptions{})
	took := time.Since(start)
	if r := qrauth.ErrorReason(err); r != "room_gone" && r != "server_going_away" {
		t.Fatalf("relayed phone after its room's instance went: %+v %v (after %v), want room_gone or server_going_away", done, err, took)
	}
}

// readFails reads a browser socket until it fails, within d.
func readFails(t *testing.T, ws *websocket.Conn, d time.Duration) {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		if _, err := readWS(ws, time.Until(deadline)); err != nil {
			var ne interface{ Timeout() bool }
			if errors.As(err, &ne) && ne.Timeout() {
				t.Fatalf("browser socket still open %v after its instance was killed", d)
			}
			return
		}
	}
}

// TestClusterKill: kill -9 of instance A while sign-ins are in flight.
// Whatever was acknowledged survives on B: sessions exchanged (and
// checked with /api/me) before the kill, and a ticket the browser got
// before the kill, exchanged on B after it. Browsers whose room was on A
// lose their socket, open a new one on B and get a fresh code, which
// signs in; a phone relayed from B to a room on A is told room_gone
// within the alive key's lifetime.
func TestClusterKill(t *testing.T) {
	t.Parallel()
	c := startCluster(t, clusterOpts{})
	A, B := c.a, c.b

	// Acknowledged: sign-ups with the browser on A, the phone on B, the
	// session exchanged and used on A.
	type acked struct {
		dev *appclient.Device
		br  *cbrowser
		uid string
	}
	var done []acked
	for i, number := range []string{"+41 79 555 15 01", "+41 79 555 15 02", "+41 79 555 15 03"} {
		dev := c.phone(B, number, "")
		br := c.signIn(dev, A, B, A, &qrauth.Profile{Name: "User " + number[len(number)-1:]})
		st, uid := br.me(A)
		if st != 200 || uid == "" {
			t.Fatalf("sign-up %d: me on A %d", i, st)
		}
		done = append(done, acked{dev, br, uid})
	}
	// Approved, the ticket in the browser's hands, not yet exchanged.
	held := c.browser(A)
	mustApprove(t, mustScan(t, done[0].dev, B, held.open(A, "")), nil, wire.ResultSignedIn)
	ticket := held.approved()
	// In flight: a room on A that a phone on B joined, and one waiting.
	joined := c.browser(A)
	joinedQR := joined.open(A, "")
	relayed := mustScan(t, done[1].dev, B, joinedQR)
	if m := joined.next(); m.Type != wire.MsgScanned {
		t.Fatalf("browser on A: %+v, want scanned", m)
	}
	waiting := c.browser(A)
	waitingQR := waiting.open(A, "")

	A.Kill()
	killed := time.Now()

	for i, a := range done {
		if st, uid := a.br.me(B); st != 200 || uid != a.uid {
			t.Fatalf("session %d after the kill, on B: %d %q, want 200 %q", i, st, uid, a.uid)
		}
	}
	if st, body := held.exchange(B, ticket); st != 200 {
		t.Fatalf("ticket from A's room exchanged on B after the kill: %d %v", st, body)
	}
	if st, uid := held.me(B); st != 200 || uid != done[0].uid {
		t.Fatalf("me after that exchange: %d %q", st, uid)
	}

	// The browsers notice, reconnect through the balancer (to B) and get
	// a fresh code.
	var fresh []*wire.ServerMessage
	for _, w := range []struct {
		br *cbrowser
		qr *wire.ServerMessage
	}{{joined, joinedQR}, {waiting, waitingQR}} {
		readFails(t, w.br.ws, 5*time.Second)
		qr := w.br.open(B, "")
		if qr.URL == w.qr.URL {
			t.Fatal("the browser got the old code again on B")
		}
		fresh = append(fresh, qr)
	}
	// The fresh code signs in, all on B.
	mustApprove(t, mustScan(t, done[2].dev, B, fresh[1]), nil, wire.ResultSignedIn)
	if st, body := waiting.exchange(B, waiting.approved()); st != 200 {
		t.Fatalf("exchange on B: %d %v", st, body)
	}
	if st, uid := waiting.me(B); st != 200 || uid != done[2].uid {
		t.Fatalf("me: %d %q", st, uid)
	}

	// The phone that B relayed to the room on A: told once A's alive key
	// has expired (3 re-checks of 2 s and 5 s of margin) and B has
	// re-checked, about 13 s after the kill at most.
	wantRoomGone(t, relayed, 20*time.Second)
	t.Logf("relayed phone told %v after the kill", time.Since(killed).Round(100*time.Millisecond))
}

// clusterReadyz is an instance's /readyz: the status and the reason.
func clusterReadyz(in *clustertest.Instance) (int, string) {
	resp, err := in.Client(nil).Get(in.URL + "/readyz")
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	var body struct{ Reason string }
	json.NewDecoder(resp.Body).Decode(&body)
	return resp.StatusCode, body.Reason
}

// waitClusterReadyz polls every instance's /readyz until it answers status
// (and reason, if not ""), within d.
func waitClusterReadyz(t *testing.T, d time.Duration, status int, reason string, ins ...*clustertest.Instance) {
	t.Helper()
	deadline := time.Now().Add(d)
	for _, in := range ins {
		for {
			st, why := clusterReadyz(in)
			if st == status && (reason == "" || why == reason) {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("/readyz on %s: %d %q, want %d %q within %v", in.Name, st, why, status, reason, d)
			}
			time.Sleep(50 * time.Millisecond) // polling interval, not a wait for an event
		}
	}
}

// TestClusterRedisRestart: Redis restarts (empty, as it persists
// nothing) under both instances. Accounts and sessions, in PostgreSQL,
// are untouched; a phone relayed to a room on the other instance is told
// room_gone and that room's browser gets a fresh code, with which a new
// sign-in works.
func TestClusterRedisRestart(t *testing.T) {
	t.Parallel()
	rs := redistest.Own(t)
	c := startCluster(t, clusterOpts{redis: rs, args: []string{"-psk-rotation", "3s"}})
	A, B := c.a, c.b
	dev := c.phone(B, "+41 79 555 16 01", "")
	br := c.signIn(dev, A, B, A, &qrauth.Profile{Name: "Grace"})
	_, uid := br.me(B)

	w := c.browser(A)
	first := w.open(A, "")
	relayed := mustScan(t, dev, B, first)
	if m := w.next(); m.Type != wire.MsgScanned {
		t.Fatalf("browser: %+v", m)
	}
	// A room that no phone has joined yet: its code's PSK is in Redis.
	idle := c.browser(A)
	idleQR := idle.open(A, "")

	rs.Stop()
	waitClusterReadyz(t, 10*time.Second, 503, "shared_unavailable", A, B)
	if err := rs.Restart(); err != nil {
		t.Fatal(err)
	}
	waitClusterReadyz(t, 15*time.Second, 200, "", A, B)

	for _, in := range []*clustertest.Instance{A, B} {
		if st, id := br.me(in); st != 200 || id != uid {
			t.Fatalf("session after the restart, on %s: %d %q, want %q", in.Name, st, id, uid)
		}
	}
	// The room's record is gone: the relayed phone is told, and the
	// browser on A gets a fresh code (after the re-check, 2 s).
	wantRoomGone(t, relayed, 15*time.Second)
	var qr *wire.ServerMessage
	for qr == nil {
		m, err := readWS(w.ws, 15*time.Second)
		if err != nil {
			t.Fatalf("browser on A after the restart: %v, want a fresh code", err)
		}
		if m.Type == wire.MsgQR {
			qr = m
		}
	}
	if qr.URL == first.URL {
		t.Fatal("the browser shows the old code")
	}
	mustApprove(t, mustScan(t, dev, B, qr), nil, wire.ResultSignedIn)
	if st, body := w.exchange(B, w.approved()); st != 200 {
		t.Fatalf("exchange after the restart: %d %v", st, body)
	}
	if st, id := w.me(A); st != 200 || id != uid {
		t.Fatalf("new sign-in after the restart: %d %q", st, id)
	}

	// The idle room's code was lost with Redis: scanning it is refused.
	// The room shows a fresh code at its next rotation (3 s here) or, if
	// the rotation fell while Redis was down, ends with an error and the
	// page opens a new socket, which gets one.
	if _, err := scanOn(context.Background(), dev, B, idleQR); qrauth.ErrorReason(err) != "psk_unknown" {
		t.Fatalf("the idle room's old code after the restart: %v, want psk_unknown", err)
	}
	var fresh *wire.ServerMessage
	for fresh == nil {
		m, err := readWS(idle.ws, 10*time.Second)
		switch {
		case err != nil:
			t.Logf("idle room ended (%v): reconnecting", err)
			fresh = idle.open(B, "")
		case m.Type == wire.MsgQR:
			fresh = m
		case m.Type == wire.MsgError:
			t.Logf("idle room: %s", m.Reason)
		}
	}
	mustApprove(t, mustScan(t, dev, B, fresh), nil, wire.ResultSignedIn)
	if st, body := idle.exchange(B, idle.approved()); st != 200 {
		t.Fatalf("exchange of the idle room's fresh code: %d %v", st, body)
	}
}

// TestClusterPostgresDown: PostgreSQL becomes unreachable for both
// instances (a proxy between them and the server cuts every connection
// and refuses new ones). Requests that need it fail with 500 "internal",
// /readyz is 503 store_unavailable, a sign-up attempted meanwhile leaves
// no trace; once it is reachable again both instances serve by
// themselves, without a restart.
func TestClusterPostgresDown(t *testing.T) {
	t.Parallel()
	var proxy *clustertest.Proxy
	c := startCluster(t, clusterOpts{store: func(raw string) string {
		u, _ := url.Parse(raw)
		proxy = clustertest.NewProxy(t, u.Host)
		u.Host = proxy.Addr
		return u.String()
	}})
	A, B := c.a, c.b
	dev := c.phone(B, "+41 79 555 17 01", "")
	br := c.signIn(dev, A, B, A, &qrauth.Profile{Name: "Barbara"})
	_, uid := br.me(B)
	users := func() int {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		conn, err := pgx.Connect(ctx, c.pgURL)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close(ctx)
		var n int
		if err := conn.QueryRow(ctx, "SELECT count(*) FROM users").Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	before := users()
	// Made before: the phone's first request reads the store's salt.
	newcomer := c.phone(B, "+41 79 555 17 02", "")

	proxy.Block()
	for _, in := range []*clustertest.Instance{A, B} {
		st, body := br.do(in, "GET", wire.PathMe, "")
		if st != 500 || body["code"] != qrauth.EINTERNAL {
			t.Fatalf("me on %s with PostgreSQL away: %d %v, want 500 internal", in.Name, st, body)
		}
	}
	waitClusterReadyz(t, 10*time.Second, 503, "store_unavailable", A, B)
	for _, in := range []*clustertest.Instance{A, B} {
		if st, _ := br.do(in, "GET", "/healthz", ""); st != 200 {
			t.Fatalf("/healthz on %s with PostgreSQL away: %d, want 200 (the process is fine)", in.Name, st)
		}
	}
	// A new phone signs up meanwhile: refused, and nothing is written.
	nb := c.browser(A)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	// The join already needs the store (is the device known?).
	s, err := scanOn(ctx, newcomer, B, nb.open(A, ""))
	if err == nil {
		defer s.Close()
		_, err = s.Approve(ctx, appclient.ApproveOptions{Profile: &qrauth.Profile{Name: "Nobody"}})
	}
	if qrauth.ErrorCode(err) != qrauth.EINTERNAL {
		t.Fatalf("sign-up with PostgreSQL away: %v, want internal", err)
	}

	proxy.Unblock()
	waitClusterReadyz(t, 15*time.Second, 200, "", A, B)
	if n := users(); n != before {
		t.Fatalf("%d users after the refused sign-up, %d before", n, before)
	}
	for _, in := range []*clustertest.Instance{A, B} {
		if st, id := br.me(in); st != 200 || id != uid {
			t.Fatalf("me on %s after PostgreSQL came back: %d %q", in.Name, st, id)
		}
	}
	nb2 := c.signIn(newcomer, A, B, B, &qrauth.Profile{Name: "Newcomer"})
	if st, _ := nb2.me(A); st != 200 || users() != before+1 {
		t.Fatalf("sign-up after PostgreSQL came back: %d, %d users", st, users())
	}
}
