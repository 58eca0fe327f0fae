package server

import (
	"context"
	"errors"
	"io/fs"
	"log/slog"
	"net/http"
	"strconv"
	"strings"

	"github.com/labstack/echo/v4"
	"github.com/qrauth/qrauth"
	"github.com/qrauth/qrauth/webclient"
	"github.com/qrauth/qrauth/wire"
)

// handleError is echo's error handler: every error becomes a JSON wire.ErrorBody
// with the status of its code. Internal causes go to the log only.
func (s *Server) handleError(err error, c echo.Context) {
	if c.Response().Committed {
		return
	}
	var he *echo.HTTPError
	isHTTPError := errors.As(err, &he)
	code, reason := qrauth.ErrorCode(err), qrauth.ErrorReason(err)
	if isHTTPError {
		// echo's own errors: unknown route, wrong method, oversized body.
		code, reason = httpErrorReason(he.Code)
	}
	s.cfg.Metrics.Refused(code, reason)
	if (isHTTPError && he.Code == http.StatusNotFound || !isHTTPError && qrauth.ErrorCode(err) == qrauth.ENOTFOUND) && WantsHTML(c.Request()) {
		// A person who opened a wrong address in a browser gets a page,
		// not raw JSON. Scripts ask for JSON and still get the body below.
		if b, ferr := fs.ReadFile(webclient.Files(), webclient.NotFoundPage); ferr == nil {
			if c.Request().Method == http.MethodHead {
				c.Response().Header().Set(echo.HeaderContentType, echo.MIMETextHTMLCharsetUTF8)
				_ = c.NoContent(http.StatusNotFound)
				return
			}
			_ = c.HTMLBlob(http.StatusNotFound, b)
			return
		}
	}
	if isHTTPError {
		msg := http.StatusText(he.Code)
		if m, ok := he.Message.(string); ok {
			msg = m
		}
		_ = c.JSON(he.Code, wire.ErrorBody{Code: code, Reason: reason, Message: msg})
		return
	}
	if code == qrauth.EINTERNAL {
		if errors.Is(err, context.Canceled) && c.Request().Context().Err() != nil {
			// The client hung up before the answer: its choice, which it can
			// make at will, so not an error of ours.
			s.log.Info("request abandoned", slog.String("route", c.Path()))
		} else {
			s.log.Error("request failed", slog.String("route", c.Path()), slog.Any("err", err))
		}
	}
	_ = c.JSON(wire.HTTPStatus(code), wire.ErrorBodyFor(err))
}

// httpErrorReason gives echo's own errors (unknown route, wrong method,
// oversized body) a wire code and reason.
func httpErrorReason(status int) (code, reason string) {
	code, reason = qrauth.EINVALID, "bad_request"
	switch status {
	case http.StatusNotFound:
		code, reason = qrauth.ENOTFOUND, "no_such_route"
	case http.StatusMethodNotAllowed:
		reason = "method_not_allowed"
	case http.StatusRequestEntityTooLarge:
		reason = "body_too_large"
	case http.StatusUnsupportedMediaType:
		reason = "unsupported_media_type"
	}
	return code, reason
}

// WantsHTML reports whether a request is a browser opening a page: a GET or
// HEAD whose Accept names text/html. The pages' own scripts send
// "Accept: application/json", and programs rarely ask for HTML.
func WantsHTML(r *http.Request) bool {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		return false
	}
	for _, part := range strings.Split(r.Header.Get("Accept"), ",") {
		params := strings.Split(part, ";")
		if !strings.EqualFold(strings.TrimSpace(params[0]), "text/html") {
			continue
		}
		for _, p := range params[1:] {
			k, v, _ := strings.Cut(p, "=")
			// "q=0" means "not acceptable".
			if q, err := strconv.ParseFloat(strings.TrimSpace(v), 64); strings.EqualFold(strings.TrimSpace(k), "q") && err == nil && q <= 0 {
				return false
			}
		}
		return true
	}
	return false
}
