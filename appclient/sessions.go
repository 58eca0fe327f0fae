package appclient

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strconv"
	"time"

	"github.com/qrauth/qrauth"
)

// SessionsPath is the path of the account's session list, below the origin.
const SessionsPath = "/api/app/sessions"

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
// request is signed with the device key (see qrauth.AppRequest).
func (d *Device) Sessions(ctx context.Context) ([]SessionInfo, error) {
	var out struct {
		Sessions []SessionInfo `json:"sessions"`
	}
	if err := d.do(ctx, http.MethodGet, SessionsPath, http.StatusOK, &out); err != nil {
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
	if !validToken(string(id), 1, 128) {
		return qrauth.Errorf(qrauth.EINVALID, "invalid_session_id", "%q is not a session id.", string(id))
	}
	return d.do(ctx, http.MethodDelete, SessionsPath+"/"+string(id), http.StatusNoContent, nil)
}

// do makes a device-signed request to the origin and decodes a JSON answer
// into out (unless out is nil). Any status other than want is an error,
// decoded from the server's JSON error body.
func (d *Device) do(ctx context.Context, method, path string, want int, out any) error {
	if err := d.check(); err != nil {
		return err
	}
	nonce, err := qrauth.RandomToken(d.rand(), 16)
	if err != nil {
		return wrapf(qrauth.EINTERNAL, "no_randomness", err, "Cannot sign the request: no randomness.")
	}
	origin, _ := normalizeOrigin(d.Origin) // checked by d.check
	req, err := http.NewRequestWithContext(ctx, method, origin+path, nil)
	if err != nil {
		return qrauth.Internal(err)
	}
	r := qrauth.AppRequest{Method: method, Path: path, Time: d.now().Unix(), Nonce: nonce, DeviceID: d.ID()}
	req.Header.Set(qrauth.HeaderDevice, string(r.DeviceID))
	req.Header.Set(qrauth.HeaderTime, strconv.FormatInt(r.Time, 10))
	req.Header.Set(qrauth.HeaderNonce, r.Nonce)
	req.Header.Set(qrauth.HeaderSignature, r.Sign(d.PrivateKey))
	req.Header.Set("Accept", "application/json")
	resp, err := d.httpClient().Do(req)
	if err != nil {
		return transportError(ctx, origin, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != want && !(want == http.StatusNoContent && resp.StatusCode == http.StatusOK) {
		return responseError(resp)
	}
	if out == nil {
		return nil
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, maxResponseSize)).Decode(out); err != nil {
		return wrapf(qrauth.EINTERNAL, "bad_response", err, "The server sent an answer this app cannot read.")
	}
	return nil
}
