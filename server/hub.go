package server

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"io"
	"log/slog"
	"sync"
	"time"

	"github.com/qrauth/qrauth"
	"github.com/qrauth/qrauth/shared"
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
	codes   map[[32]byte]codeEntry // user code hash -> room (login rooms only)
	tickets map[[32]byte]*ticket
	conns   map[*conn]struct{}
	closed  bool

	// In a cluster (cfg.Shared set): the shared state, and the phones on
	// this instance that joined a room held by another (relay.go).
	shared shared.Store
	relays map[string]map[*relay]struct{} // room id -> relays
	// remotes are the rooms here that a phone on another instance joined,
	// the only ones the re-check reads.
	remotes map[*room]*remoteRoom
	// bg runs the goroutines that read or write the shared state for
	// rooms and relays (pumps, flushes, index drops): runCluster waits for
	// them before it ends, since the caller closes the store after Shutdown.
	bg sync.WaitGroup
}

// ticket is what an approved browser exchanges for a session. Only its hash
// is the map key; the value never holds the ticket itself.
type ticket struct {
	userID    qrauth.UserID
	deviceID  qrauth.DeviceID
	bindHash  []byte
	ip        string
	userAgent string
	scanned   time.Time // the phone's join, for the scan-to-signed-in metric
	expires   time.Time
}

func newHub(cfg Config, store qrauth.Store) *hub {
	return &hub{
		cfg:     cfg,
		store:   store,
		log:     cfg.Logger,
		rooms:   make(map[string]*room),
		psks:    make(map[[32]byte]*room),
		codes:   make(map[[32]byte]codeEntry),
		tickets: make(map[[32]byte]*ticket),
		shared:  cfg.Shared,
		relays:  make(map[string]map[*relay]struct{}),
		remotes: make(map[*room]*remoteRoom),
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
	h.cfg.Metrics.RoomsWaiting(1)
	return nil
}

// unregister removes r; finishLocked calls it once per room.
func (h *hub) unregister(r *room) {
	h.mu.Lock()
	defer h.mu.Unlock()
	delete(h.rooms, r.id)
	delete(h.remotes, r)
	h.cfg.Metrics.RoomsWaiting(-1)
	if h.psks[r.psk] == r {
		delete(h.psks, r.psk)
	}
	if h.codes[r.code].r == r {
		delete(h.codes, r.code)
	}
	if h.shared != nil {
		// Off the caller's lock: the entries would expire on their own,
		// dropping them only frees the keys early.
		pskK, pskV, codeK, codeV := pskKey(r.psk), r.pskVal, codeKey(r.code), r.codeVal
		h.bg.Go(func() { h.dropShared(pskK, pskV, codeK, codeV) })
	}
}

// setPSK replaces r's PSK in the index. A zero psk only removes the old
// one. In a cluster the index is shared, so a phone on any instance finds
// the room; it fails only when the shared state does. Called with r.mu held.
func (h *hub) setPSK(r *room, psk [32]byte, ttl time.Duration) error {
	old := r.psk
	if h.shared != nil {
		return h.setSharedPSK(r, psk, ttl)
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.psks[old] == r {
		delete(h.psks, old)
	}
	if psk != ([32]byte{}) {
		h.psks[psk] = r
	}
	return nil
}

// takePSK consumes a PSK: whoever takes it first gets the room, nobody
// else ever can. In a cluster the room may be held by another instance:
// then r is nil and owner names it (relay.go carries the phone's frames).
func (h *hub) takePSK(ctx context.Context, psk string) (r *room, owner, roomID string, sum [32]byte, err error) {
	sum = sha256.Sum256([]byte(psk))
	if h.shared != nil {
		return h.takeSharedPSK(ctx, sum)
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	r, ok := h.psks[sum]
	if !ok {
		return nil, "", "", sum, errPSKUnknown
	}
	delete(h.psks, sum)
	return r, h.cfg.InstanceID, r.id, sum, nil
}

// codeEntry is what a user code names: its room and the URL of the QR
// code it stands for, which is what the phone gets in exchange.
type codeEntry struct {
	r   *room
	url string
}

// setCode replaces r's user code in the index; a zero code only removes
// the old one. It reports false, changing nothing, when another room holds
// the new code (a collision of two random codes), so the caller draws again.
// Called with r.mu held.
func (h *hub) setCode(r *room, code [32]byte, url string) (bool, error) {
	old := r.code
	if h.shared != nil {
		return h.setSharedCode(r, code, url)
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if code != ([32]byte{}) {
		if e, ok := h.codes[code]; ok && e.r != r {
			return false, nil
		}
	}
	if h.codes[old].r == r {
		delete(h.codes, old)
	}
	if code != ([32]byte{}) {
		h.codes[code] = codeEntry{r: r, url: url}
	}
	return true, nil
}

// takeCode consumes a canonical user code (wire.NormalizeUserCode) and
// returns the URL of its room's QR code. Like a PSK it works once: whoever
// presents it first gets the URL. The PSK itself stays valid for the join.
// An unknown code is errCodeUnknown.
func (h *hub) takeCode(ctx context.Context, code string) (string, error) {
	sum := userCodeHash(code)
	if h.shared != nil {
		return h.takeSharedCode(ctx, code, sum)
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	e, ok := h.codes[sum]
	if !ok {
		return "", errCodeUnknown
	}
	delete(h.codes, sum)
	return e.url, nil
}

// userCodeHash is the index key of a canonical user code. Hashed like the
// PSK, so that the index holds no code a memory dump could replay.
func userCodeHash(code string) [32]byte {
	return sha256.Sum256([]byte("qrauth user code\n" + code))
}

// newUserCode draws a code of wire.UserCodeLength characters, uniform over
// wire.UserCodeAlphabet: 5 random bits per character, 40 bits in all.
func newUserCode(rnd io.Reader) (string, error) {
	var b [5]byte
	if _, err := io.ReadFull(rnd, b[:]); err != nil {
		return "", err
	}
	v := uint64(b[0])<<32 | uint64(b[1])<<24 | uint64(b[2])<<16 | uint64(b[3])<<8 | uint64(b[4])
	out := make([]byte, wire.UserCodeLength)
	for i := range out {
		out[i] = wire.UserCodeAlphabet[v>>(5*(wire.UserCodeLength-1-i))&31]
	}
	return string(out), nil
}

var errCodeUnknown = qrauth.Errorf(qrauth.ENOTFOUND, "code_unknown",
	"This code is not valid: it was mistyped, has expired or was used already. Type the code the browser shows now.")

var errPSKUnknown = qrauth.Errorf(qrauth.ENOTFOUND, "psk_unknown",
	"This code is not valid: it has expired or was used already. Scan the code the browser shows now.")

// issueTicket stores a new ticket and returns it.
func (h *hub) issueTicket(t *ticket) (string, error) {
	tok, err := qrauth.RandomToken(h.cfg.Rand, 32)
	if err != nil {
		return "", qrauth.Internal(err)
	}
	t.expires = h.cfg.Now().Add(h.cfg.TicketTTL)
	if h.shared != nil {
		return tok, h.putSharedTicket(tok, t)
	}
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
	var t *ticket
	var ok bool
	if h.shared != nil {
		var err error
		if t, err = h.takeSharedTicket(tok); err != nil {
			return nil, err
		}
		ok = t != nil
	} else {
		sum := sha256.Sum256([]byte(tok))
		h.mu.Lock()
		t, ok = h.tickets[sum]
		delete(h.tickets, sum)
		h.mu.Unlock()
	}
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
		}, func(c peer) {
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
