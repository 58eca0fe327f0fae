package server_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/qrauth/qrauth"
	"github.com/qrauth/qrauth/internal/redistest"
	"github.com/qrauth/qrauth/server"
	"github.com/qrauth/qrauth/shared"
	sharedredis "github.com/qrauth/qrauth/shared/redis"
	"github.com/qrauth/qrauth/store"
	"github.com/qrauth/qrauth/wire"
	"golang.org/x/time/rate"
)

// openCluster starts two instances on one store and one shared state,
// both serving the origin of the first, as behind a load balancer.
func openCluster(t *testing.T, sh shared.Store, edit func(*server.Config)) (a, b *testServer) {
	t.Helper()
	db, err := store.Open(t.TempDir()+"/qrauth.db", store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	origin := "http://" + ln.Addr().String()
	ln.Close()
	open := func(name, addr string) *testServer {
		cfg := server.Config{Addr: addr, Origin: origin, RoomRate: rate.Inf, AppRate: rate.Inf,
			Shared: sh, InstanceID: name, RoomRecheck: 200 * time.Millisecond,
			Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}
		if edit != nil {
			edit(&cfg)
		}
		s, err := server.New(cfg, db)
		if err != nil {
			t.Fatal(err)
		}
		if err := s.Open(); err != nil {
			t.Fatal(err)
		}
		return &testServer{Server: s, DB: db, URL: origin, Dial: "http://" + s.Addr().String()}
	}
	a = open("A", strings.TrimPrefix(origin, "http://"))
	b = open("B", "127.0.0.1:0")
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		for _, s := range []*testServer{a, b} {
			if err := s.Server.Shutdown(ctx); err != nil {
				t.Errorf("shutdown: %v", err)
			}
		}
		db.Close()
	})
	return a, b
}

// onOther moves a browser's requests to another instance: the same
// browser (cookies are per host, not per port) behind the balancer.
func (b *browser) onOther(srv *testServer) *browser {
	cp := *b
	cp.srv = srv
	return &cp
}

// runClusterFlows is the whole life of an account across two instances:
// each step's browser and phone are on different ones, and the ticket is
// exchanged on the instance the browser did not open its room on.
func runClusterFlows(t *testing.T, a, b *testServer) {
	t.Helper()
	p := newPhone(t, b, "+41 44 668 18 00")

	// Sign-up: browser on A, phone on B, the form from the browser.
	br := newBrowser(t, a)
	ch := p.join(br.open())
	if ch.Type != wire.MsgChallenge || ch.Mode != wire.ModeSignUp {
		t.Fatalf("join through B: %+v", ch)
	}
	if m := br.next(); m.Type != wire.MsgScanned {
		t.Fatalf("browser on A: %+v, want scanned", m)
	}
	if m := p.decide(wire.DecisionApprove, true, nil); m.Type != wire.MsgNeedsForm {
		t.Fatalf("decide through B: %+v", m)
	}
	if m := br.next(); m.Type != wire.MsgSignUp {
		t.Fatalf("browser on A: %+v, want signup", m)
	}
	br.ws.WriteJSON(wire.BrowserFrame{Type: wire.MsgProfile, Name: "Ada Lovelace", Email: "ada@example.com"})
	m := br.next()
	if m.Type != wire.MsgApproved || m.Ticket == "" {
		t.Fatalf("browser on A: %+v, want approved", m)
	}
	if d := readMsg(t, p.ws); d.Type != wire.MsgDone || d.Result != wire.ResultSignedUp {
		t.Fatalf("phone on B: %+v", d)
	}
	if st, body := br.onOther(b).exchange(m.Ticket); st != 200 {
		t.Fatalf("exchange on B: %d %v", st, body)
	}
	// The same ticket again, on either instance: used.
	for _, s := range []*testServer{a, b} {
		if st, body := br.onOther(s).exchange(m.Ticket); st != 401 || body["reason"] != "ticket_invalid" {
			t.Fatalf("ticket replayed: %d %v", st, body)
		}
	}

	// Sign-in: browser on B, phone on A.
	p.srv = a
	br2 := newBrowser(t, b)
	qr := br2.open()
	ch = p.join(qr)
	if ch.Type != wire.MsgChallenge || ch.Mode != wire.ModeLogin || ch.Account == nil || ch.Account.Name != "Ada Lovelace" {
		t.Fatalf("join through A: %+v", ch)
	}
	// The PSK just used, presented on either instance by another phone.
	thief := newPhone(t, b, "+41 44 668 18 01")
	for _, s := range []*testServer{a, b} {
		thief.srv = s
		if m := thief.join(qr); m.Type != wire.MsgError || m.Reason != "psk_unknown" {
			t.Fatalf("PSK replayed on %s: %+v", s.Dial, m)
		}
	}
	br2.next() // scanned
	d := p.decision(wire.DecisionApprove)
	signed := wire.AppFrame{Type: wire.MsgDecision, Decision: wire.DecisionApprove, Signature: d.Sign(p.priv)}
	p.send(signed)
	if m := readMsg(t, p.ws); m.Type != wire.MsgDone || m.Result != wire.ResultSignedIn {
		t.Fatalf("phone on A: %+v", m)
	}
	m = br2.next()
	if m.Type != wire.MsgApproved {
		t.Fatalf("browser on B: %+v", m)
	}
	if st, body := br2.onOther(a).exchange(m.Ticket); st != 200 {
		t.Fatalf("exchange on A: %d %v", st, body)
	}
	if st, me := br2.onOther(a).do("GET", wire.PathMe, ""); st != 200 {
		t.Fatalf("me on A: %d %v", st, me)
	}
	if st, me := br2.do("GET", wire.PathMe, ""); st != 200 {
		t.Fatalf("me on B: %d %v", st, me)
	}

	// The signed decision replayed on the other instance: the room is
	// gone, and a phone must join before anything else.
	p.srv = b
	p.dial()
	p.send(signed)
	if m := readMsg(t, p.ws); m.Type != wire.MsgError || m.Reason != "join_first" {
		t.Fatalf("decision replayed on B: %+v", m)
	}

	// Link a second phone: account page on A, new phone on B.
	q := newPhone(t, b, "+41 44 668 18 00")
	ws, resp, err := br.dial("?mode=link")
	if err != nil {
		t.Fatalf("link socket: %v %v", err, resp)
	}
	defer ws.Close()
	lqr := readMsg(t, ws)
	if lqr.Type != wire.MsgQR || lqr.Mode != wire.ModeLink {
		t.Fatalf("link: %+v", lqr)
	}
	if m := q.join(lqr); m.Type != wire.MsgChallenge || m.Mode != wire.ModeLink {
		t.Fatalf("link join through B: %+v", m)
	}
	readMsg(t, ws) // scanned
	if m := q.decide(wire.DecisionApprove, false, nil); m.Type != wire.MsgDone || m.Result != wire.ResultLinked {
		t.Fatalf("link decide through B: %+v", m)
	}
	if m := readMsg(t, ws); m.Type != wire.MsgLinked {
		t.Fatalf("account page on A: %+v", m)
	}
}

func TestClusterMemory(t *testing.T) {
	sh := shared.NewMemory(nil)
	a, b := openCluster(t, sh, nil)
	runClusterFlows(t, a, b)
}

func TestClusterRedis(t *testing.T) {
	rs := redistest.Shared(t)
	sh, err := sharedredis.Open(context.Background(), rs.URL, sharedredis.Options{Prefix: "t-" + t.Name() + ":"})
	if err != nil {
		t.Fatal(err)
	}
	defer sh.Close()
	a, b := openCluster(t, sh, nil)
	runClusterFlows(t, a, b)
}

// lossy drops every hint: the instances must get by on their re-checks.
type lossy struct {
	shared.Store
	dropped atomic.Int64
}

func (l *lossy) Publish(context.Context, string) error {
	l.dropped.Add(1)
	return nil
}

func TestClusterHintsLost(t *testing.T) {
	sh := &lossy{Store: shared.NewMemory(nil)}
	a, b := openCluster(t, sh, nil)
	runClusterFlows(t, a, b)
	if sh.dropped.Load() == 0 {
		t.Fatal("no hint was sent, so none was lost: the test proves nothing")
	}
}

// A phone whose socket closes before it decides: the browser on the other
// instance gets a fresh code at once, not when the room expires.
func TestClusterPhoneLeaves(t *testing.T) {
	a, b := openCluster(t, shared.NewMemory(nil), nil)
	p := newPhone(t, b, "+41 44 668 18 00")
	br := newBrowser(t, a)
	first := br.open()
	if m := p.join(first); m.Type != wire.MsgChallenge {
		t.Fatalf("join: %+v", m)
	}
	br.next() // scanned
	p.ws.Close()
	m := br.next()
	if m.Type != wire.MsgQR || m.URL == first.URL {
		t.Fatalf("browser after the phone left: %+v, want a fresh code", m)
	}
}

// The instance holding the room goes away: the phone relayed to it by the
// other instance is told, and its account is untouched.
func TestClusterOwnerGone(t *testing.T) {
	a, b := openCluster(t, shared.NewMemory(nil), nil)
	p := newPhone(t, b, "+41 44 668 18 00")
	br := newBrowser(t, a)
	if m := p.join(br.open()); m.Type != wire.MsgChallenge {
		t.Fatalf("join: %+v", m)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := a.Server.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	code := readClose(t, p.ws)
	if code != wire.CloseServiceRestart && code != wire.CloseCode(qrauth.ENOTFOUND) {
		t.Fatalf("phone on B closed with %d, want reconnect or room_gone", code)
	}
}

// remoteView is one instance's view of the shared state across a network:
// each call takes a moment, and once closed (as qrauthd closes its Redis
// client as soon as the server's Shutdown returns) nothing more reaches
// the state.
type remoteView struct {
	shared.Store
	closed atomic.Bool
}

func (v *remoteView) call() error {
	time.Sleep(30 * time.Millisecond) // the round trip, not a wait for an event
	if v.closed.Load() {
		return shared.ErrClosed
	}
	return nil
}

func (v *remoteView) Load(ctx context.Context, key string) ([]byte, uint64, error) {
	if err := v.call(); err != nil {
		return nil, 0, err
	}
	return v.Store.Load(ctx, key)
}

func (v *remoteView) Swap(ctx context.Context, key string, ver uint64, b []byte, ttl time.Duration) (uint64, error) {
	if err := v.call(); err != nil {
		return 0, err
	}
	return v.Store.Swap(ctx, key, ver, b, ttl)
}

func (v *remoteView) Delete(ctx context.Context, key string) error {
	if err := v.call(); err != nil {
		return err
	}
	return v.Store.Delete(ctx, key)
}

// Shutdown returns only when the instance has written what it owes the
// shared state: its relayed phones' goodbye (reconnect, 1012) and the
// removal of its alive key. qrauthd closes the Redis client right after,
// so anything left to a goroutine then is lost, and the phone would learn
// only from the alive key's expiry, seconds later, with room_gone.
func TestClusterShutdownFlushes(t *testing.T) {
	sh := shared.NewMemory(nil)
	viewA := &remoteView{Store: sh}
	a, b := openCluster(t, sh, func(c *server.Config) {
		if c.InstanceID == "A" {
			c.Shared = viewA
		}
	})
	p := newPhone(t, b, "+41 44 668 18 00")
	br := newBrowser(t, a)
	if m := p.join(br.open()); m.Type != wire.MsgChallenge {
		t.Fatalf("join: %+v", m)
	}
	br.next() // scanned
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := a.Server.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	viewA.closed.Store(true)
	if _, _, err := sh.Load(ctx, "alive:A"); !errors.Is(err, shared.ErrNotFound) {
		t.Errorf("alive key of the instance shut down: %v, want it deleted", err)
	}
	if code := readClose(t, p.ws); code != wire.CloseServiceRestart {
		t.Fatalf("phone on B closed with %d, want %d (reconnect)", code, wire.CloseServiceRestart)
	}
}

// The shared record of a room that spans two instances is lost (Redis
// restarted, or evicted it) while a relayed phone is in the room: that
// phone is told room_gone and the browser gets a fresh code. A phone that
// then joins the fresh code through the other instance starts a new
// record, numbered from 1 again, and must get its challenge: the room's
// instance must not take the new record's join for one it has handled.
func TestClusterRecordLost(t *testing.T) {
	sh := shared.NewMemory(nil)
	a, b := openCluster(t, sh, nil)
	p := newPhone(t, b, "+41 44 668 18 00")
	br := newBrowser(t, a)
	first := br.open()
	ch := p.join(first)
	if ch.Type != wire.MsgChallenge {
		t.Fatalf("join: %+v", ch)
	}
	br.next() // scanned
	if err := sh.Delete(context.Background(), "room:"+ch.Room); err != nil {
		t.Fatal(err)
	}
	if m := readMsg(t, p.ws); m.Type != wire.MsgError || m.Reason != "room_gone" {
		t.Fatalf("relayed phone after its record was lost: %+v", m)
	}
	m := br.next()
	if m.Type != wire.MsgQR || m.URL == first.URL {
		t.Fatalf("browser after the record was lost: %+v, want a fresh code", m)
	}
	q := newPhone(t, b, "+41 44 668 18 02")
	if ch := q.join(m); ch.Type != wire.MsgChallenge {
		t.Fatalf("join of the fresh code through B: %+v", ch)
	}
	if m := br.next(); m.Type != wire.MsgScanned {
		t.Fatalf("browser: %+v, want scanned", m)
	}
	if m := q.decide(wire.DecisionApprove, true, nil); m.Type != wire.MsgNeedsForm {
		t.Fatalf("decide through B: %+v", m)
	}
}

// recording keeps every key and value written to the shared store.
type recording struct {
	shared.Store
	mu      sync.Mutex
	written []string
}

func (r *recording) note(key string, v []byte) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.written = append(r.written, key, string(v))
}

func (r *recording) Put(ctx context.Context, key string, v []byte, ttl time.Duration) error {
	r.note(key, v)
	return r.Store.Put(ctx, key, v, ttl)
}

func (r *recording) Create(ctx context.Context, key string, v []byte, ttl time.Duration) error {
	r.note(key, v)
	return r.Store.Create(ctx, key, v, ttl)
}

func (r *recording) Swap(ctx context.Context, key string, ver uint64, v []byte, ttl time.Duration) (uint64, error) {
	r.note(key, v)
	return r.Store.Swap(ctx, key, ver, v, ttl)
}

// A typed code shown by a room on A is exchanged on B for the room's QR
// URL, once; and nothing written to the shared store holds the live PSK
// or the code, so reading Redis lets nobody into a waiting room.
func TestClusterTypedCode(t *testing.T) {
	rec := &recording{Store: shared.NewMemory(nil)}
	a, b := openCluster(t, rec, func(c *server.Config) { c.CodeRate, c.CodeGlobalRate = rate.Inf, rate.Inf })
	br := newBrowser(t, a)
	qr := br.open()
	if qr.UserCode == "" {
		t.Fatalf("no typed code: %+v", qr)
	}
	psk := qr.URL[strings.LastIndex(qr.URL, "/")+1:]
	code, _ := wire.NormalizeUserCode(qr.UserCode)
	rec.mu.Lock()
	for _, w := range rec.written {
		if strings.Contains(w, psk) || strings.Contains(w, code) {
			t.Errorf("the shared store was given %q, which holds the live PSK or code", w)
		}
	}
	rec.mu.Unlock()
	if st, reason, url := postCode(t, b, "", qr.UserCode); st != 200 || url != qr.URL {
		t.Fatalf("code on B: %d %s %q, want the QR URL %q", st, reason, url, qr.URL)
	}
	if st, reason, _ := postCode(t, a, "", qr.UserCode); st != 404 || reason != "code_unknown" {
		t.Fatalf("code again on A: %d %s, want 404 code_unknown", st, reason)
	}
	// The URL leads a phone on B into the room on A.
	p := newPhone(t, b, "+41 44 668 18 00")
	if m := p.join(qr); m.Type != wire.MsgChallenge || m.Mode != wire.ModeSignUp {
		t.Fatalf("join through B: %+v", m)
	}
}
