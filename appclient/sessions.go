package appclient

import (
	"context"
	"net/http"

	"github.com/qrauth/qrauth"
	"github.com/qrauth/qrauth/wire"
)

// Sessions returns the signed-in browsers of the device's account. The
// request is signed with the device key (see wire.AppRequest).
func (d *Device) Sessions(ctx context.Context) ([]wire.SessionInfo, error) {
	var out wire.SessionList
	if err := d.do(ctx, http.MethodGet, wire.PathAppSessions, http.StatusOK, &out); err != nil {
		return nil, err
	}
	return out.Sessions, nil
}

// RevokeSession ends a browser session of the device's account. The server
// answers ENOTFOUND for a session that does not exist or belongs to another
// account.
func (d *Device) RevokeSession(ctx context.Context, id qrauth.SessionID) error {
	// A session id is a base64url token; checking it keeps the signed path
	// and the path the server sees identical, with nothing to escape.
	if !qrauth.ValidToken(string(id), 1, 128) {
		return qrauth.Errorf(qrauth.EINVALID, "invalid_session_id", "%q is not a session id.", string(id))
	}
	return d.do(ctx, http.MethodDelete, wire.Path(wire.PathAppSessionByID, string(id)), http.StatusNoContent, nil)
}

// do makes a device-signed request to the origin and decodes a JSON answer
// into out (unless out is nil). Any status other than want is an error,
// decoded from the server's JSON error body; when want is 204, 200 is
// accepted too.
func (d *Device) do(ctx context.Context, method, path string, want int, out any) error {
	return d.signedRequest(ctx, method, path, nil, want, want == http.StatusNoContent, out)
}
