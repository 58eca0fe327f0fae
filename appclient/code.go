package appclient

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"

	"github.com/qrauth/qrauth"
	"github.com/qrauth/qrauth/wire"
)

// IsUserCode reports whether s reads as a typed sign-in code ("7K3M-QX9D",
// any case, spaces or dashes anywhere) rather than a URL or a file name.
func IsUserCode(s string) bool {
	_, err := wire.NormalizeUserCode(s)
	return err == nil
}

// ExchangeCode trades a code typed from the login page for the URL of the
// QR code it stands for (POST /api/app/code, docs/protocol.md §7.9). The
// code works once; the URL is checked like a scanned code, so a server
// cannot send the phone to another origin.
//
// Errors are *qrauth.Error: EINVALID "invalid_code" for text that is not a
// code (nothing is sent), ENOTFOUND "code_unknown" for a wrong, rotated or
// used code, ERATELIMITED "rate_limited" or "too_many_guesses" when too
// many wrong codes were typed.
func (d *Device) ExchangeCode(ctx context.Context, code string) (string, error) {
	if err := d.check(); err != nil {
		return "", err
	}
	canon, err := wire.NormalizeUserCode(code)
	if err != nil {
		return "", err
	}
	body, _ := json.Marshal(wire.CodeRequest{Code: canon})
	origin, _ := normalizeOrigin(d.Origin)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, origin+wire.PathAppCode, bytes.NewReader(body))
	if err != nil {
		return "", qrauth.Internal(err)
	}
	req.Header.Set("Accept", "application/json")
	req.Header.Set("Content-Type", "application/json")
	resp, err := d.httpClient().Do(req)
	if err != nil {
		return "", transportError(ctx, origin, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return "", responseError(resp)
	}
	var out wire.CodeResponse
	if err := json.NewDecoder(io.LimitReader(resp.Body, maxResponseSize)).Decode(&out); err != nil {
		return "", wrapf(qrauth.EINTERNAL, "bad_response", err, "The server sent an answer this app cannot read.")
	}
	if _, err := ParseQRURL(d.Origin, out.URL); err != nil {
		return "", err
	}
	return out.URL, nil
}

// ScanCode is Scan for a typed code: it exchanges the code for the QR
// code's URL and joins that room. The join and the decision are signed
// exactly as after a scan.
func (d *Device) ScanCode(ctx context.Context, code string, opts ScanOptions) (*Scan, error) {
	u, err := d.ExchangeCode(ctx, code)
	if err != nil {
		return nil, err
	}
	return d.Scan(ctx, u, opts)
}
