package wire

import (
	"net/http"

	"github.com/qrauth/qrauth"
)

// ErrorBody is the JSON body of every HTTP error answer. The error message
// on a socket (ServerMessage of type MsgError) carries the same three
// fields.
type ErrorBody struct {
	Code    string `json:"code"`
	Reason  string `json:"reason"`
	Message string `json:"message"`
}

// ErrorBodyFor returns the body that tells a client about err: its code,
// reason and message, never its internal cause.
func ErrorBodyFor(err error) ErrorBody {
	return ErrorBody{Code: qrauth.ErrorCode(err), Reason: qrauth.ErrorReason(err), Message: qrauth.ErrorMessage(err)}
}

// codes maps each error code to its HTTP status. The WebSocket close code is
// CloseCodeBase + that status, so both transports share one table.
var codes = map[string]int{
	qrauth.ECONFLICT:     http.StatusConflict,
	qrauth.EEXPIRED:      http.StatusGone,
	qrauth.EFORBIDDEN:    http.StatusForbidden,
	qrauth.EINTERNAL:     http.StatusInternalServerError,
	qrauth.EINVALID:      http.StatusBadRequest,
	qrauth.ENOTFOUND:     http.StatusNotFound,
	qrauth.ERATELIMITED:  http.StatusTooManyRequests,
	qrauth.EUNAUTHORIZED: http.StatusUnauthorized,
}

// HTTPStatus returns the HTTP status for an error code.
func HTTPStatus(code string) int {
	if s, ok := codes[code]; ok {
		return s
	}
	return http.StatusInternalServerError
}

// ErrorCodeForStatus is the inverse of HTTPStatus, from the same table: the
// error code of an HTTP status (or of a close code minus CloseCodeBase), and
// false for a status no code maps to. Clients use it so that a code added to
// the table cannot be forgotten in their copy of the inverse.
func ErrorCodeForStatus(status int) (string, bool) {
	for c, s := range codes {
		if s == status {
			return c, true
		}
	}
	return "", false
}

// WebSocket close codes. An error closes a socket with CloseCodeBase plus
// the HTTP status of its code, the close reason being the error's reason.
//
// The reconnect rule: close codes from CloseCodeBase to CloseCodeMax are
// terminal, a client must not reconnect automatically (the room is gone, the
// device refused, the request invalid). CloseGoingAway (1001) and
// CloseServiceRestart (1012) mean "reconnect": the server is shutting down
// or restarting and a new socket will get a new room.
const (
	CloseCodeBase       = 4000
	CloseCodeMax        = 4999
	CloseGoingAway      = 1001
	CloseServiceRestart = 1012
)

// CloseCode returns the WebSocket close code for an error code:
// CloseCodeBase plus its HTTP status.
func CloseCode(code string) int { return CloseCodeBase + HTTPStatus(code) }

// IsErrorClose reports whether a close code is one of the terminal error
// codes CloseCode returns, CloseCodeBase to CloseCodeMax.
func IsErrorClose(closeCode int) bool {
	return closeCode >= CloseCodeBase && closeCode <= CloseCodeMax
}

// ErrorCodeForClose is the inverse of CloseCode: the error code of a close
// code, and false for a close code no error code maps to.
func ErrorCodeForClose(closeCode int) (string, bool) {
	if !IsErrorClose(closeCode) {
		return "", false
	}
	return ErrorCodeForStatus(closeCode - CloseCodeBase)
}

// Reconnect reports whether a client should open a new socket after the
// server closed one with closeCode (the reconnect rule above).
func Reconnect(closeCode int) bool {
	return closeCode == CloseGoingAway || closeCode == CloseServiceRestart
}
