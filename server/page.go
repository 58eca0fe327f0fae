package server

import (
	"io/fs"
	"net/http"

	"github.com/labstack/echo/v4"
	"github.com/qrauth/qrauth"
	"github.com/qrauth/qrauth/webclient"
)

// Cookie names.
const (
	// bindCookie ties a browser to the rooms it opens: a ticket is only
	// exchanged together with the bind cookie of the browser that opened
	// the room, so a leaked ticket is useless elsewhere.
	bindCookie    = "qrauth_bind"
	sessionCookie = "qrauth_session"
)

// ensureBindCookie sets a fresh bind cookie unless the browser has one
// the server issued (see bindValue).
func (s *Server) ensureBindCookie(c echo.Context) error {
	if _, err := s.bindValue(c); err == nil {
		return nil
	} else if qrauth.ErrorReason(err) != qrauth.ErrorReason(errNoBindCookie) {
		return err
	}
	v, err := s.newBindValue(c.Request().Context())
	if err != nil {
		return err
	}
	c.SetCookie(&http.Cookie{
		Name: bindCookie, Value: v, Path: "/", HttpOnly: true, Secure: s.cfg.secure(),
		SameSite: http.SameSiteStrictMode,
	})
	return nil
}

func (s *Server) servePage(c echo.Context, name string) error {
	b, err := fs.ReadFile(webclient.Files(), name)
	if err != nil {
		return qrauth.Internal(err)
	}
	return c.HTMLBlob(http.StatusOK, b)
}

func (s *Server) handleLoginPage(c echo.Context) error {
	if err := s.ensureBindCookie(c); err != nil {
		return err
	}
	return s.servePage(c, "index.html")
}

func (s *Server) handleAccountPage(c echo.Context) error {
	if err := s.ensureBindCookie(c); err != nil {
		return err
	}
	return s.servePage(c, "account.html")
}

// handleScanPage answers a plain camera app that opened a QR URL. It never
// touches the room: the PSK in the path is neither looked up nor consumed.
func (s *Server) handleScanPage(c echo.Context) error {
	return s.servePage(c, "scan.html")
}

func (s *Server) handleHealth(c echo.Context) error {
	return c.JSON(http.StatusOK, map[string]any{"status": "ok", "rooms": s.hub.roomCount()})
}
