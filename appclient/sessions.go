package appclient

import (
	"context"
	"net/http"
	"time"

	"github.com/qrauth/qrauth"
	"github.com/qrauth/qrauth/wire"
)

// SessionInfo is a signed-in browser of the account, as the app lists it.
type SessionInfo struct {
	ID         qrauth.SessionID `json:"id"`
	IP         string           `json:"ip"`
	Browser    string           `json:"browser"`
	OS         string           `json:"os"`
	UserAgent  string           `json:"user_agent"`
	CreatedAt  time.Time        `json:"created_at"`
	LastSeenAt time.Time        `json:"last_seen_at"`
	ExpiresAt  time.Time        `json:"expires_at"`
}

// Sessions returns the signed-in browsers of the device's account. The
// request is signed with the device key (see wire.AppRequest).
func (d *Device) Sessions(ctx context.Context) ([]SessionInfo, error) {
	var out struct {
		Sessions []SessionInfo `json:"sessions"`
	}
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
