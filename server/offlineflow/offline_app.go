package offlineflow

import (
	"encoding/base64"
	"fmt"
	"io"
	"net/http"

	"github.com/labstack/echo/v4"
	"github.com/qrauth/qrauth"
	"github.com/qrauth/qrauth/offline"
	"github.com/qrauth/qrauth/server"
	"github.com/qrauth/qrauth/wire"
)

// The phone's calls of the offline flow. Each is signed with the device key
// (authenticateDevice): a PhoneIdHash or a device id alone never activates
// anything.

// methodParam reads the method of the path with the same spellings as
// every other place a method is given (offline.ParseMethod): the
// canonical OFFLINE_DEVICE and OFFLINE_PIN, and the aliases docs/offline.md
// lists.
func (o *Flow) methodParam(c echo.Context) (offline.Method, error) {
	return offline.ParseMethod(c.Param("method"))
}

// handleAppActivate: POST /api/app/offline/:method. The server draws the
// method key, keeps it sealed under the master key, and returns it this
// once. Activating again replaces the key (codes of sessions begun under
// the old one fail), except while the method is locked.
func (o *Flow) handleAppActivate(c echo.Context) error {
	dev, err := o.h.AuthenticateDevice(c)
	if err != nil {
		return err
	}
	m, err := o.methodParam(c)
	if err != nil {
		return err
	}
	key := make([]byte, offline.KeySize)
	if _, err := io.ReadFull(o.h.Rand(), key); err != nil {
		return qrauth.Internal(err)
	}
	defer clear(key)
	keyID, err := qrauth.RandomToken(o.h.Rand(), 9)
	if err != nil {
		return qrauth.Internal(err)
	}
	sealed, err := o.sealer.Seal(key, keyAD(dev.UserID, dev.ID, m))
	if err != nil {
		return err
	}
	now := o.h.Now()
	cred := &offline.Credential{UserID: dev.UserID, DeviceID: dev.ID, Method: m, SealedKey: sealed, KeyID: keyID, ActivatedAt: now}
	if err := o.st.PutOfflineCredential(c.Request().Context(), cred, &qrauth.AuditEvent{
		Time: now, Type: offline.AuditActivated, UserID: dev.UserID, DeviceID: dev.ID, IP: c.RealIP(),
		Detail: fmt.Sprintf("%s activated on %s", m, dev.Name),
	}); err != nil {
		return err
	}
	return c.JSON(http.StatusOK, wire.OfflineActivation{Method: m, DeviceID: dev.ID, UserID: dev.UserID, Origin: o.h.Origin(),
		Key: base64.RawURLEncoding.EncodeToString(key), KeyID: keyID, OTPLength: o.cfg.OTPLength,
		MaxAttempts: o.cfg.MaxAttempts, ActivatedAt: now})
}

// handleAppDeactivate: DELETE /api/app/offline/:method.
func (o *Flow) handleAppDeactivate(c echo.Context) error {
	dev, err := o.h.AuthenticateDevice(c)
	if err != nil {
		return err
	}
	m, err := o.methodParam(c)
	if err != nil {
		return err
	}
	if err := o.st.DeleteOfflineCredential(c.Request().Context(), dev.ID, m, &qrauth.AuditEvent{
		Time: o.h.Now(), Type: offline.AuditDeactivated, UserID: dev.UserID, DeviceID: dev.ID, IP: c.RealIP(),
		Detail: fmt.Sprintf("%s turned off on %s", m, dev.Name),
	}); err != nil {
		return err
	}
	return c.NoContent(http.StatusNoContent)
}

// handleAppListMethods: GET /api/app/offline, the device's own methods.
func (o *Flow) handleAppListMethods(c echo.Context) error {
	dev, err := o.h.AuthenticateDevice(c)
	if err != nil {
		return err
	}
	creds, err := o.st.FindOfflineCredentialsByUser(c.Request().Context(), dev.UserID)
	if err != nil {
		return err
	}
	out := []wire.OfflineMethodInfo{}
	for _, cr := range creds {
		if cr.DeviceID == dev.ID {
			out = append(out, wire.OfflineMethodInfo{Method: cr.Method, KeyID: cr.KeyID, Locked: cr.Locked,
				RemainingAttempts: o.remaining(cr), ActivatedAt: cr.ActivatedAt, LastUsedAt: cr.LastUsedAt})
		}
	}
	return c.JSON(http.StatusOK, wire.OfflineMethodList{Methods: out, OTPLength: o.cfg.OTPLength, MaxAttempts: o.cfg.MaxAttempts})
}

// appApproval returns the transaction of the token in the path, checked
// to be for the calling device's account (and device, when the relying
// site chose one).
func (o *Flow) appApproval(c echo.Context, dev *qrauth.Device) (*offline.Approval, error) {
	tok := c.Param("token")
	if len(tok) < 22 || len(tok) > 64 || !qrauth.ValidToken(tok, 0, len(tok)) {
		return nil, qrauth.Errorf(qrauth.EINVALID, "malformed_token", "This is not a transaction code.")
	}
	a, err := o.st.FindApprovalByTokenHash(c.Request().Context(), qrauth.HashToken(tok))
	if err != nil {
		return nil, err
	}
	if a.UserID != dev.UserID || (a.DeviceID != "" && a.DeviceID != dev.ID) {
		return nil, qrauth.Errorf(qrauth.EFORBIDDEN, "not_your_transaction",
			"This transaction is for another account or another phone. Do not approve it.")
	}
	return a, nil
}

// handleAppApproval: GET /api/app/approvals/:token. The phone fetches the
// text to show; the first fetch marks the transaction scanned.
func (o *Flow) handleAppApproval(c echo.Context) error {
	dev, err := o.h.AuthenticateDevice(c)
	if err != nil {
		return err
	}
	a, err := o.appApproval(c, dev)
	if err != nil {
		return err
	}
	if a, err = o.st.ScanApproval(c.Request().Context(), a.ID, dev.ID, o.h.Now()); err != nil {
		return err
	}
	o.wait.notify(a.ID)
	return c.JSON(http.StatusOK, wire.TransactionInfo{ID: a.ID, Origin: o.h.Origin(), Text: a.Text,
		TextSHA256: a.TextSHA256, CreatedAt: a.CreatedAt, ExpiresAt: a.ExpiresAt})
}

// handleAppDecide: POST /api/app/approvals/:token. Besides the request
// signature, the body carries the device's signature over the
// TransactionDecision (origin, transaction id, SHA-256 of the text,
// device, decision), which is stored as the record of what was approved.
func (o *Flow) handleAppDecide(c echo.Context) error {
	dev, err := o.h.AuthenticateDevice(c)
	if err != nil {
		return err
	}
	body, err := server.ReadBody(c)
	if err != nil {
		return err
	}
	req, err := wire.DecodeTransactionDecisionRequest(body)
	if err != nil {
		return err
	}
	a, err := o.appApproval(c, dev)
	if err != nil {
		return err
	}
	st := offline.ApprovalDenied
	typ := offline.AuditApprovalDenied
	if req.Decision == wire.DecisionApprove {
		st, typ = offline.ApprovalApproved, offline.AuditApprovalApproved
	}
	d := o.transactionDecision(a, dev.ID, st)
	if err := d.Verify(dev.PublicKey, req.Signature); err != nil {
		return err
	}
	now := o.h.Now()
	a, err = o.st.DecideApproval(c.Request().Context(), a.ID, offline.ApprovalDecision{
		State: st, DeviceID: dev.ID, Signature: req.Signature, At: now,
	}, &qrauth.AuditEvent{Time: now, Type: typ, UserID: dev.UserID, DeviceID: dev.ID, IP: c.RealIP(),
		Detail: fmt.Sprintf("transaction %s, text sha256 %s", a.ID, a.TextSHA256)})
	if err != nil {
		return err
	}
	o.wait.notify(a.ID)
	return c.JSON(http.StatusOK, wire.TransactionDecisionResponse{ID: a.ID, Status: a.State})
}
