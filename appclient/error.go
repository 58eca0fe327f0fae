package appclient

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"

	"github.com/gorilla/websocket"
	"github.com/qrauth/qrauth"
)

// maxResponseSize bounds every HTTP response body the app reads, so a
// misbehaving server cannot make the phone buffer without end.
const maxResponseSize = 1 << 20

// wrapf returns an *qrauth.Error whose Err is the cause, for logs and
// errors.Is, while Message stays a sentence for people.
func wrapf(code, reason string, cause error, format string, args ...any) *qrauth.Error {
	e := qrauth.Errorf(code, reason, format, args...)
	e.Err = cause
	return e
}

// codeForStatus is the inverse of qrauth.HTTPStatus: the error code of an
// HTTP status or of a WebSocket close code minus 4000.
func codeForStatus(status int) string {
	for _, c := range []string{qrauth.ECONFLICT, qrauth.EEXPIRED, qrauth.EINVALID, qrauth.ENOTFOUND,
		qrauth.ERATELIMITED, qrauth.EUNAUTHORIZED} {
		if qrauth.HTTPStatus(c) == status {
			return c
		}
	}
	if status >= 400 && status < 500 {
		return qrauth.EINVALID
	}
	return qrauth.EINTERNAL
}

// messageForCode is the sentence shown when the server gave a code but no
// message of its own (a bare close frame or a non-JSON error page).
func messageForCode(code string) string {
	switch code {
	case qrauth.ECONFLICT:
		return "The code was already used. Scan a new one."
	case qrauth.EEXPIRED:
		return "The code has expired. Scan a new one."
	case qrauth.EINVALID:
		return "The server refused the request as malformed."
	case qrauth.ENOTFOUND:
		return "The server does not know this code or record."
	case qrauth.ERATELIMITED:
		return "Too many attempts. Wait a moment and try again."
	case qrauth.EUNAUTHORIZED:
		return "The server refused this phone."
	}
	return "The server failed. Try again later."
}

// wireError is the JSON body of an HTTP error and the fields of an error
// message on the socket.
type wireError struct {
	Code    string `json:"code"`
	Reason  string `json:"reason"`
	Message string `json:"message"`
}

// serverError turns the server's error fields into an *qrauth.Error,
// filling gaps so that callers always have a code, a reason and a sentence.
func serverError(w wireError, status int) *qrauth.Error {
	e := &qrauth.Error{Code: w.Code, Reason: w.Reason, Message: w.Message}
	if e.Code == "" {
		e.Code = codeForStatus(status)
	}
	if e.Reason == "" {
		e.Reason = e.Code
	}
	if e.Message == "" {
		e.Message = messageForCode(e.Code)
	}
	return e
}

// responseError reads an HTTP error response: the JSON error body when the
// server sent one, otherwise an error built from the status alone. It never
// passes raw body text on, which could be an HTML page of a proxy.
func responseError(resp *http.Response) *qrauth.Error {
	var w wireError
	body, _ := io.ReadAll(io.LimitReader(resp.Body, maxResponseSize))
	if json.Unmarshal(body, &w) != nil {
		w = wireError{}
	}
	e := serverError(w, resp.StatusCode)
	if w.Code == "" {
		e.Reason = fmt.Sprintf("http_%d", resp.StatusCode)
		e.Err = fmt.Errorf("HTTP %s", resp.Status)
	}
	return e
}

// contextError turns the end of a context into a typed error.
func contextError(err error) *qrauth.Error {
	if errors.Is(err, context.DeadlineExceeded) {
		return wrapf(qrauth.EEXPIRED, "timeout", err, "The server did not answer in time.")
	}
	return wrapf(qrauth.EINTERNAL, "canceled", err, "The operation was cancelled.")
}

// transportError classifies a failure of the HTTP or WebSocket transport.
func transportError(ctx context.Context, what string, err error) *qrauth.Error {
	var qe *qrauth.Error
	if errors.As(err, &qe) {
		return qe
	}
	if ctx.Err() != nil {
		return contextError(ctx.Err())
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return wrapf(qrauth.EEXPIRED, "timeout", err, "The server at %s did not answer in time.", what)
	}
	return wrapf(qrauth.EINTERNAL, "server_unreachable", err, "Cannot reach the qrauth server at %s.", what)
}

// socketError classifies the error that ended reading the app socket.
func socketError(err error) *qrauth.Error {
	var qe *qrauth.Error
	if errors.As(err, &qe) {
		return qe
	}
	var ce *websocket.CloseError
	if errors.As(err, &ce) {
		switch {
		case ce.Code >= 4000 && ce.Code <= 4999:
			code := codeForStatus(ce.Code - 4000)
			reason := "closed_" + code
			if isIdentifier(ce.Text) {
				reason = ce.Text
			}
			return wrapf(code, reason, err, "%s", messageForCode(code))
		case ce.Code == websocket.CloseGoingAway || ce.Code == websocket.CloseServiceRestart:
			return wrapf(qrauth.EINTERNAL, "server_going_away", err, "The server is restarting. Scan the code again.")
		case ce.Code == websocket.CloseMessageTooBig:
			return wrapf(qrauth.EINVALID, "frame_too_large", err, "The server refused a message as too large.")
		}
		return wrapf(qrauth.EINTERNAL, "connection_closed", err, "The server closed the connection before the scan was finished.")
	}
	if errors.Is(err, websocket.ErrReadLimit) {
		return wrapf(qrauth.EINVALID, "frame_too_large", err, "The server sent a message larger than %d bytes.", readLimit)
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return wrapf(qrauth.EEXPIRED, "timeout", err, "The server did not answer in time.")
	}
	return wrapf(qrauth.EINTERNAL, "connection_lost", err, "The connection to the server was lost.")
}

// isIdentifier reports whether s looks like a reason: a short run of
// lowercase letters, digits and underscores.
func isIdentifier(s string) bool {
	if s == "" || len(s) > 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '_') {
			return false
		}
	}
	return true
}
