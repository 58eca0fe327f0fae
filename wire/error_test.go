package wire_test

import (
	"encoding/json"
	"testing"

	"github.com/qrauth/qrauth"
	"github.com/qrauth/qrauth/wire"
)

// allCodes is every error code of the root package.
var allCodes = []string{qrauth.ECONFLICT, qrauth.EEXPIRED, qrauth.EFORBIDDEN, qrauth.EINTERNAL,
	qrauth.EINVALID, qrauth.ENOTFOUND, qrauth.ERATELIMITED, qrauth.EUNAUTHORIZED}

func TestErrorTable(t *testing.T) {
	for code, status := range map[string]int{
		qrauth.EINVALID: 400, qrauth.EUNAUTHORIZED: 401, qrauth.EFORBIDDEN: 403, qrauth.ENOTFOUND: 404, qrauth.ECONFLICT: 409,
		qrauth.EEXPIRED: 410, qrauth.ERATELIMITED: 429, qrauth.EINTERNAL: 500, "bogus": 500,
	} {
		if wire.HTTPStatus(code) != status || wire.CloseCode(code) != 4000+status {
			t.Errorf("%s: %d %d", code, wire.HTTPStatus(code), wire.CloseCode(code))
		}
	}
	if qrauth.ErrorMessage(json.Unmarshal([]byte("{"), new(any))) == "" {
		t.Fatal("foreign error has no message")
	}
}

// TestErrorTableBothWays: every code comes back from its status and from
// its close code, and every close code of an error is terminal.
func TestErrorTableBothWays(t *testing.T) {
	for _, c := range allCodes {
		if got, ok := wire.ErrorCodeForStatus(wire.HTTPStatus(c)); !ok || got != c {
			t.Errorf("status %d reads as %s", wire.HTTPStatus(c), got)
		}
		cc := wire.CloseCode(c)
		if got, ok := wire.ErrorCodeForClose(cc); !ok || got != c {
			t.Errorf("close code %d reads as %s", cc, got)
		}
		if !wire.IsErrorClose(cc) || wire.Reconnect(cc) {
			t.Errorf("close code %d of %s is not terminal", cc, c)
		}
	}
	if _, ok := wire.ErrorCodeForStatus(418); ok {
		t.Error("418 maps to a code")
	}
	if _, ok := wire.ErrorCodeForClose(1000); ok {
		t.Error("1000 maps to a code")
	}
	for _, cc := range []int{wire.CloseGoingAway, wire.CloseServiceRestart} {
		if !wire.Reconnect(cc) || wire.IsErrorClose(cc) {
			t.Errorf("close code %d does not mean reconnect", cc)
		}
	}
}

func TestErrorBodyFor(t *testing.T) {
	b, _ := json.Marshal(wire.ErrorBodyFor(qrauth.Errorf(qrauth.EINVALID, "bad", "Bad.")))
	if string(b) != `{"code":"invalid","reason":"bad","message":"Bad."}` {
		t.Fatalf("body %s", b)
	}
	if b := wire.ErrorBodyFor(qrauth.Internal(json.Unmarshal([]byte("{"), new(any)))); b.Code != qrauth.EINTERNAL || b.Message == "" || b.Reason != "internal" {
		t.Fatalf("internal body %+v", b)
	}
}
