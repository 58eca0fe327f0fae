package server

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"log/slog"
	"sync"
	"time"

	"github.com/qrauth/qrauth"
	"github.com/qrauth/qrauth/wire"
)

// hub owns the rooms, the PSK index and the tickets of one instance. Lock
// order: room.mu before hub.mu; the hub lock is never held across I/O.
type hub struct {
	cfg   Config
	store qrauth.Store
	log   *slog.Logger

	mu      sync.Mutex
	rooms   map[string]*room
	psks    map[[32]byte]*room
	tickets map[[32]byte]*ticket
	conns   map[*conn]struct{}
	closed  bool
}

// ticket is what an approved browser exchanges for a session. Only its hash
// is the map key; the value never holds the ticket itself.
type ticket struct {
	userID    qrauth.UserID
	deviceID  qrauth.DeviceID
	bindHash  []byte
	ip        string
	userAgent string
	expires   time.Time
}

func newHub(cfg Config, store qrauth.Store) *hub {
	return &hub{
		cfg:     cfg,
		store:   store,
		log:     cfg.Logger,
		rooms:   make(map[string]*room),
		psks:    make(map[[32]byte]*room),
		tickets: make(map[[32]byte]*ticket),
	}
}

// roomCount returns the number of open rooms.
func (h *hub) roomCount() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.rooms)
}

// register adds r to the hub, refusing when the hub is closed or full.
func (h *hub) register(r *room) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return qrauth.Errorf(qrauth.ERATELIMITED, "shutting_down", "The server is restarting. Please try again in a moment.")
	}
	if len(h.rooms) >= h.cfg.MaxRooms {
		return qrauth.Errorf(qrauth.ERATELIMITED, "too_many_rooms", "%s", errTooManyRooms)
	}
	h.rooms[r.id] = r
	return nil
}

func (h *hub) unregister(r *room) {
	h.mu.Lock()
	defer h.mu.Unlock()
	delete(h.rooms, r.id)
	if h.psks[r.psk] == r {
		delete(h.psks, r.psk)
	}
}

// setPSK replaces r's PSK in the index. A zero psk only removes the old one.
func (h *hub) setPSK(r *room, old, psk [32]byte) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.psks[old] == r {
		delete(h.psks, old)
	}
	if psk != ([32]byte{}) {
		h.psks[psk] = r
	}
}

// takePSK consumes a PSK: whoever takes it first gets the room, nobody
// else ever can.
func (h *hub) takePSK(psk string) (*room, [32]byte, error) {
	sum := sha256.Sum256([]byte(psk))
	h.mu.Lock()
	defer h.mu.Unlock()
	r, ok := h.psks[sum]
	if !ok {
		return nil, sum, errPSKUnknown
	}
	delete(h.psks, sum)
	return r, sum, nil
}

var errPSKUnknown = qrauth.Errorf(qrauth.ENOTFOUND, "psk_unknown",
	"This code is not valid: it has expired or was used already. Scan the code the browser shows now.")

// issueTicket stores a new ticket and returns it.
func (h *hub) issueTicket(t *ticket) (string, error) {
	tok, err := qrauth.RandomToken(h.cfg.Rand, 32)
	if err != nil {
		return "", qrauth.Internal(err)
	}
	t.expires = h.cfg.Now().Add(h.cfg.TicketTTL)
	h.mu.Lock()
	defer h.mu.Unlock()
	h.tickets[sha256.Sum256([]byte(tok))] = t
	return tok, nil
}

// redeemTicket consumes a ticket; it works once, within its lifetime, and
// only with the bind cookie of the browser that opened the room. Any
// attempt burns the ticket, so a thief gets one guess that also locks out
// nobody but the room's own browser, which exchanges it at once.
func (h *hub) redeemTicket(tok, bind string) (*ticket, error) {
	sum := sha256.Sum256([]byte(tok))
	h.mu.Lock()
	t, ok := h.tickets[sum]
	delete(h.tickets, sum)
	h.mu.Unlock()
	switch {
	case !ok:
		return nil, qrauth.Errorf(qrauth.EUNAUTHORIZED, "ticket_invalid", "This sign-in ticket is not valid or was used already. Scan a new code.")
	case !h.cfg.Now().Before(t.expires):
		return nil, qrauth.Errorf(qrauth.EEXPIRED, "ticket_expired", "This sign-in ticket has expired. Scan a new code.")
	case subtle.ConstantTimeCompare(t.bindHash, qrauth.HashToken(bind)) != 1:
		return nil, qrauth.Errorf(qrauth.EUNAUTHORIZED, "ticket_wrong_browser", "This sign-in ticket belongs to another browser.")
	}
	return t, nil
}

// purge drops expired tickets. Rooms expire on their own timers.
func (h *hub) purge(now time.Time) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for k, t := range h.tickets {
		if !now.Before(t.expires) {
			delete(h.tickets, k)
		}
	}
}

// shutdown tells every browser to reconnect (to another instance, or to
// this one once it is back) and closes every socket. New rooms are refused.
func (h *hub) shutdown() {
	h.mu.Lock()
	h.closed = true
	rooms := make([]*room, 0, len(h.rooms))
	for _, r := range h.rooms {
		rooms = append(rooms, r)
	}
	h.mu.Unlock()
	for _, r := range rooms {
		r.mu.Lock()
		r.finishLocked(func(c *conn) {
			c.sendMsg(&wire.ServerMessage{Type: wire.MsgReconnect})
			c.closeWith(closeRestart, "server restart")
		}, func(c *conn) {
			c.closeWith(closeRestart, "server restart")
		})
		r.mu.Unlock()
	}
	h.closeAll()
}

// audit appends events best-effort: a refused attempt must not fail
// because the audit write did; the failure is logged.
func (h *hub) audit(events ...*qrauth.AuditEvent) {
	if err := h.store.AppendAudit(context.Background(), events...); err != nil {
		h.log.Error("audit append failed", slog.Any("err", err))
	}
}
