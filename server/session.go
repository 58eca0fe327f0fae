package server

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/qrauth/qrauth"
	"github.com/qrauth/qrauth/wire"
)

// TicketRequest is the body of POST /api/session.
type TicketRequest struct {
	Ticket string `json:"ticket"`
}

// DecodeTicketRequest parses the ticket exchange body strictly: one JSON
// object with one field holding a 43-character base64url ticket.
func DecodeTicketRequest(data []byte) (*TicketRequest, error) {
	var t TicketRequest
	if err := DecodeStrict(data, &t); err != nil {
		return nil, MalformedBody(err, `The body must be JSON: {"ticket": "..."}.`)
	}
	if len(t.Ticket) != 43 || !qrauth.ValidToken(t.Ticket, 0, len(t.Ticket)) {
		return nil, qrauth.Errorf(qrauth.EINVALID, "malformed_ticket", "The ticket is malformed.")
	}
	return &t, nil
}

// DecodeStrict decodes exactly one JSON value with no unknown fields.
// Text that is not valid UTF-8 is refused with wire.ErrInvalidUTF8
// rather than stored with U+FFFD in place of the bad bytes.
func DecodeStrict(data []byte, v any) error {
	if err := wire.CheckJSONText(data); err != nil {
		return err
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return err
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return errors.New("trailing data")
	}
	return nil
}

// MalformedBody is the refusal of a body decodeStrict could not decode:
// invalid UTF-8 keeps its own reason, anything else is malformed_body with
// msg describing the expected shape.
func MalformedBody(err error, msg string) error {
	if err == wire.ErrInvalidUTF8 {
		return err
	}
	return qrauth.Errorf(qrauth.EINVALID, "malformed_body", "%s", msg)
}

// userView is what the browser learns about its account.
type userView struct {
	ID        qrauth.UserID `json:"id"`
	Name      string        `json:"name"`
	Email     string        `json:"email"`
	CreatedAt time.Time     `json:"created_at"`
}

// ViewUser is a user as the browser's API shows it.
func ViewUser(u *qrauth.User) any { return viewUser(u) }

func viewUser(u *qrauth.User) userView {
	return userView{ID: u.ID, Name: u.Name, Email: u.Email, CreatedAt: u.CreatedAt}
}

func ReadBody(c echo.Context) ([]byte, error) {
	b, err := io.ReadAll(c.Request().Body)
	if err != nil {
		return nil, qrauth.Errorf(qrauth.EINVALID, "body_too_large", "The request body is too large.")
	}
	return b, nil
}

// handleCreateSession exchanges a ticket for a session cookie.
func (s *Server) handleCreateSession(c echo.Context) error {
	body, err := ReadBody(c)
	if err != nil {
		return err
	}
	req, err := DecodeTicketRequest(body)
	if err != nil {
		return err
	}
	// Checked before the ticket is touched: a missing, empty or forged
	// cookie must not burn it.
	bind, err := s.bindValue(c)
	if err != nil {
		return err
	}
	start := time.Now()
	defer func() { s.cfg.Metrics.TicketExchange(time.Since(start)) }()
	t, err := s.hub.redeemTicket(req.Ticket, bind)
	if err != nil {
		s.cfg.Metrics.SignIn(MethodQR, ResultRefused)
		return err
	}
	return s.continueSignIn(c, &SignIn{
		UserID: t.userID, DeviceID: t.deviceID, IP: t.ip, UserAgent: t.userAgent, Methods: []string{MethodQR},
		scanned: t.scanned,
	})
}

var errSignedOut = qrauth.Errorf(qrauth.EUNAUTHORIZED, "not_signed_in", "You are not signed in.")

// authenticate returns the session and user of the request's session cookie.
func (s *Server) authenticate(c echo.Context) (*qrauth.Session, *qrauth.User, error) {
	ck, err := c.Cookie(sessionCookie)
	if err != nil || ck.Value == "" {
		return nil, nil, errSignedOut
	}
	ctx := c.Request().Context()
	sess, err := s.store.FindSessionByTokenHash(ctx, qrauth.HashToken(ck.Value))
	if qrauth.ErrorCode(err) == qrauth.ENOTFOUND {
		return nil, nil, errSignedOut
	} else if err != nil {
		return nil, nil, err
	}
	now := s.cfg.Now()
	if sess.Expired(now) {
		return nil, nil, qrauth.Errorf(qrauth.EUNAUTHORIZED, "session_expired", "Your session has expired. Please sign in again.")
	}
	u, err := s.store.FindUserByID(ctx, sess.UserID)
	if err != nil {
		return nil, nil, err
	}
	// Disabling an account ends its sessions in the same transaction;
	// this guards against a session that slipped through anyway. It
	// answers like an ended session, so that pages, forward auth and
	// OpenID Connect send the browser to sign in, where the refusal is
	// explained.
	if u.CheckEnabled() != nil {
		return nil, nil, errSignedOut
	}
	// A write per request would be wasteful; a minute's precision is enough
	// for "last seen".
	if now.Sub(sess.LastSeenAt) > time.Minute {
		if err := s.store.TouchSession(ctx, sess.ID, now); err == nil {
			sess.LastSeenAt = now
		}
	}
	return sess, u, nil
}

func (s *Server) handleMe(c echo.Context) error {
	sess, u, err := s.authenticate(c)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, map[string]any{"user": viewUser(u), "session_id": sess.ID})
}

func (s *Server) handleUpdateProfile(c echo.Context) error {
	_, u, err := s.authenticate(c)
	if err != nil {
		return err
	}
	body, err := ReadBody(c)
	if err != nil {
		return err
	}
	var p qrauth.Profile
	if err := DecodeStrict(body, &p); err != nil {
		return MalformedBody(err, `The body must be JSON: {"name": "...", "email": "..."}.`)
	}
	if err := p.Normalize(); err != nil {
		return err
	}
	u, err = s.store.UpdateProfile(c.Request().Context(), u.ID, p, &qrauth.AuditEvent{
		Time: s.cfg.Now(), Type: qrauth.AuditProfile, UserID: u.ID, IP: c.RealIP(),
	})
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, map[string]any{"user": viewUser(u)})
}

// clearSessionCookie ends the session cookie: the one on the cookie
// domain, when configured, and the host-only one.
func (s *Server) clearSessionCookie(c echo.Context) {
	if s.cfg.CookieDomain != "" {
		c.SetCookie(&http.Cookie{Name: sessionCookie, Value: "", Path: "/", Domain: s.cfg.CookieDomain, HttpOnly: true,
			Secure: s.cfg.secure(), SameSite: http.SameSiteLaxMode, MaxAge: -1})
	}
	s.clearHostOnlySessionCookie(c)
}

func (s *Server) clearHostOnlySessionCookie(c echo.Context) {
	c.SetCookie(&http.Cookie{Name: sessionCookie, Value: "", Path: "/", HttpOnly: true, Secure: s.cfg.secure(),
		SameSite: http.SameSiteLaxMode, MaxAge: -1})
}

func (s *Server) handleLogout(c echo.Context) error {
	if err := s.endSession(c); err != nil {
		return err
	}
	return c.NoContent(http.StatusNoContent)
}

// endSession ends the browser's session, if any, and clears its cookies.
func (s *Server) endSession(c echo.Context) error {
	s.dropPending(c)
	sess, _, err := s.authenticate(c)
	if qrauth.ErrorCode(err) == qrauth.EUNAUTHORIZED {
		s.clearSessionCookie(c)
		return nil
	} else if err != nil {
		return err
	}
	if err := s.store.DeleteSession(c.Request().Context(), sess.ID, &qrauth.AuditEvent{
		Time: s.cfg.Now(), Type: qrauth.AuditSignOut, UserID: sess.UserID, SessionID: sess.ID, IP: c.RealIP(),
	}); err != nil && qrauth.ErrorCode(err) != qrauth.ENOTFOUND {
		return err
	}
	s.clearSessionCookie(c)
	return nil
}

// listSessions returns the user's live sessions, marking current.
func (s *Server) listSessions(ctx context.Context, uid qrauth.UserID, current qrauth.SessionID) ([]wire.SessionInfo, error) {
	list, err := s.store.FindSessionsByUser(ctx, uid)
	if err != nil {
		return nil, err
	}
	now := s.cfg.Now()
	out := make([]wire.SessionInfo, 0, len(list))
	for _, x := range list {
		if x.Expired(now) {
			continue
		}
		b, o := parseUserAgent(x.UserAgent)
		out = append(out, wire.SessionInfo{ID: x.ID, IP: x.IP, Browser: b, OS: o, UserAgent: x.UserAgent,
			CreatedAt: x.CreatedAt, LastSeenAt: x.LastSeenAt, ExpiresAt: x.ExpiresAt, Current: x.ID == current})
	}
	return out, nil
}

// revokeSession ends one of the user's sessions. Someone else's session
// id gives the same answer as an unknown one.
func (s *Server) revokeSession(ctx context.Context, uid qrauth.UserID, id qrauth.SessionID, ev *qrauth.AuditEvent) error {
	notFound := qrauth.Errorf(qrauth.ENOTFOUND, "session_not_found", "There is no such session.")
	x, err := s.store.FindSessionByID(ctx, id)
	if qrauth.ErrorCode(err) == qrauth.ENOTFOUND || (err == nil && x.UserID != uid) {
		return notFound
	} else if err != nil {
		return err
	}
	ev.Time, ev.Type, ev.UserID, ev.SessionID = s.cfg.Now(), qrauth.AuditRevoked, uid, id
	if err := s.store.DeleteSession(ctx, id, ev); qrauth.ErrorCode(err) == qrauth.ENOTFOUND {
		return notFound
	} else if err != nil {
		return err
	}
	return nil
}

func (s *Server) handleListSessions(c echo.Context) error {
	sess, u, err := s.authenticate(c)
	if err != nil {
		return err
	}
	list, err := s.listSessions(c.Request().Context(), u.ID, sess.ID)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, map[string]any{"sessions": list})
}

func (s *Server) handleDeleteSession(c echo.Context) error {
	sess, u, err := s.authenticate(c)
	if err != nil {
		return err
	}
	id := qrauth.SessionID(c.Param("id"))
	if err := s.revokeSession(c.Request().Context(), u.ID, id, &qrauth.AuditEvent{
		IP: c.RealIP(), Detail: "from browser session " + string(sess.ID),
	}); err != nil {
		return err
	}
	if id == sess.ID {
		s.clearSessionCookie(c)
	}
	return c.NoContent(http.StatusNoContent)
}

type deviceView struct {
	ID         qrauth.DeviceID `json:"id"`
	Name       string          `json:"name"`
	CreatedAt  time.Time       `json:"created_at"`
	LastSeenAt time.Time       `json:"last_seen_at"`
}

func (s *Server) handleListDevices(c echo.Context) error {
	_, u, err := s.authenticate(c)
	if err != nil {
		return err
	}
	return s.listDevices(c, u.ID)
}

// listDevices answers with the phones of an account, oldest first: for
// the account page and, device-signed, for the phone web app.
func (s *Server) listDevices(c echo.Context, uid qrauth.UserID) error {
	list, err := s.store.FindDevicesByUser(c.Request().Context(), uid)
	if err != nil {
		return err
	}
	out := make([]deviceView, 0, len(list))
	for _, d := range list {
		out = append(out, deviceView{ID: d.ID, Name: d.Name, CreatedAt: d.CreatedAt, LastSeenAt: d.LastSeenAt})
	}
	return c.JSON(http.StatusOK, map[string]any{"devices": out})
}

// handleDeleteDevice removes one of the user's phones, say a lost one: its
// key signs nothing in from now on.
func (s *Server) handleDeleteDevice(c echo.Context) error {
	sess, u, err := s.authenticate(c)
	if err != nil {
		return err
	}
	ctx := c.Request().Context()
	id := qrauth.DeviceID(c.Param("id"))
	d, err := s.store.FindDeviceByID(ctx, id)
	if qrauth.ErrorCode(err) == qrauth.ENOTFOUND || (err == nil && d.UserID != u.ID) {
		return qrauth.Errorf(qrauth.ENOTFOUND, "device_not_found", "There is no such phone on your account.")
	} else if err != nil {
		return err
	}
	if err := s.store.DeleteDevice(ctx, id, &qrauth.AuditEvent{
		Time: s.cfg.Now(), Type: qrauth.AuditDeviceRemoved, UserID: u.ID, DeviceID: id, SessionID: sess.ID,
		IP: c.RealIP(), Detail: "removed " + d.Name + " from browser session " + string(sess.ID),
	}); err != nil {
		return err
	}
	return c.NoContent(http.StatusNoContent)
}
