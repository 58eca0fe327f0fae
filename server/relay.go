package server

// Cluster mode (Config.Shared set, docs/cluster.md). A room lives on the
// instance its browser connected to, which runs it exactly as one instance
// alone does. What other instances must find is in the shared store: the
// PSK and user-code indexes (a phone may reach any instance), and tickets
// (the browser's exchange may too). A phone that joins a room held by
// another instance stays on its own instance, which relays its frames:
//
//   - the phone's instance appends the frame to the room's record in the
//     shared store (a versioned record, "room:ID") and publishes a hint;
//   - the room's instance re-reads the record, hands each new frame to the
//     room through a remoteApp, and appends what the room says to the phone;
//   - the phone's instance re-reads the record and sends those messages.
//
// Hints are only hints: each side re-reads the versioned record, the
// phone's side re-publishes while its frames are unanswered, and both
// re-read every RoomRecheck, so a lost hint delays a step by at most that
// and loses nothing. Each instance also keeps an "alive:ID" key fresh, so
// that a phone whose room's instance died is told at once rather than
// when the room would have expired.

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/qrauth/qrauth"
	"github.com/qrauth/qrauth/internal/keys"
	"github.com/qrauth/qrauth/shared"
	"github.com/qrauth/qrauth/wire"
)

// peer is the phone as a room sees it: its socket on this instance
// (*conn), or a remoteApp standing for its socket on another.
type peer interface {
	sendMsg(m *wire.ServerMessage) bool
	closeWith(code int, text string)
	closeErr(err error)
}

// sharedMargin is added to the TTL of a shared entry beyond its own
// deadline, which the code checks itself: the entry must not vanish first
// because of the time a request takes.
const sharedMargin = 5 * time.Second

var errRoomGone = qrauth.Errorf(qrauth.ENOTFOUND, "room_gone",
	"The sign-in page this phone joined is no longer open: its server restarted or the page was closed. Scan the code the browser shows now.")

// Keys of the shared store. Secrets appear only hashed.
func pskKey(sum [32]byte) string  { return "psk:" + hex.EncodeToString(sum[:]) }
func codeKey(sum [32]byte) string { return "code:" + hex.EncodeToString(sum[:]) }
func ticketKey(tok string) string {
	sum := sha256.Sum256([]byte(tok))
	return "ticket:" + hex.EncodeToString(sum[:])
}
func roomKey(id string) string    { return "room:" + id } // also the hint's topic
func inboxKey(inst string) string { return "inbox:" + inst }
func aliveKey(inst string) string { return "alive:" + inst }

func sharedErr(what string, err error) error {
	return qrauth.Internal(fmt.Errorf("shared state: %s: %w", what, err))
}

func sharedCtx() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), storeTimeout)
}

// pskEntry is what a PSK names in the shared index.
type pskEntry struct {
	Room  string `json:"room"`
	Owner string `json:"owner"` // the instance holding the room
}

// codeValue is what a user code names in the shared index.
type codeValue struct {
	Room string `json:"room"`
	URL  string `json:"url"` // sealed under the code (sealCodeURL): it holds the live PSK
}

// setSharedPSK puts psk in the shared index for ttl, and drops the room's
// previous entry if it is still there. Called with r.mu held.
func (h *hub) setSharedPSK(r *room, psk [32]byte, ttl time.Duration) error {
	ctx, cancel := sharedCtx()
	defer cancel()
	if r.pskVal != nil {
		// An error only leaves an entry that expires on its own and names
		// a PSK the room no longer accepts.
		_ = h.shared.Drop(ctx, pskKey(r.psk), r.pskVal)
		r.pskVal = nil
	}
	if psk == ([32]byte{}) {
		return nil
	}
	v, _ := json.Marshal(pskEntry{Room: r.id, Owner: h.cfg.InstanceID})
	if err := h.shared.Put(ctx, pskKey(psk), v, ttl+sharedMargin); err != nil {
		return sharedErr("psk", err)
	}
	r.pskVal = v
	return nil
}

func (h *hub) takeSharedPSK(ctx context.Context, sum [32]byte) (*room, string, string, [32]byte, error) {
	v, err := h.shared.Take(ctx, pskKey(sum))
	if errors.Is(err, shared.ErrNotFound) {
		return nil, "", "", sum, errPSKUnknown
	}
	if err != nil {
		return nil, "", "", sum, sharedErr("psk", err)
	}
	var e pskEntry
	if err := json.Unmarshal(v, &e); err != nil || e.Room == "" || e.Owner == "" {
		return nil, "", "", sum, sharedErr("psk", fmt.Errorf("bad entry"))
	}
	if e.Owner != h.cfg.InstanceID {
		return nil, e.Owner, e.Room, sum, nil
	}
	h.mu.Lock()
	r := h.rooms[e.Room]
	h.mu.Unlock()
	if r == nil {
		return nil, "", "", sum, errPSKUnknown
	}
	return r, e.Owner, e.Room, sum, nil
}

// setSharedCode is setCode on the shared index. Called with r.mu held.
func (h *hub) setSharedCode(r *room, code [32]byte, url string) (bool, error) {
	ctx, cancel := sharedCtx()
	defer cancel()
	var v []byte
	if code != ([32]byte{}) {
		v, _ = json.Marshal(codeValue{Room: r.id, URL: url})
		err := h.shared.Put(ctx, codeKey(code), v, h.cfg.PSKRotation+sharedMargin)
		if errors.Is(err, shared.ErrConflict) {
			return false, nil
		}
		if err != nil {
			return false, sharedErr("user code", err)
		}
	}
	if r.codeVal != nil {
		_ = h.shared.Drop(ctx, codeKey(r.code), r.codeVal)
	}
	r.codeVal = v
	return true, nil
}

// sealCodeURL seals url under code (keys.UserCodeSealer), base64.
func sealCodeURL(rnd io.Reader, code, url string) (string, error) {
	s, err := keys.UserCodeSealer(code, rnd)
	if err != nil {
		return "", err
	}
	sealed, err := s.Seal([]byte(url), nil)
	if err != nil {
		return "", err
	}
	return base64.RawURLEncoding.EncodeToString(sealed), nil
}

// openCodeURL opens what sealCodeURL made with the same code.
func openCodeURL(code, sealed string) (string, error) {
	b, err := base64.RawURLEncoding.DecodeString(sealed)
	if err != nil {
		return "", err
	}
	s, err := keys.UserCodeSealer(code, nil)
	if err != nil {
		return "", err
	}
	url, err := s.Open(b, nil)
	return string(url), err
}

func (h *hub) takeSharedCode(ctx context.Context, code string, sum [32]byte) (string, error) {
	v, err := h.shared.Take(ctx, codeKey(sum))
	if errors.Is(err, shared.ErrNotFound) {
		return "", errCodeUnknown
	}
	if err != nil {
		return "", sharedErr("user code", err)
	}
	var e codeValue
	if err := json.Unmarshal(v, &e); err != nil || e.URL == "" {
		return "", sharedErr("user code", fmt.Errorf("bad entry"))
	}
	url, err := openCodeURL(code, e.URL)
	if err != nil {
		return "", sharedErr("user code", err)
	}
	return url, nil
}

// dropShared removes a finished room's index entries, if still ours.
func (h *hub) dropShared(pskK string, pskV []byte, codeK string, codeV []byte) {
	ctx, cancel := sharedCtx()
	defer cancel()
	if pskV != nil {
		_ = h.shared.Drop(ctx, pskK, pskV)
	}
	if codeV != nil {
		_ = h.shared.Drop(ctx, codeK, codeV)
	}
}

// ticketValue is a ticket in the shared store.
type ticketValue struct {
	UserID    qrauth.UserID   `json:"user"`
	DeviceID  qrauth.DeviceID `json:"device"`
	BindHash  []byte          `json:"bind"`
	IP        string          `json:"ip"`
	UserAgent string          `json:"ua"`
	Scanned   time.Time       `json:"scanned"`
	Expires   time.Time       `json:"expires"`
}

func (h *hub) putSharedTicket(tok string, t *ticket) error {
	ctx, cancel := sharedCtx()
	defer cancel()
	v, _ := json.Marshal(ticketValue{UserID: t.userID, DeviceID: t.deviceID, BindHash: t.bindHash, IP: t.ip,
		UserAgent: t.userAgent, Scanned: t.scanned, Expires: t.expires})
	if err := h.shared.Put(ctx, ticketKey(tok), v, h.cfg.TicketTTL+sharedMargin); err != nil {
		return sharedErr("ticket", err)
	}
	return nil
}

// takeSharedTicket takes a ticket out of the shared store: nil when there
// is none (unknown, used or long expired).
func (h *hub) takeSharedTicket(tok string) (*ticket, error) {
	ctx, cancel := sharedCtx()
	defer cancel()
	v, err := h.shared.Take(ctx, ticketKey(tok))
	if errors.Is(err, shared.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, sharedErr("ticket", err)
	}
	var e ticketValue
	if err := json.Unmarshal(v, &e); err != nil {
		return nil, sharedErr("ticket", err)
	}
	return &ticket{userID: e.UserID, deviceID: e.DeviceID, bindHash: e.BindHash, ip: e.IP,
		userAgent: e.UserAgent, scanned: e.Scanned, expires: e.Expires}, nil
}

// relayRec is the shared record of a room that a phone on another
// instance joined: the phone's frames in In, the room's answers in Out.
// Entries are numbered from 1 and never removed; a room exchanges a
// handful in its life, and the record expires with the room.
type relayRec struct {
	// Gen is drawn when the record is created. A record lost (Redis
	// restarted) and created again by a later join numbers its entries
	// from 1 again: Gen tells both sides it is not the one they knew.
	Gen   string     `json:"gen"`
	Owner string     `json:"owner"`
	In    []relayIn  `json:"in,omitempty"`
	Out   []relayOut `json:"out,omitempty"`
	Done  int        `json:"done"` // the last In the room's instance handled
}

type relayIn struct {
	Seq  int    `json:"seq"`
	App  string `json:"app"`            // which phone socket: its relay's id
	Kind string `json:"kind"`           // inJoin, inFrame, inGone
	Data []byte `json:"data,omitempty"` // the phone's frame as it sent it
	IP   string `json:"ip,omitempty"`   // join: the phone's address
	PSK  []byte `json:"psk,omitempty"`  // join: the hash of the PSK taken
}

const (
	inJoin  = "join"
	inFrame = "frame"
	inGone  = "gone"
)

type relayOut struct {
	Seq   int    `json:"seq"`
	App   string `json:"app"`
	Msg   []byte `json:"msg,omitempty"` // a wire.ServerMessage, encoded
	Close int    `json:"close,omitempty"`
	Text  string `json:"text,omitempty"`
}

// errRecordReplaced: the room's record is not the one a relay joined.
var errRecordReplaced = errors.New("room record replaced")

// updateJSON applies fn to the JSON record at key with compare-and-swap,
// reading again when another instance wrote in between; an error of fn
// stops it and writes nothing. A missing record is ErrNotFound, unless
// fresh is given: then fn is applied to what fresh makes and the record is
// created, first of all without reading when createFirst says a missing
// record is the likely case.
func updateJSON[T any](ctx context.Context, st shared.Store, key string, ttl time.Duration,
	fresh func() (T, error), createFirst bool, fn func(*T) error) error {
	create := func() error {
		v, err := fresh()
		if err != nil {
			return err
		}
		if err := fn(&v); err != nil {
			return err
		}
		b, _ := json.Marshal(&v)
		return st.Create(ctx, key, b, ttl)
	}
	if fresh != nil && createFirst {
		if err := create(); !errors.Is(err, shared.ErrConflict) {
			return err
		}
	}
	for range 64 {
		b, ver, err := st.Load(ctx, key)
		switch {
		case errors.Is(err, shared.ErrNotFound) && fresh != nil:
			if err = create(); errors.Is(err, shared.ErrConflict) {
				continue
			}
			return err
		case err != nil:
			return err
		}
		var v T
		if err := json.Unmarshal(b, &v); err != nil {
			return fmt.Errorf("%s: %w", key, err)
		}
		if err := fn(&v); err != nil {
			return err
		}
		b, _ = json.Marshal(&v)
		if _, err = st.Swap(ctx, key, ver, b, ttl); errors.Is(err, shared.ErrConflict) {
			continue
		}
		return err
	}
	return fmt.Errorf("%s: too many concurrent writers", key)
}

// updateRelay applies fn to the room's record (updateJSON). With create,
// a missing record is made, with a new Gen; a phone's first join creates
// it without reading first, as it is almost always new.
func (h *hub) updateRelay(ctx context.Context, id string, create bool, fn func(*relayRec) error) error {
	var fresh func() (relayRec, error)
	if create {
		fresh = func() (relayRec, error) {
			gen, err := qrauth.RandomToken(h.cfg.Rand, 8)
			return relayRec{Gen: gen}, err
		}
	}
	return updateJSON(ctx, h.shared, roomKey(id), h.cfg.RoomTTL+sharedMargin, fresh, create, fn)
}

func (h *hub) loadRelay(ctx context.Context, id string) (*relayRec, error) {
	v, _, err := h.shared.Load(ctx, roomKey(id))
	if err != nil {
		return nil, err
	}
	var rec relayRec
	if err := json.Unmarshal(v, &rec); err != nil {
		return nil, fmt.Errorf("room record: %w", err)
	}
	return &rec, nil
}

func (h *hub) hint(ctx context.Context, id string) {
	// The topic names the sender, which skips its own hints: an instance
	// never holds both a room and a relay to it, so what it wrote itself
	// is nothing it must re-read.
	if err := h.shared.Publish(ctx, roomKey(id)+"@"+h.cfg.InstanceID); err != nil {
		// The other side re-reads on its own within RoomRecheck.
		h.log.Warn("cluster: hint not sent", slog.Any("err", err))
	}
}

// remoteRoom is, on the instance holding a room, the phones of other
// instances that joined it.
type remoteRoom struct {
	r *room

	pumpMu  sync.Mutex  // one pump at a time, in record order
	waiting atomic.Bool // a pump waits for pumpMu
	gen     string      // the Gen of the record seen, "" before any
	seen    int         // the last In handled
	apps    map[string]*remoteApp

	mu       sync.Mutex
	outGen   string     // the Gen of the record the answers are for
	out      []relayOut // answers not yet in the record
	done     int        // the last In handled, to write
	written  int        // the last Done written
	flushing bool
	pumping  bool // a pump is handing frames to the room: flush once, after
}

// remoteOf returns the room's remoteRoom, made on first use.
func (r *room) remoteOf() *remoteRoom {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.remote == nil {
		r.remote = &remoteRoom{r: r, apps: make(map[string]*remoteApp)}
		r.h.mu.Lock()
		if _, open := r.h.rooms[r.id]; open {
			r.h.remotes[r] = r.remote
		}
		r.h.mu.Unlock()
	}
	return r.remote
}

// pump hands the room the frames its remote phones sent since the last
// pump. A record that is gone (Redis restarted, or the room outlived it)
// means its phones are gone too.
func (rr *remoteRoom) pump() {
	// One pump waiting is enough: it reads the record after whatever write
	// woke the others. Without this, pumps pile up behind a Redis that
	// hangs, one per hint and re-check.
	if !rr.waiting.CompareAndSwap(false, true) {
		return
	}
	rr.pumpMu.Lock()
	rr.waiting.Store(false)
	defer rr.pumpMu.Unlock()
	h := rr.r.h
	ctx, cancel := sharedCtx()
	defer cancel()
	// What the room answers while the pump runs goes into the record in
	// one write with the pump's progress, not one write per message.
	rr.mu.Lock()
	rr.pumping = true
	rr.mu.Unlock()
	defer func() {
		rr.mu.Lock()
		rr.pumping = false
		rr.done = rr.seen
		rr.kickLocked()
		rr.mu.Unlock()
	}()
	rec, err := h.loadRelay(ctx, rr.r.id)
	if errors.Is(err, shared.ErrNotFound) {
		rr.resetLocked("")
		return
	}
	if err != nil {
		h.log.Warn("cluster: room record not read", slog.Any("err", err))
		return
	}
	if rec.Gen != rr.gen {
		// A new record: the old one's phones are gone, and its entries
		// are numbered afresh.
		rr.resetLocked(rec.Gen)
	}
	for _, in := range rec.In {
		if in.Seq <= rr.seen {
			continue
		}
		rr.seen = in.Seq
		rr.handle(ctx, in)
	}
}

// resetLocked forgets the record seen so far, and the phones that came
// through it, which the room treats as gone. Called with pumpMu held.
func (rr *remoteRoom) resetLocked(gen string) {
	for id, app := range rr.apps {
		rr.r.appGone(app)
		delete(rr.apps, id)
	}
	rr.gen, rr.seen = gen, 0
	rr.mu.Lock()
	rr.outGen, rr.out, rr.done, rr.written = gen, nil, 0, 0
	rr.mu.Unlock()
}

func (rr *remoteRoom) handle(ctx context.Context, in relayIn) {
	r := rr.r
	app := rr.apps[in.App]
	switch in.Kind {
	case inJoin:
		if app != nil {
			return
		}
		app = &remoteApp{rr: rr, id: in.App}
		rr.apps[in.App] = app
		f, err := wire.DecodeAppFrame(in.Data)
		if err != nil || len(in.PSK) != 32 {
			app.closeErr(errPSKUnknown)
			return
		}
		r.join(ctx, app, in.IP, f, [32]byte(in.PSK))
	case inFrame:
		if app == nil {
			return
		}
		f, err := wire.DecodeAppFrame(in.Data)
		if err != nil {
			app.closeErr(err)
			return
		}
		r.appFrame(ctx, app, f)
	case inGone:
		if app != nil {
			r.appGone(app)
			delete(rr.apps, in.App)
		}
	}
}

// kickLocked starts a flush unless one runs. Called with rr.mu held.
func (rr *remoteRoom) kickLocked() {
	if rr.flushing || rr.pumping || (len(rr.out) == 0 && rr.done == rr.written) {
		return
	}
	rr.flushing = true
	rr.r.h.bg.Go(rr.flush)
}

// flush writes the room's answers and progress into the record, then
// hints the phones' instances.
func (rr *remoteRoom) flush() {
	h := rr.r.h
	for {
		rr.mu.Lock()
		// One look: answers, progress and the record they belong to.
		out, done, gen := rr.out, rr.done, rr.outGen
		rr.out = nil
		if len(out) == 0 && done == rr.written {
			rr.flushing = false
			rr.mu.Unlock()
			return
		}
		rr.mu.Unlock()
		ctx, cancel := sharedCtx()
		err := h.updateRelay(ctx, rr.r.id, false, func(rec *relayRec) error {
			if rec.Gen != gen {
				return errRecordReplaced // answers to phones of a lost record
			}
			for _, o := range out {
				o.Seq = len(rec.Out) + 1
				rec.Out = append(rec.Out, o)
			}
			rec.Done = max(rec.Done, done)
			return nil
		})
		switch {
		case err == nil:
			h.hint(ctx, rr.r.id)
		case errors.Is(err, shared.ErrNotFound), errors.Is(err, errRecordReplaced):
			// The record is gone (expired, or Redis restarted), or made
			// again by a later phone: the phone's instance finds that
			// out itself.
		default:
			// The phone's instance finds the record or its owner gone
			// and tells the phone; nothing here can do better.
			h.log.Warn("cluster: room answer not written", slog.Any("err", err))
		}
		cancel()
		rr.mu.Lock()
		rr.written = done
		rr.mu.Unlock()
	}
}

// remoteApp is a phone on another instance, as its room sees it: what the
// room would send the socket goes into the record instead.
type remoteApp struct {
	rr     *remoteRoom
	id     string
	closed bool // under rr.mu
}

func (p *remoteApp) put(o relayOut) bool {
	p.rr.mu.Lock()
	defer p.rr.mu.Unlock()
	if p.closed {
		return false
	}
	if o.Close != 0 {
		p.closed = true
	}
	o.App = p.id
	p.rr.out = append(p.rr.out, o)
	p.rr.kickLocked()
	return true
}

func (p *remoteApp) sendMsg(m *wire.ServerMessage) bool {
	data, err := json.Marshal(m)
	if err != nil {
		return false
	}
	return p.put(relayOut{Msg: data})
}

func (p *remoteApp) closeWith(code int, text string) { p.put(relayOut{Close: code, Text: text}) }

func (p *remoteApp) closeErr(err error) {
	p.rr.r.h.cfg.Metrics.Refused(qrauth.ErrorCode(err), qrauth.ErrorReason(err))
	p.sendMsg(wire.ErrorMessageFor(err))
	p.closeWith(wire.CloseCode(qrauth.ErrorCode(err)), qrauth.ErrorReason(err))
}

// relay is, on the phone's instance, a phone socket that joined a room
// held by another instance.
type relay struct {
	h     *hub
	room  string
	owner string
	id    string
	cn    *conn

	mu   sync.Mutex
	gen  string // the Gen of the record its join went into
	sent int    // the Seq of the last frame this relay put in the record
	// aliveMisses counts the re-checks in a row that found the owner's
	// alive key gone.
	aliveMisses int
	seen        int // the last Out handled
	done        bool
}

// startRelay puts the phone's join into the room's record; nil if it
// could not (the phone has been told).
func (h *hub) startRelay(ctx context.Context, cn *conn, owner, roomID, ip string, sum [32]byte, join []byte) *relay {
	id, err := qrauth.RandomToken(h.cfg.Rand, 8)
	if err != nil {
		cn.closeErr(qrauth.Internal(err))
		return nil
	}
	rl := &relay{h: h, room: roomID, owner: owner, id: id, cn: cn}
	h.mu.Lock()
	if h.relays[roomID] == nil {
		h.relays[roomID] = make(map[*relay]struct{})
	}
	h.relays[roomID][rl] = struct{}{}
	h.mu.Unlock()
	if err := rl.put(ctx, relayIn{Kind: inJoin, Data: join, IP: ip, PSK: sum[:]}); err != nil {
		rl.finish(func() { cn.closeErr(sharedErr("room record", err)) })
		return nil
	}
	// Until the room's instance has seen the join it re-checks nothing of
	// this room; its inbox, which it reads every RoomRecheck, names the
	// room in case the hint is lost.
	// Off the join's path: the hint just sent is the quick way.
	h.bg.Go(func() {
		ctx, cancel := sharedCtx()
		defer cancel()
		err := h.updateList(ctx, inboxKey(owner), func(ids []string) []string { return append(ids, roomID) })
		if err != nil {
			h.log.Warn("cluster: inbox not written", slog.Any("err", err))
		}
	})
	return rl
}

// updateList changes a versioned list of strings (updateJSON); a missing
// list is an empty one.
func (h *hub) updateList(ctx context.Context, key string, fn func([]string) []string) error {
	empty := func() ([]string, error) { return nil, nil }
	return updateJSON(ctx, h.shared, key, h.cfg.RoomTTL+sharedMargin, empty, false, func(ids *[]string) error {
		*ids = fn(*ids)
		return nil
	})
}

// readInbox pumps the rooms that phones of other instances joined, as
// named in this instance's inbox, and empties it.
func (h *hub) readInbox(ctx context.Context) {
	key := inboxKey(h.cfg.InstanceID)
	v, _, err := h.shared.Load(ctx, key)
	if err != nil {
		return // none (the usual case), or the re-check after next
	}
	var ids []string
	_ = json.Unmarshal(v, &ids)
	if len(ids) == 0 {
		return
	}
	done := make(map[string]bool, len(ids))
	for _, id := range ids {
		done[id] = true
		h.mu.Lock()
		r := h.rooms[id]
		h.mu.Unlock()
		if r != nil {
			h.bg.Go(r.remoteOf().pump)
		}
	}
	_ = h.updateList(ctx, key, func(ids []string) []string {
		keep := ids[:0]
		for _, id := range ids {
			if !done[id] {
				keep = append(keep, id)
			}
		}
		return keep
	})
}

// put appends one of the phone's frames to the record and hints the
// room's instance.
func (rl *relay) put(ctx context.Context, in relayIn) error {
	in.App = rl.id
	var seq int
	var gen string
	rl.mu.Lock()
	want := rl.gen
	rl.mu.Unlock()
	err := rl.h.updateRelay(ctx, rl.room, in.Kind == inJoin, func(rec *relayRec) error {
		if in.Kind != inJoin && rec.Gen != want {
			return errRecordReplaced // lost and made again by another phone
		}
		if rec.Owner == "" {
			rec.Owner = rl.owner
		}
		in.Seq = len(rec.In) + 1
		seq, gen = in.Seq, rec.Gen
		rec.In = append(rec.In, in)
		return nil
	})
	if err != nil {
		return err
	}
	rl.mu.Lock()
	if in.Kind == inJoin {
		rl.gen = gen
	}
	rl.sent = max(rl.sent, seq)
	rl.mu.Unlock()
	rl.h.hint(ctx, rl.room)
	return nil
}

// forward relays a frame the phone sent after its join.
func (rl *relay) forward(ctx context.Context, data []byte) {
	if err := rl.put(ctx, relayIn{Kind: inFrame, Data: data}); err != nil {
		if errors.Is(err, shared.ErrNotFound) || errors.Is(err, errRecordReplaced) {
			rl.finish(func() { rl.cn.closeErr(errRoomGone) })
			return
		}
		rl.finish(func() { rl.cn.closeErr(sharedErr("room record", err)) })
	}
}

// gone tells the room the phone's socket closed.
func (rl *relay) gone() {
	rl.mu.Lock()
	done := rl.done
	rl.mu.Unlock()
	if !done {
		ctx, cancel := sharedCtx()
		defer cancel()
		_ = rl.put(ctx, relayIn{Kind: inGone})
	}
	rl.finish(func() {})
}

// finish ends the relay once: then (the last words to the phone) runs,
// and the hub forgets it.
func (rl *relay) finish(then func()) {
	rl.mu.Lock()
	if rl.done {
		rl.mu.Unlock()
		return
	}
	rl.done = true
	rl.mu.Unlock()
	then()
	h := rl.h
	h.mu.Lock()
	delete(h.relays[rl.room], rl)
	if len(h.relays[rl.room]) == 0 {
		delete(h.relays, rl.room)
	}
	h.mu.Unlock()
}

// pump sends the phone what its room answered since the last pump. On the
// slow re-check (rehint) it also re-sends the hint while the room has not
// handled the phone's last frame, and ends the relay when the room's
// instance is gone.
func (rl *relay) pump(rehint bool) {
	ctx, cancel := sharedCtx()
	defer cancel()
	h := rl.h
	if rehint {
		// Gone only when missed twice in a row: right after Redis
		// restarts, a living instance has not yet written its key again
		// (it does at its next re-check).
		_, _, err := h.shared.Load(ctx, aliveKey(rl.owner))
		rl.mu.Lock()
		if errors.Is(err, shared.ErrNotFound) {
			rl.aliveMisses++
		} else if err == nil {
			rl.aliveMisses = 0
		}
		gone := rl.aliveMisses >= 2
		rl.mu.Unlock()
		if gone {
			rl.finish(func() { rl.cn.closeErr(errRoomGone) })
			return
		}
	}
	rl.mu.Lock()
	defer rl.mu.Unlock()
	if rl.done || rl.gen == "" {
		// Nothing to read before the join is in the record (the record
		// may not even exist yet).
		return
	}
	rec, err := h.loadRelay(ctx, rl.room)
	if errors.Is(err, shared.ErrNotFound) || (err == nil && rec.Gen != rl.gen) {
		rl.mu.Unlock()
		rl.finish(func() { rl.cn.closeErr(errRoomGone) })
		rl.mu.Lock()
		return
	}
	if err != nil {
		h.log.Warn("cluster: room record not read", slog.Any("err", err))
		return
	}
	closed := false
	for _, o := range rec.Out {
		if o.Seq <= rl.seen {
			continue
		}
		rl.seen = o.Seq
		if o.App != rl.id || closed {
			continue
		}
		if o.Msg != nil {
			rl.cn.enqueue(outFrame{data: o.Msg})
		}
		if o.Close != 0 {
			rl.cn.closeWith(o.Close, o.Text)
			closed = true
		}
	}
	if closed {
		rl.mu.Unlock()
		rl.finish(func() {})
		rl.mu.Lock()
		return
	}
	if rehint && rec.Done < rl.sent {
		h.hint(ctx, rl.room)
	}
}

// runCluster keeps this instance's part of the cluster going until stop:
// it listens for hints, keeps its alive key fresh and re-checks the rooms
// that span two instances every RoomRecheck. After stop it returns once
// nothing of it uses the shared state any more.
func (h *hub) runCluster(stop <-chan struct{}) {
	ctx, cancel := context.WithCancel(context.Background())
	go func() { <-stop; cancel() }()
	subscribed := make(chan struct{})
	go func() {
		defer close(subscribed)
		for ctx.Err() == nil {
			err := h.shared.Subscribe(ctx, func(topic string) {
				id, ok := strings.CutPrefix(topic, "room:")
				id, from, _ := strings.Cut(id, "@")
				if ok && from != h.cfg.InstanceID {
					h.onHint(id, false)
				}
			})
			if err == nil || errors.Is(err, shared.ErrClosed) || ctx.Err() != nil {
				return
			}
			// Redis restarting: the re-check below covers the gap.
			h.log.Warn("cluster: hints lost, subscribing again", slog.Any("err", err))
			select {
			case <-ctx.Done():
				return
			case <-time.After(h.cfg.RoomRecheck):
			}
		}
	}()
	t := time.NewTicker(h.cfg.RoomRecheck)
	defer t.Stop()
	h.keepAlive(ctx)
	for {
		select {
		case <-ctx.Done():
			// First what the rooms' ends owe the shared state (their
			// phones' goodbyes, written by flushes): the caller closes the
			// store once this returns. No hint starts a pump after the
			// subscription has ended, nor a re-check after this loop.
			<-subscribed
			h.bg.Wait()
			// Gone on purpose: the phones relayed to this instance's rooms
			// are told at once, not when the key would have expired.
			dctx, dcancel := sharedCtx()
			_ = h.shared.Delete(dctx, aliveKey(h.cfg.InstanceID))
			dcancel()
			return
		case <-t.C:
			h.keepAlive(ctx)
			h.readInbox(ctx)
			h.recheck()
		}
	}
}

// keepAlive refreshes this instance's alive key; it lives three re-check
// periods, so one slow round does not declare the instance dead.
func (h *hub) keepAlive(ctx context.Context) {
	ttl := 3*h.cfg.RoomRecheck + sharedMargin
	key := aliveKey(h.cfg.InstanceID)
	_, ver, err := h.shared.Load(ctx, key)
	switch {
	case errors.Is(err, shared.ErrNotFound):
		err = h.shared.Create(ctx, key, []byte("1"), ttl)
	case err == nil:
		_, err = h.shared.Swap(ctx, key, ver, []byte("1"), ttl)
	}
	if err != nil && ctx.Err() == nil && !errors.Is(err, shared.ErrConflict) {
		h.log.Warn("cluster: alive key not refreshed", slog.Any("err", err))
	}
}

// onHint re-reads the record of room id for whoever here cares.
func (h *hub) onHint(id string, rehint bool) {
	h.mu.Lock()
	r := h.rooms[id]
	rls := make([]*relay, 0, len(h.relays[id]))
	for rl := range h.relays[id] {
		rls = append(rls, rl)
	}
	h.mu.Unlock()
	if r != nil {
		h.bg.Go(r.remoteOf().pump)
	}
	for _, rl := range rls {
		h.bg.Go(func() { rl.pump(rehint) })
	}
}

// recheck re-reads every record this instance takes part in: the rooms
// here that a remote phone joined, and the relays of its phones.
func (h *hub) recheck() {
	h.mu.Lock()
	rrs := make([]*remoteRoom, 0, len(h.remotes))
	for _, rr := range h.remotes {
		rrs = append(rrs, rr)
	}
	var rls []*relay
	for _, m := range h.relays {
		for rl := range m {
			rls = append(rls, rl)
		}
	}
	h.mu.Unlock()
	for _, rr := range rrs {
		h.bg.Go(rr.pump)
	}
	for _, rl := range rls {
		h.bg.Go(func() { rl.pump(true) })
	}
}
