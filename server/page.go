package server

import (
	"io"
	"io/fs"
	"net/http"
	"strings"
	"unicode/utf8"

	"github.com/labstack/echo/v4"
	"github.com/qrauth/qrauth"
	"github.com/qrauth/qrauth/webclient"
	"github.com/qrauth/qrauth/wire"
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
	if s.redirectSignedIn(c) {
		return c.Redirect(http.StatusSeeOther, wire.PathAccount)
	}
	return s.serveFeaturePage(c, webclient.LoginPage)
}

// serveFeaturePage serves the page name without the lines that carry
// data-feature="NAME" for a flow that is not listed (a flow that is off).
// The login page offers only the flows that are on; the account page marks
// each flow section's script so, so that a flow that is off (its routes
// absent) is never asked.
func (s *Server) serveFeaturePage(c echo.Context, name string) error {
	b, err := fs.ReadFile(webclient.Files(), name)
	if err != nil {
		return qrauth.Internal(err)
	}
	on := map[string]bool{}
	for _, f := range s.flows {
		on[f.Name()] = true
	}
	return c.HTMLBlob(http.StatusOK, withFeatures(b, on))
}

// redirectSignedIn reports whether the request carries a valid session, so
// that a sign-in page sends it on to the account page. The pages used to
// ask GET /api/me themselves, which logged a 401 in the console of every
// anonymous visitor.
func (s *Server) redirectSignedIn(c echo.Context) bool {
	if ck, err := c.Cookie(sessionCookie); err != nil || ck.Value == "" {
		return false
	}
	_, _, err := s.authenticate(c)
	return err == nil
}

// withFeatures removes from a page every line that carries
// data-feature="NAME" for a flow that is off, so that the login page offers
// only the ways to sign in that work (see the webclient package comment).
// An element that is left with no link at all (<nav data-features>) goes
// too.
func withFeatures(page []byte, on map[string]bool) []byte {
	lines := strings.SplitAfter(string(page), "\n")
	out := make([]string, 0, len(lines))
	for _, l := range lines {
		if _, rest, ok := strings.Cut(l, `data-feature="`); ok {
			if name, _, _ := strings.Cut(rest, `"`); !on[name] {
				continue
			}
		}
		out = append(out, l)
	}
	// A <nav data-features ...> whose links all went is dropped whole.
	for i := 0; i < len(out); i++ {
		if !strings.Contains(out[i], "data-features") {
			continue
		}
		j := i + 1
		for j < len(out) && !strings.Contains(out[j], "</nav>") && !strings.Contains(out[j], "<a ") {
			j++
		}
		if j < len(out) && strings.Contains(out[j], "</nav>") {
			out = append(out[:i], out[j+1:]...)
			i--
		}
	}
	return []byte(strings.Join(out, ""))
}

func (s *Server) handleAccountPage(c echo.Context) error {
	if err := s.ensureBindCookie(c); err != nil {
		return err
	}
	return s.serveFeaturePage(c, "account.html")
}

// handleScanPage answers a plain camera app that opened a QR URL. It never
// touches the room: the PSK in the path is neither looked up nor consumed.
func (s *Server) handleScanPage(c echo.Context) error {
	return s.servePage(c, webclient.ScanPage)
}

// handleStatic serves the embedded files under /static/. It replaces
// http.FileServer, which answered a path that is not valid UTF-8 (such as
// /static/%ff) with a plain-text 500 and a warning in the log, a missing
// file with a plain-text 404, and /static/ with a directory listing. Every
// such request is simply "not found" here, in the server's own error format.
func (s *Server) handleStatic(c echo.Context) error {
	// URL.Path is already unescaped; echo's parameter may still be raw.
	name, ok := strings.CutPrefix(c.Request().URL.Path, wire.Prefix(wire.PathStatic))
	if !ok || !utf8.ValidString(name) || !fs.ValidPath(name) || name == "." {
		return echo.ErrNotFound
	}
	f, err := webclient.Files().Open(name)
	if err != nil {
		return echo.ErrNotFound
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil || st.IsDir() {
		return echo.ErrNotFound
	}
	rs, ok := f.(io.ReadSeeker)
	if !ok {
		// Unreachable: embedded files seek.
		return qrauth.Internal(fs.ErrInvalid)
	}
	http.ServeContent(c.Response(), c.Request(), name, st.ModTime(), rs)
	return nil
}

// handleFavicon answers /favicon.ico, which browsers fetch on their own
// even though every page links /static/favicon.svg: with the same SVG
// rather than a 404 in the log.
func (s *Server) handleFavicon(c echo.Context) error {
	b, err := fs.ReadFile(webclient.Files(), webclient.Favicon)
	if err != nil {
		return qrauth.Internal(err)
	}
	return c.Blob(http.StatusOK, "image/svg+xml", b)
}

func (s *Server) handleHealth(c echo.Context) error {
	return c.JSON(http.StatusOK, aliveBody)
}

func (s *Server) handleReady(c echo.Context) error {
	status, body := s.readiness(c.Request().Context())
	return c.JSON(status, body)
}
