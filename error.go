package qrauth

import (
	"errors"
	"fmt"
)

// Error codes. Each is a class of failure with one HTTP status and one
// WebSocket close code: the table is wire.HTTPStatus and wire.CloseCode.
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

// Is reports whether e is target's kind of refusal: the same code and, if
// target names one, the same reason. The message does not count, so a
// sentinel such as oath.ErrNotFound matches every store's wording of it:
// errors.Is(err, oath.ErrNotFound) instead of comparing reason
// strings.
func (e *Error) Is(target error) bool {
	t, ok := target.(*Error)
	if !ok || t == nil {
		return false
	}
	return e.Code == t.Code && (t.Reason == "" || e.Reason == t.Reason)
}

// Sentinel refusals that callers branch on (compare with errors.Is).
var (
	// ErrNotSignedIn: the request carries no valid browser session.
	ErrNotSignedIn = &Error{Code: EUNAUTHORIZED, Reason: "not_signed_in", Message: "You are not signed in."}
	// ErrAccountDisabled: an administrator has disabled the account; it
	// cannot sign in by any method until it is enabled again.
	ErrAccountDisabled = &Error{Code: EFORBIDDEN, Reason: "account_disabled",
		Message: "This account is disabled. Ask your administrator to enable it again."}
	// ErrNoQRCode: an image holds no readable QR code.
	ErrNoQRCode = &Error{Code: EINVALID, Reason: "no_qr_code", Message: "No QR code could be read in the image."}
)

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
