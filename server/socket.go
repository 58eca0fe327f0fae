package server

import (
	"context"
	"log/slog"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/gorilla/websocket"
	"github.com/labstack/echo/v4"
	"github.com/qrauth/qrauth"
	"github.com/qrauth/qrauth/wire"
)

// storeTimeout bounds the store calls a socket message triggers.
const storeTimeout = 10 * time.Second

// RateLimited answers 429 with Retry-After in whole seconds.
func RateLimited(c echo.Context, wait time.Duration, reason, msg string) error {
	c.Response().Header().Set("Retry-After", strconv.Itoa(max(1, ceilSeconds(wait))))
	return qrauth.Errorf(qrauth.ERATELIMITED, reason, "%s", msg)
}

// upgrade switches to WebSocket and starts the write pump; role (RoleBrowser,
// RolePhone) counts the socket in the metrics while it is open. The caller must
// not touch c afterwards: echo reuses it once the handler returns, and
// returning early frees net/http's buffers for the life of the socket.
func (s *Server) upgrade(c echo.Context, role string) (*conn, error) {
	// Counted before the hijack: http.Server.Shutdown waits for this
	// request until then, so shutdown's Wait can never start before this
	// Add (a WaitGroup must not grow from zero while being waited on).
	s.conns.Add(1)
	ws, err := s.upgrader.Upgrade(c.Response(), c.Request(), nil)
	if err != nil {
		// The upgrader has already answered the client.
		s.conns.Done()
		return nil, nil
	}
	var cn *conn
	s.cfg.Metrics.SocketsOpen(role, 1)
	cn = newConn(ws, func() {
		s.hub.untrack(cn)
		s.cfg.Metrics.SocketsOpen(role, -1)
		s.conns.Done()
	})
	cn.log, cn.metrics = s.log, s.cfg.Metrics
	if !s.hub.track(cn) {
		// Shutdown began while this socket was being upgraded.
		cn.sendMsg(&wire.ServerMessage{Type: wire.MsgReconnect})
		cn.closeWith(closeRestart, "server restart")
	}
	return cn, nil
}

const (
	errTooManyCodes = "Too many new codes from this address. Wait a moment and try again."
	errTooManyRooms = "Too many people are signing in right now. Please try again in a moment."
)

var errNoBindCookie = qrauth.Errorf(qrauth.EUNAUTHORIZED, "no_bind_cookie", "Reload the sign-in page: this browser has no sign-in cookie.")

// probeBrowserSocket answers a plain GET of the socket path with the reason
// an upgrade would be refused. Browsers hide a failed handshake's status
// from the page, so the page asks this way; it takes no token.
func (s *Server) probeBrowserSocket(c echo.Context) error {
	if ok, wait := s.rooms.Peek(c.RealIP(), s.cfg.Now()); !ok {
		return RateLimited(c, wait, "rate_limited", errTooManyCodes)
	}
	if s.hub.roomCount() >= s.cfg.MaxRooms {
		return RateLimited(c, 5*time.Second, "too_many_rooms", errTooManyRooms)
	}
	if _, err := s.bindValue(c); err != nil {
		return err
	}
	return qrauth.Errorf(qrauth.EINVALID, "not_websocket", "This endpoint speaks WebSocket only.")
}

// handleBrowserSocket opens a room for the login page (or, with
// ?mode=link, for a signed-in account page adding a phone).
func (s *Server) handleBrowserSocket(c echo.Context) error {
	req := c.Request()
	if !websocket.IsWebSocketUpgrade(req) {
		return s.probeBrowserSocket(c)
	}
	if req.Header.Get("Origin") != s.cfg.Origin {
		return errBadOrigin
	}
	bind, err := s.bindValue(c)
	if err != nil {
		return err
	}
	var linkUser *qrauth.User
	var linkSession qrauth.SessionID
	switch mode := c.QueryParam("mode"); mode {
	case "", wire.ModeLogin:
	case wire.ModeLink:
		sess, u, err := s.authenticate(c)
		if err != nil {
			return err
		}
		linkUser, linkSession = u, sess.ID
	default:
		return qrauth.Errorf(qrauth.EINVALID, "invalid_mode", "Unknown mode %q.", mode)
	}
	ip := c.RealIP()
	now := s.cfg.Now()
	if ok, wait := s.rooms.Allow(ip, now); !ok {
		return RateLimited(c, wait, "rate_limited", errTooManyCodes)
	}
	if s.hub.roomCount() >= s.cfg.MaxRooms {
		return RateLimited(c, 5*time.Second, "too_many_rooms", errTooManyRooms)
	}
	// A copy: the original would keep the whole request's headers alive
	// for the life of the room.
	ua := strings.Clone(req.UserAgent())
	if len(ua) > 512 {
		ua = ua[:512]
	}
	browser, osName := parseUserAgent(ua)
	bctx := wire.BrowserContext{
		IP: ip, Place: s.cfg.Locator.Place(ip), Browser: browser, OS: osName,
		UserAgent: ua, Origin: s.cfg.Origin, Time: now.UTC(),
	}
	bindHash := qrauth.HashToken(bind)
	var site string
	if linkUser == nil {
		site = s.siteName(c)
	}

	cn, err := s.upgrade(c, RoleBrowser)
	if cn == nil {
		return err
	}
	r, err := s.hub.openRoom(cn, bindHash, bctx, site, linkUser, linkSession)
	if qrauth.ErrorReason(err) == "shutting_down" {
		cn.sendMsg(&wire.ServerMessage{Type: wire.MsgReconnect})
		cn.closeWith(closeRestart, "server restart")
		go cn.readPump(pongWait, func([]byte) {}, func() {})
		return nil
	} else if err != nil {
		cn.closeErr(err)
		go cn.readPump(pongWait, func([]byte) {}, func() {})
		return nil
	}
	go cn.readPump(pongWait, func(data []byte) {
		f, err := wire.DecodeBrowserFrame(data)
		// Every refused frame, an invalid sign-up form included, closes the
		// socket with 4400 (docs/protocol.md §6.3): the page checks the
		// form before sending, so a refusal here is a client's bug.
		if err != nil {
			cn.closeErr(err)
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), storeTimeout)
		defer cancel()
		r.profile(ctx, cn, qrauth.Profile{Name: f.Name, Email: f.Email})
	}, r.browserGone)
	return nil
}

// siteName asks the flows which relying site the browser signs in for
// (see SiteNamer): the first name given, cut to wire.MaxSiteName bytes so
// that the challenge stays small, or "".
func (s *Server) siteName(c echo.Context) string {
	for _, f := range s.flows {
		sn, ok := f.(SiteNamer)
		if !ok {
			continue
		}
		if name := sn.SiteName(c); name != "" {
			if len(name) > wire.MaxSiteName {
				n := wire.MaxSiteName
				for n > 0 && !utf8.RuneStart(name[n]) {
					n--
				}
				name = name[:n]
			}
			return name
		}
	}
	return ""
}

// handleAppSocket serves the phone app. Native apps send no Origin; a page
// of another site that tries is refused.
func (s *Server) handleAppSocket(c echo.Context) error {
	req := c.Request()
	if o := req.Header.Get("Origin"); o != "" && o != s.cfg.Origin {
		return errBadOrigin
	}
	if !websocket.IsWebSocketUpgrade(req) {
		return qrauth.Errorf(qrauth.EINVALID, "not_websocket", "This endpoint speaks WebSocket only.")
	}
	ip := c.RealIP()
	if ok, wait := s.apps.Allow(ip, s.cfg.Now()); !ok {
		return RateLimited(c, wait, "rate_limited", "Too many attempts from this address. Wait a moment and try again.")
	}
	cn, err := s.upgrade(c, RolePhone)
	if cn == nil {
		return err
	}
	var r *room
	var rl *relay // the room is on another instance (relay.go)
	go cn.readPump(joinWait, func(data []byte) {
		f, err := wire.DecodeAppFrame(data)
		if err != nil {
			cn.closeErr(err)
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), storeTimeout)
		defer cancel()
		switch {
		case rl != nil:
			rl.forward(ctx, data)
		case r == nil && f.Type == wire.MsgJoin:
			room, owner, roomID, sum, err := s.hub.takePSK(ctx, f.PSK)
			if err != nil {
				cn.closeErr(err)
				return
			}
			if room == nil {
				rl = s.hub.startRelay(ctx, cn, owner, roomID, ip, sum, data)
				return
			}
			if room.join(ctx, cn, ip, f, sum) {
				r = room
			}
		case r == nil:
			cn.closeErr(qrauth.Errorf(qrauth.EINVALID, "join_first", "Join a room before anything else."))
		default:
			r.appFrame(ctx, cn, f)
		}
	}, func() {
		if r != nil {
			r.appGone(cn)
		}
		if rl != nil {
			rl.gone()
		}
	})
	return nil
}

// track and untrack keep every socket known to the hub, so shutdown can
// reach the app sockets that have not joined a room.
// track reports false once the hub has shut down: the socket must go.
func (h *hub) track(c *conn) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.conns == nil {
		h.conns = make(map[*conn]struct{})
	}
	h.conns[c] = struct{}{}
	return !h.closed
}

func (h *hub) untrack(c *conn) {
	h.mu.Lock()
	defer h.mu.Unlock()
	delete(h.conns, c)
}

// closeAll closes every socket still open, after the rooms said goodbye.
func (h *hub) closeAll() {
	h.mu.Lock()
	conns := make([]*conn, 0, len(h.conns))
	for c := range h.conns {
		conns = append(conns, c)
	}
	h.mu.Unlock()
	for _, c := range conns {
		c.closeWith(closeRestart, "server restart")
	}
	h.log.Info("sockets told to reconnect", slog.Int("count", len(conns)))
}
