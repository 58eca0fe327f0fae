package appclient

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"

	"github.com/qrauth/qrauth"
	"github.com/qrauth/qrauth/recovery"
	"github.com/qrauth/qrauth/wire"
)

// RecoveryCode returns the code in s: a recovery or link code as typed, or
// the URL of a helpdesk's QR code (ORIGIN/app#recover=CODE), which must be
// on the device's own origin.
func (d *Device) RecoveryCode(s string) (string, error) {
	s = strings.TrimSpace(s)
	if strings.Contains(s, "://") {
		u, err := url.Parse(s)
		origin, _ := normalizeOrigin(d.Origin)
		if err != nil || u.Scheme+"://"+u.Host != origin || u.Path != wire.PathPhoneApp ||
			!strings.HasPrefix(u.Fragment, wire.RecoverFragment) {
			return "", qrauth.Errorf(qrauth.EINVALID, "foreign_origin",
				"This code is not a recovery code of %s.", origin)
		}
		s = strings.TrimPrefix(u.Fragment, wire.RecoverFragment)
	}
	return recovery.Normalize(s)
}

// Recover links this device to the account of a recovery code or of a
// helpdesk link code (POST /api/app/recover, docs/recovery.md). The request
// is signed with this device's own key (wire.Recover), which the server
// registers; every browser session of the account ends. The code works
// once. The device can then sign in by scanning a login code.
//
// Errors are *qrauth.Error: EINVALID "invalid_recovery_code" for text that
// is not a code (nothing is sent), EUNAUTHORIZED "bad_recovery_code" for a
// wrong or used code, EEXPIRED "link_code_expired", EFORBIDDEN
// "recovery_locked", ERATELIMITED after too many wrong codes, ECONFLICT
// "device_exists" or "phone_taken".
func (d *Device) Recover(ctx context.Context, code string) (*wire.RecoverResponse, error) {
	if err := d.check(); err != nil {
		return nil, err
	}
	canon, err := d.RecoveryCode(code)
	if err != nil {
		return nil, err
	}
	name, _ := qrauth.NormalizeDeviceName(d.Name) // checked by check
	signed := wire.Recover{Origin: d.Origin, Code: canon, DeviceID: d.ID(), PhoneIDHash: d.PhoneIDHash, DeviceName: name}
	body, _ := json.Marshal(wire.RecoverRequest{Code: recovery.Format(canon), DeviceID: d.ID(),
		PublicKey: base64.RawURLEncoding.EncodeToString(d.PublicKey()), PhoneIDHash: d.PhoneIDHash,
		DeviceName: name, Signature: signed.Sign(d.PrivateKey)})
	origin, _ := normalizeOrigin(d.Origin)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, origin+wire.PathAppRecover, bytes.NewReader(body))
	if err != nil {
		return nil, qrauth.Internal(err)
	}
	req.Header.Set("Accept", "application/json")
	req.Header.Set("Content-Type", "application/json")
	resp, err := d.httpClient().Do(req)
	if err != nil {
		return nil, transportError(ctx, origin, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, responseError(resp)
	}
	var out wire.RecoverResponse
	if err := json.NewDecoder(io.LimitReader(resp.Body, maxResponseSize)).Decode(&out); err != nil {
		return nil, wrapf(qrauth.EINTERNAL, "bad_response", err, "The server sent an answer this app cannot read.")
	}
	return &out, nil
}
