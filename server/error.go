package server

import (
	"context"
	"errors"
	"log/slog"
	"net/http"

	"github.com/labstack/echo/v4"
	"github.com/qrauth/qrauth"
)

// errorBody is the JSON body of every HTTP error.
type errorBody struct {
	Code    string `json:"code"`
	Reason  string `json:"reason"`
	Message string `json:"message"`
}

// handleError is echo's error handler: every error becomes a JSON errorBody
// with the status of its code. Internal causes go to the log only.
func (s *Server) handleError(err error, c echo.Context) {
	if c.Response().Committed {
		return
	}
	var he *echo.HTTPError
	if errors.As(err, &he) {
		// echo's own errors: unknown route, wrong method, oversized body.
		code, reason := qrauth.EINVALID, "bad_request"
		switch he.Code {
		case http.StatusNotFound:
			code, reason = qrauth.ENOTFOUND, "no_such_route"
		case http.StatusMethodNotAllowed:
			reason = "method_not_allowed"
		case http.StatusRequestEntityTooLarge:
			reason = "body_too_large"
		case http.StatusUnsupportedMediaType:
			reason = "unsupported_media_type"
		}
		msg := http.StatusText(he.Code)
		if m, ok := he.Message.(string); ok {
			msg = m
		}
		_ = c.JSON(he.Code, errorBody{code, reason, msg})
		return
	}
	code := qrauth.ErrorCode(err)
	if code == qrauth.EINTERNAL {
		if errors.Is(err, context.Canceled) && c.Request().Context().Err() != nil {
			// The client hung up before the answer: its choice, which it can
			// make at will, so not an error of ours.
			s.log.Info("request abandoned", slog.String("route", c.Path()))
		} else {
			s.log.Error("request failed", slog.String("route", c.Path()), slog.Any("err", err))
		}
	}
	_ = c.JSON(qrauth.HTTPStatus(code), errorBody{code, qrauth.ErrorReason(err), qrauth.ErrorMessage(err)})
}
