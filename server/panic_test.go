package server_test

import (
	"context"
	"log/slog"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/qrauth/qrauth"
	"github.com/qrauth/qrauth/server"
	"github.com/qrauth/qrauth/store"
	"github.com/qrauth/qrauth/wire"
	"golang.org/x/time/rate"
)

// panickyStore panics in FindDeviceByID while armed, as bbolt did on a
// damaged page ("assertion failed … page") before the store caught it.
type panickyStore struct {
	qrauth.Store
	armed atomic.Bool
}

func (s *panickyStore) FindDeviceByID(ctx context.Context, id qrauth.DeviceID) (*qrauth.Device, error) {
	if s.armed.Load() {
		panic("planted: assertion failed: page 42 is not a leaf")
	}
	return s.Store.FindDeviceByID(ctx, id)
}

// Before: a panic in the room-join path ran outside echo's recover and
// ended the process, dropping every room.
func TestPanicInJoinRefusesOneRoom(t *testing.T) {
	db, err := store.Open(t.TempDir()+"/qrauth.db", store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	st := &panickyStore{Store: db}
	var logs syncBuffer
	s, err := server.New(server.Config{Addr: "127.0.0.1:0", RoomRate: rate.Inf, AppRate: rate.Inf,
		Logger: slog.New(slog.NewTextHandler(&logs, nil))}, st)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Open(); err != nil {
		t.Fatal(err)
	}
	srv := &testServer{Server: s, DB: db, URL: s.Origin()}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := srv.Shutdown(ctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
	})

	st.armed.Store(true)
	b := newBrowser(t, srv)
	p := newPhone(t, srv, "+41 79 555 01 01")
	m := p.join(b.open())
	if m.Type != wire.MsgError || m.Code != qrauth.EINTERNAL || strings.Contains(m.Message, "planted") {
		t.Fatalf("join answered %+v, want an internal error that hides the cause", m)
	}
	if code := readClose(t, p.ws); code != wire.CloseCode(qrauth.EINTERNAL) {
		t.Errorf("close code %d", code)
	}
	if l := logs.String(); !strings.Contains(l, "level=ERROR") || !strings.Contains(l, "planted: assertion failed") {
		t.Errorf("the panic was not logged at error with its cause:\n%s", l)
	}

	// The process lives on and the next sign-in works.
	st.armed.Store(false)
	b2 := newBrowser(t, srv)
	p2 := newPhone(t, srv, "+41 79 555 01 02")
	if m := p2.join(b2.open()); m.Type != wire.MsgChallenge {
		t.Fatalf("after the panic, join answered %+v", m)
	}
}
