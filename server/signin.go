package server

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/qrauth/qrauth"
	"github.com/qrauth/qrauth/wire"
)

// A sign-in is one or more steps. The first (a QR scan, a badge, an
// offline code) identifies the user; gates then decide whether another
// step is required (a second factor). Until the last step passes, the
// browser holds a pending sign-in: a cookie naming a record bound to the
// browser's bind cookie, in memory or, in a cluster, in the shared store
// (signin_shared.go). Only then is a session issued.

// Sign-in methods, recorded on the audit event of the sign-in.
const (
	MethodQR = "qr"
	// MethodOATH is an accepted OATH code (server/oathflow); named here
	// because other flows read it (OpenID Connect's amr).
	MethodOATH = "oath"
	// MethodPassword is a badge holder's password (server/badgeflow).
	MethodPassword = "password"
	// MethodOffline is an accepted offline code (server/offlineflow).
	MethodOffline = "offline"
)

// pendingTTL bounds how long a browser may take for the further steps.
const pendingTTL = 5 * time.Minute

// maxPendingAttempts bounds wrong answers to one pending sign-in, on top of
// each method's own counting.
const maxPendingAttempts = 5

const pendingCookie = "qrauth_pending"

type pendingStore struct {
	mu sync.Mutex
	m  map[[32]byte]*SignIn
}

// continueSignIn is called after every passed step: it either issues the
// session or parks the sign-in and answers with the next page.
func (s *Server) continueSignIn(c echo.Context, si *SignIn) error {
	ctx := c.Request().Context()
	u, err := s.store.FindUserByID(ctx, si.UserID)
	if err != nil {
		return err
	}
	next, err := s.nextStep(ctx, u, si)
	if err != nil {
		return err
	}
	if !next.Zero() {
		if err := s.parkSignIn(c, si); err != nil {
			return err
		}
		return c.JSON(http.StatusOK, map[string]any{"next": next.Page, "methods": si.Methods})
	}
	s.dropPending(c)
	sess, err := s.issueSession(c, si)
	if err != nil {
		return err
	}
	next = Step{Page: wire.PathAccount}
	for _, f := range s.flows {
		if fin, ok := f.(Finisher); ok {
			p, err := fin.SignedIn(c, si, sess)
			if err != nil {
				return err
			}
			if p != "" && next.Page == wire.PathAccount {
				next.Page = p
			}
		}
	}
	return c.JSON(http.StatusOK, map[string]any{"user": viewUser(u), "session_id": sess.ID, "next": next.Page})
}

// nextStep runs the flows' gates in their order: the first step asked for
// wins, except that a fallback step gives way to any later gate's step.
//
// It is also where every sign-in meets the account's state: each way in
// (QR ticket, offline code, badge, OATH, the pages of the flows) passes
// here before a session is issued or a next step offered, so a disabled
// account is refused here once for all. (The store refuses the session
// too, for a sign-in that passed here just before the account was
// disabled.)
func (s *Server) nextStep(ctx context.Context, u *qrauth.User, si *SignIn) (Step, error) {
	if err := u.CheckEnabled(); err != nil {
		return Step{}, err
	}
	var fallback Step
	for _, f := range s.flows {
		st, err := f.Gate(ctx, u, si)
		if err != nil {
			return Step{}, err
		}
		switch {
		case st.Zero():
		case !st.Fallback:
			return st, nil
		case fallback.Zero():
			fallback = st
		}
	}
	return fallback, nil
}

// issueSession stores a session for si and sets its cookie.
func (s *Server) issueSession(c echo.Context, si *SignIn) (*qrauth.Session, error) {
	tok, err := qrauth.RandomToken(s.cfg.Rand, 32)
	if err != nil {
		return nil, qrauth.Internal(err)
	}
	id, err := qrauth.NewSessionID(s.cfg.Rand)
	if err != nil {
		return nil, qrauth.Internal(err)
	}
	now := s.cfg.Now()
	sess := &qrauth.Session{
		ID: id, UserID: si.UserID, TokenHash: qrauth.HashToken(tok), DeviceID: si.DeviceID,
		IP: si.IP, UserAgent: si.UserAgent, CreatedAt: now, ExpiresAt: now.Add(s.cfg.SessionTTL), LastSeenAt: now,
	}
	methods := strings.Join(si.Methods, "+")
	if err := s.store.CreateSession(c.Request().Context(), sess, &qrauth.AuditEvent{
		Time: now, Type: qrauth.AuditSignIn, UserID: si.UserID, DeviceID: si.DeviceID, SessionID: id, IP: si.IP,
		Detail: "methods " + methods,
	}); err != nil {
		s.cfg.Metrics.SignIn(methods, ResultFailed)
		return nil, err
	}
	s.cfg.Metrics.SignIn(methods, ResultOK)
	if !si.scanned.IsZero() {
		s.cfg.Metrics.ScanToSignedIn(s.cfg.Now().Sub(si.scanned))
	}
	if s.cfg.CookieDomain != "" {
		// A host-only cookie of the same name, left from before the
		// domain was configured, would be sent too and might be read
		// first.
		s.clearHostOnlySessionCookie(c)
	}
	c.SetCookie(&http.Cookie{
		Name: sessionCookie, Value: tok, Path: "/", Domain: s.cfg.CookieDomain, HttpOnly: true, Secure: s.cfg.secure(),
		SameSite: http.SameSiteLaxMode, Expires: sess.ExpiresAt, MaxAge: int(s.cfg.SessionTTL / time.Second),
	})
	return sess, nil
}

// parkSignIn keeps si for the next step under a fresh pending cookie.
func (s *Server) parkSignIn(c echo.Context, si *SignIn) error {
	bind, err := s.bindValue(c)
	if err != nil {
		return err
	}
	tok, err := qrauth.RandomToken(s.cfg.Rand, 32)
	if err != nil {
		return qrauth.Internal(err)
	}
	si.bindHash = qrauth.HashToken(bind)
	if si.expires.IsZero() {
		si.expires = s.cfg.Now().Add(pendingTTL)
	}
	s.dropPending(c)
	if s.cfg.Shared != nil {
		if err := s.parkShared(c.Request().Context(), tok, si); err != nil {
			return err
		}
	} else {
		s.pending.mu.Lock()
		if s.pending.m == nil {
			s.pending.m = make(map[[32]byte]*SignIn)
		}
		s.pending.m[sha256.Sum256([]byte(tok))] = si
		s.pending.mu.Unlock()
	}
	c.SetCookie(&http.Cookie{Name: pendingCookie, Value: tok, Path: "/", HttpOnly: true, Secure: s.cfg.secure(),
		SameSite: http.SameSiteStrictMode, MaxAge: int(pendingTTL / time.Second)})
	return nil
}

// ErrNoPendingSignIn: the browser has no sign-in waiting for a further
// step (compare with errors.Is).
var ErrNoPendingSignIn = errNoPending

var errNoPending = qrauth.Errorf(qrauth.EUNAUTHORIZED, "no_pending_sign_in",
	"There is no sign-in waiting for this step, or it has expired. Start again from the sign-in page.")

// pendingSignIn returns a copy of the browser's parked sign-in. Each call
// counts as an attempt; past maxPendingAttempts the sign-in is dropped. The
// copy is the caller's: a handler adds its step to it and continues, so two
// requests racing on one sign-in never share a slice.
func (s *Server) pendingSignIn(c echo.Context) (*SignIn, error) {
	tok, bind, err := s.pendingCookies(c)
	if err != nil {
		return nil, err
	}
	if s.cfg.Shared != nil {
		return s.pendingShared(c.Request().Context(), tok, bind, true)
	}
	key := sha256.Sum256([]byte(tok))
	s.pending.mu.Lock()
	defer s.pending.mu.Unlock()
	si, ok := s.pending.m[key]
	switch {
	case !ok:
		return nil, errNoPending
	case !s.cfg.Now().Before(si.expires), si.attempts >= maxPendingAttempts:
		delete(s.pending.m, key)
		return nil, errNoPending
	case subtle.ConstantTimeCompare(si.bindHash, qrauth.HashToken(bind)) != 1:
		return nil, errNoPending
	}
	si.attempts++
	return si.clone(), nil
}

// pendingCookies returns the browser's pending cookie and bind value, or
// errNoPending when it lacks either.
func (s *Server) pendingCookies(c echo.Context) (tok, bind string, err error) {
	ck, err := c.Cookie(pendingCookie)
	if err != nil || ck.Value == "" {
		return "", "", errNoPending
	}
	bind, err = s.bindValue(c)
	if qrauth.ErrorReason(err) == qrauth.ErrorReason(errNoBindCookie) {
		return "", "", errNoPending
	} else if err != nil {
		return "", "", err
	}
	return ck.Value, bind, nil
}

// peekSignIn returns a snapshot of the browser's parked sign-in without
// counting an attempt: looking is not guessing.
func (s *Server) peekSignIn(c echo.Context) (*SignIn, error) {
	if s.cfg.Shared != nil {
		tok, bind, err := s.pendingCookies(c)
		if err != nil {
			return nil, err
		}
		return s.pendingShared(c.Request().Context(), tok, bind, false)
	}
	si, err := s.pendingSignIn(c)
	if err != nil {
		return nil, err
	}
	if ck, err := c.Cookie(pendingCookie); err == nil {
		s.pending.mu.Lock()
		if p, ok := s.pending.m[sha256.Sum256([]byte(ck.Value))]; ok {
			p.attempts--
		}
		s.pending.mu.Unlock()
	}
	return si, nil
}

// dropPending forgets the browser's parked sign-in, if any.
func (s *Server) dropPending(c echo.Context) {
	ck, err := c.Cookie(pendingCookie)
	if err != nil {
		return
	}
	if s.cfg.Shared != nil {
		if err := s.cfg.Shared.Delete(c.Request().Context(), pendingKey(ck.Value)); err != nil {
			// It expires by itself; a later step finds it only with the
			// cookie this answer clears.
			s.log.Warn("pending sign-in not removed from the shared store", slog.Any("err", err))
		}
	} else {
		s.pending.mu.Lock()
		delete(s.pending.m, sha256.Sum256([]byte(ck.Value)))
		s.pending.mu.Unlock()
	}
	c.SetCookie(&http.Cookie{Name: pendingCookie, Value: "", Path: "/", HttpOnly: true, Secure: s.cfg.secure(),
		SameSite: http.SameSiteStrictMode, MaxAge: -1})
}

// purge drops expired pending sign-ins.
func (p *pendingStore) purge(now time.Time) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for k, si := range p.m {
		if !now.Before(si.expires) {
			delete(p.m, k)
		}
	}
}

// handlePendingSignIn tells a step's page who is signing in and which
// steps are done, so it can say "Signing in as …".
func (s *Server) handlePendingSignIn(c echo.Context) error {
	si, err := s.peekSignIn(c)
	if err != nil {
		return err
	}
	u, err := s.store.FindUserByID(c.Request().Context(), si.UserID)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, map[string]any{"name": u.Name, "methods": si.Methods, "expires_at": si.expires})
}
