package qrauth

import (
	"errors"
	"fmt"
	"net/http"
)

// Error codes. Each is a class of failure with one HTTP status and one
// WebSocket close code (see HTTPStatus and CloseCode).
const (
	ECONFLICT     = "conflict"
	EEXPIRED      = "expired"
	EFORBIDDEN    = "forbidden"
	EINTERNAL     = "internal"
	EINVALID      = "invalid"
	ENOTFOUND     = "not_found"
	ERATELIMITED  = "rate_limited"
	EUNAUTHORIZED = "unauthorized"
)

// Error is the one error type that crosses layers. Code is the class, Reason
// a stable machine-readable name of the exact cause (documented in
// docs/protocol.md) and Message a sentence for people. The wrapped Err is for
// logs only and never reaches a client.
type Error struct {
	Code    string `json:"code"`
	Reason  string `json:"reason"`
	Message string `json:"message"`
	Err     error  `json:"-"`
}

func (e *Error) Error() string {
	s := e.Code
	if e.Reason != "" {
		s += "/" + e.Reason
	}
	s += ": " + e.Message
	if e.Err != nil {
		s += ": " + e.Err.Error()
	}
	return s
}

func (e *Error) Unwrap() error { return e.Err }

// Errorf returns an *Error with the given code and reason.
func Errorf(code, reason, format string, args ...any) *Error {
	return &Error{Code: code, Reason: reason, Message: fmt.Sprintf(format, args...)}
}

// internalMessage is what people see of an internal error.
const internalMessage = "Something went wrong on our side. Please try again."

// Internal wraps an unexpected error. People see a generic message; logs see err.
func Internal(err error) *Error {
	return &Error{Code: EINTERNAL, Reason: "internal", Message: internalMessage, Err: err}
}

// ErrorCode returns the code of err, EINTERNAL for errors that are not *Error,
// and "" for nil.
func ErrorCode(err error) string {
	var e *Error
	if err == nil {
		return ""
	} else if errors.As(err, &e) {
		return e.Code
	}
	return EINTERNAL
}

// ErrorReason returns the reason of err, "internal" for foreign errors.
func ErrorReason(err error) string {
	var e *Error
	if err == nil {
		return ""
	} else if errors.As(err, &e) {
		return e.Reason
	}
	return "internal"
}

// ErrorMessage returns the human-readable message of err. Foreign errors
// yield a generic message so that internals never leak to a client.
func ErrorMessage(err error) string {
	var e *Error
	if err == nil {
		return ""
	} else if errors.As(err, &e) {
		return e.Message
	}
	return internalMessage
}

// codes maps each error code to its HTTP status. The WebSocket close code is
// 4000 + that status, so both transports share one table.
var codes = map[string]int{
	ECONFLICT:     http.StatusConflict,
	EEXPIRED:      http.StatusGone,
	EFORBIDDEN:    http.StatusForbidden,
	EINTERNAL:     http.StatusInternalServerError,
	EINVALID:      http.StatusBadRequest,
	ENOTFOUND:     http.StatusNotFound,
	ERATELIMITED:  http.StatusTooManyRequests,
	EUNAUTHORIZED: http.StatusUnauthorized,
}

// HTTPStatus returns the HTTP status for an error code.
func HTTPStatus(code string) int {
	if s, ok := codes[code]; ok {
		return s
	}
	return http.StatusInternalServerError
}

// ErrorCodeForStatus is the inverse of HTTPStatus, from the same table: the
// error code of an HTTP status (or of a close code minus 4000), and false
// for a status no code maps to. Clients use it so that a code added to the
// table cannot be forgotten in their copy of the inverse.
func ErrorCodeForStatus(status int) (string, bool) {
	for c, s := range codes {
		if s == status {
			return c, true
		}
	}
	return "", false
}

// CloseCode returns the WebSocket close code for an error code: 4000 plus
// its HTTP status. Close codes 4000–4999 are terminal: a client must not
// reconnect automatically. 1001 and 1012 mean "reconnect".
func CloseCode(code string) int { return 4000 + HTTPStatus(code) }
