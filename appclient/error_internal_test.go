package appclient

import (
	"testing"

	"github.com/qrauth/qrauth"
	"github.com/qrauth/qrauth/wire"
)

// Before: the inverse was a copy of the table without EFORBIDDEN, so a
// 403 or a 4403 close read as "invalid".
func TestCodeForStatusInvertsTheTable(t *testing.T) {
	for _, c := range []string{qrauth.ECONFLICT, qrauth.EEXPIRED, qrauth.EFORBIDDEN, qrauth.EINTERNAL,
		qrauth.EINVALID, qrauth.ENOTFOUND, qrauth.ERATELIMITED, qrauth.EUNAUTHORIZED} {
		if got := codeForStatus(wire.HTTPStatus(c)); got != c {
			t.Errorf("codeForStatus(%d) = %s, want %s", wire.HTTPStatus(c), got, c)
		}
		if got := codeForStatus(wire.CloseCode(c) - 4000); got != c {
			t.Errorf("close code %d reads as %s, want %s", wire.CloseCode(c), got, c)
		}
	}
	if got := codeForStatus(418); got != qrauth.EINVALID {
		t.Errorf("418 reads as %s", got)
	}
}
