package appclient

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"

	"github.com/gorilla/websocket"
	"github.com/qrauth/qrauth"
	"github.com/qrauth/qrauth/wire"
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

// codeForStatus is the inverse of wire.HTTPStatus: the error code of an
// HTTP status or of a WebSocket close code minus wire.CloseCodeBase.
func codeForStatus(status int) string {
	// From the wire package's one table: a copy of it here once lacked
	// EFORBIDDEN, so 403/4403 read as "invalid".
	if c, ok := wire.ErrorCodeForStatus(status); ok {
		return c
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
	case qrauth.EFORBIDDEN:
		return "The server does not allow this."
	}
	return "The server failed. Try again later."
}

// serverError turns the server's error fields into an *qrauth.Error,
// filling gaps so that callers always have a code, a reason and a sentence.
func serverError(w wire.ErrorBody, status int) *qrauth.Error {
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
	var w wire.ErrorBody
	body, _ := io.ReadAll(io.LimitReader(resp.Body, maxResponseSize))
	if json.Unmarshal(body, &w) != nil {
		w = wire.ErrorBody{}
	}
	if resp.StatusCode == http.StatusBadRequest && bytes.Contains(body, []byte(httpToHTTPS)) && resp.Request != nil {
		return httpsRequired(resp.Request.URL)
	}
	e := serverError(w, resp.StatusCode)
	if w.Code == "" {
		e.Reason = fmt.Sprintf("http_%d", resp.StatusCode)
		e.Err = fmt.Errorf("HTTP %s", resp.Status)
	}
	return e
}

// httpToHTTPS is what Go's HTTP server answers, with status 400, to plain
// HTTP on a TLS port: the server has moved to HTTPS under the same address.
const httpToHTTPS = "Client sent an HTTP request to an HTTPS server."

// httpsRequired says that the server now speaks HTTPS only, instead of the
// "malformed [http_400]" that the bare status would give.
func httpsRequired(u *url.URL) *qrauth.Error {
	was := *u
	was.Path, was.RawQuery, was.Fragment = "", "", ""
	if was.Scheme == "ws" {
		was.Scheme = "http"
	}
	now := was
	now.Scheme = "https"
	return qrauth.Errorf(qrauth.EINVALID, "https_required",
		"The server now answers only over HTTPS: change this phone's server address from %s to %s (its key stays valid).",
		was.String(), now.String())
}

// tlsError explains a TLS failure, or returns nil if err is none. A
// certificate the phone does not trust is the usual case with a private CA.
func tlsError(what string, err error) *qrauth.Error {
	var (
		unknown  x509.UnknownAuthorityError
		hostname x509.HostnameError
		invalid  x509.CertificateInvalidError
		verify   *tls.CertificateVerificationError
		record   tls.RecordHeaderError
	)
	switch {
	case errors.As(err, &unknown) || (errors.As(err, &verify) && !errors.As(err, &hostname) && !errors.As(err, &invalid)):
		return wrapf(qrauth.EUNAUTHORIZED, "certificate_untrusted", err,
			"This device does not trust the certificate of %s. For a private CA, set SSL_CERT_FILE to the CA's certificate file (PEM).", what)
	case errors.As(err, &hostname):
		return wrapf(qrauth.EUNAUTHORIZED, "certificate_name_mismatch", err,
			"The certificate of %s is for another name: check the server address (%v).", what, hostname.Error())
	case errors.As(err, &invalid):
		return wrapf(qrauth.EUNAUTHORIZED, "certificate_invalid", err,
			"The certificate of %s is not valid: check this device's clock, or ask the operator to renew it (%v).", what, invalid.Error())
	case errors.As(err, &record) || strings.Contains(err.Error(), "server gave HTTP response to HTTPS client"):
		return wrapf(qrauth.EINVALID, "not_https", err,
			"The server at %s does not speak HTTPS: check the server address (http://?).", what)
	}
	return nil
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
	if e := tlsError(what, err); e != nil {
		return e
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
		case wire.IsErrorClose(ce.Code):
			code := codeForStatus(ce.Code - wire.CloseCodeBase)
			reason := "closed_" + code
			if isIdentifier(ce.Text) {
				reason = ce.Text
			}
			return wrapf(code, reason, err, "%s", messageForCode(code))
		case wire.Reconnect(ce.Code):
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
