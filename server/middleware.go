package server

import (
	"fmt"
	"log/slog"
	"net/http"
	"runtime/debug"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/qrauth/qrauth"
)

// recoverPanics turns a panic into a logged internal error: no panic
// reaches a client as a dropped connection or a stack trace.
func (s *Server) recoverPanics(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) (err error) {
		defer func() {
			if p := recover(); p != nil {
				if p == http.ErrAbortHandler {
					panic(p)
				}
				s.log.Error("panic", slog.String("route", c.Path()), slog.Any("panic", p), slog.String("stack", string(debug.Stack())))
				err = qrauth.Internal(fmt.Errorf("panic: %v", p))
			}
		}()
		return next(c)
	}
}

// logRequests logs one line per request. It logs the route pattern, never
// the raw path or query: paths such as /q/PSK carry secrets.
func (s *Server) logRequests(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		start := time.Now()
		err := next(c)
		if err != nil {
			c.Error(err)
		}
		status := c.Response().Status
		lvl := slog.LevelDebug
		if status >= 500 {
			lvl = slog.LevelWarn
		}
		s.log.Log(c.Request().Context(), lvl, "request",
			slog.String("method", c.Request().Method), slog.String("route", c.Path()),
			slog.Int("status", status), slog.String("ip", c.RealIP()),
			slog.Duration("took", time.Since(start)))
		return nil
	}
}

// csp allows nothing but our own files and data: URLs for the QR images.
const csp = "default-src 'self'; img-src 'self' data:; connect-src 'self'; style-src 'self'; script-src 'self'; " +
	"frame-ancestors 'none'; base-uri 'none'; form-action 'self'"

func (s *Server) securityHeaders(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		h := c.Response().Header()
		h.Set("Content-Security-Policy", csp)
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("X-Frame-Options", "DENY")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("Cache-Control", "no-store")
		if s.cfg.secure() {
			h.Set("Strict-Transport-Security", "max-age=31536000")
		}
		return next(c)
	}
}

// checkUnsafeOrigin refuses state-changing requests sent by another site
// (CSRF). Browsers always send Origin on such requests; programs that send
// none are not browsers and carry no ambient cookies of ours.
func (s *Server) checkUnsafeOrigin(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		switch c.Request().Method {
		case http.MethodGet, http.MethodHead, http.MethodOptions:
			return next(c)
		}
		if o := c.Request().Header.Get("Origin"); o != "" && o != s.cfg.Origin {
			return errBadOrigin
		}
		if c.Request().Header.Get("Sec-Fetch-Site") == "cross-site" {
			return errBadOrigin
		}
		return next(c)
	}
}

var errBadOrigin = qrauth.Errorf(qrauth.EUNAUTHORIZED, "bad_origin", "Requests from other sites are not accepted.")
