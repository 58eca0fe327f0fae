package offlineflow

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/qrauth/qrauth"
	"github.com/qrauth/qrauth/internal/qrimage"
	"github.com/qrauth/qrauth/offline"
	"github.com/qrauth/qrauth/server"
	"github.com/qrauth/qrauth/wire"
)

// OfflineBeginRequest is the body of POST /api/offline/sessions: exactly
// one of UserID and Email names the user; DeviceID is needed only when the
// user has several phones with the method.
type OfflineBeginRequest struct {
	UserID   qrauth.UserID   `json:"user_id"`
	Email    string          `json:"email"`
	DeviceID qrauth.DeviceID `json:"device_id"`
	Method   string          `json:"method"`
	Context  string          `json:"context"`
}

// DecodeOfflineBeginRequest parses and checks the begin body: strict JSON,
// one way of naming the user, a known method, a context of at most 200
// bytes of UTF-8 without control characters.
func DecodeOfflineBeginRequest(data []byte) (*OfflineBeginRequest, offline.Method, error) {
	var r OfflineBeginRequest
	if err := server.DecodeStrict(data, &r); err != nil {
		return nil, "", server.MalformedBody(err, `The body must be JSON: {"user_id" or "email", "method", "context", optional "device_id"}.`)
	}
	if err := checkUserRef(r.UserID, r.Email); err != nil {
		return nil, "", err
	}
	if r.DeviceID != "" && !qrauth.ValidDeviceID(r.DeviceID) {
		return nil, "", qrauth.Errorf(qrauth.EINVALID, "invalid_device_id", "device_id is not a device id.")
	}
	m, err := offline.ParseMethod(r.Method)
	if err != nil {
		return nil, "", err
	}
	if err := offline.CheckContext(r.Context); err != nil {
		return nil, "", err
	}
	return &r, m, nil
}

// ApprovalRequest is the body of POST /api/approvals.
type ApprovalRequest struct {
	UserID   qrauth.UserID   `json:"user_id"`
	Email    string          `json:"email"`
	DeviceID qrauth.DeviceID `json:"device_id"`
	Text     string          `json:"text"`
}

// DecodeApprovalRequest parses and checks the body of POST /api/approvals.
func DecodeApprovalRequest(data []byte) (*ApprovalRequest, error) {
	var r ApprovalRequest
	if err := server.DecodeStrict(data, &r); err != nil {
		return nil, server.MalformedBody(err, `The body must be JSON: {"user_id" or "email", "text", optional "device_id"}.`)
	}
	if err := checkUserRef(r.UserID, r.Email); err != nil {
		return nil, err
	}
	if r.DeviceID != "" && !qrauth.ValidDeviceID(r.DeviceID) {
		return nil, qrauth.Errorf(qrauth.EINVALID, "invalid_device_id", "device_id is not a device id.")
	}
	if err := offline.CheckApprovalText(r.Text); err != nil {
		return nil, err
	}
	return &r, nil
}

func checkUserRef(id qrauth.UserID, email string) error {
	if (id == "") == (email == "") {
		return qrauth.Errorf(qrauth.EINVALID, "user_required", "Name the user with exactly one of user_id and email.")
	}
	if len(id) > 64 || len(email) > qrauth.MaxEmailLen {
		return qrauth.Errorf(qrauth.EINVALID, "invalid_user", "The user id or e-mail is too long.")
	}
	return nil
}

// findUser returns the user named by id or e-mail. E-mail addresses are
// optional and not unique, so an address that several accounts use is
// refused as ambiguous.
func (o *Flow) findUser(ctx context.Context, id qrauth.UserID, email string) (*qrauth.User, error) {
	if id != "" {
		return o.h.Store().FindUserByID(ctx, id)
	}
	users, err := o.usersByEmail(ctx, email)
	if err != nil {
		return nil, err
	}
	switch len(users) {
	case 0:
		return nil, qrauth.Errorf(qrauth.ENOTFOUND, "user_not_found", "No account has this e-mail address.")
	case 1:
		return users[0], nil
	}
	return nil, qrauth.Errorf(qrauth.ECONFLICT, "ambiguous_email", "Several accounts use this e-mail address; name the user by user_id.")
}

// usersByEmail finds the accounts with an e-mail address, compared without
// regard to case. The store has no e-mail index (the address is an optional
// profile field), so this walks the user list; see docs/offline.md.
func (o *Flow) usersByEmail(ctx context.Context, email string) ([]*qrauth.User, error) {
	email = strings.TrimSpace(email)
	if email == "" {
		return nil, nil
	}
	var out []*qrauth.User
	var after qrauth.UserID
	for {
		page, err := o.h.Store().ListUsers(ctx, after, 1000)
		if err != nil {
			return nil, err
		}
		for _, u := range page {
			if u.Email != "" && strings.EqualFold(u.Email, email) {
				out = append(out, u)
			}
		}
		if len(page) < 1000 {
			return out, nil
		}
		after = page[len(page)-1].ID
	}
}

// newPageToken returns a token for the approval page and its hash.
func (o *Flow) newPageToken() (string, []byte, error) {
	tok, err := qrauth.RandomToken(o.h.Rand(), 32)
	if err != nil {
		return "", nil, qrauth.Internal(err)
	}
	return tok, qrauth.HashToken(tok), nil
}

// handleBegin: POST /api/offline/sessions.
func (o *Flow) handleBegin(c echo.Context) error {
	if _, err := o.requireAPI(c); err != nil {
		return err
	}
	body, err := server.ReadBody(c)
	if err != nil {
		return err
	}
	req, method, err := DecodeOfflineBeginRequest(body)
	if err != nil {
		return err
	}
	ctx := c.Request().Context()
	u, err := o.findUser(ctx, req.UserID, req.Email)
	if err != nil {
		return err
	}
	tok, hash, err := o.newPageToken()
	if err != nil {
		return err
	}
	sess, err := o.begin(ctx, beginRequest{User: u, Device: req.DeviceID, Method: method, Context: req.Context,
		Purpose: offline.ForAPI, ViewTokenHash: hash, IP: c.RealIP()})
	if err != nil {
		return err
	}
	qr, err := qrimage.DataURL(sess.VerificationData)
	if err != nil {
		return qrauth.Internal(err)
	}
	cred, err := o.credential(ctx, sess)
	if err != nil {
		return err
	}
	v := o.viewSession(sess, cred)
	v.QR, v.PageURL = qr, o.h.Origin()+wire.PathApprove+"#"+sess.ID+"."+tok
	return c.JSON(http.StatusCreated, v)
}

// apiSession returns a session begun through the API. Sessions of the
// browser sign-in are not the relying site's and read as missing.
func (o *Flow) apiSession(c echo.Context) (*offline.Session, error) {
	sess, err := o.st.FindOfflineSession(c.Request().Context(), c.Param("id"))
	if err != nil {
		return nil, err
	}
	if sess.Purpose != offline.ForAPI {
		return nil, qrauth.Errorf(qrauth.ENOTFOUND, "offline_session_not_found", "There is no such offline code session.")
	}
	return sess, nil
}

// handleStatus: GET /api/offline/sessions/:id.
func (o *Flow) handleStatus(c echo.Context) error {
	if _, err := o.requireAPI(c); err != nil {
		return err
	}
	sess, err := o.apiSession(c)
	if err != nil {
		return err
	}
	cred, err := o.credential(c.Request().Context(), sess)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, o.viewSession(sess, cred))
}

// otpBody is the body of the verify calls.
type otpBody struct {
	OTP string `json:"otp"`
}

// handleVerify: POST /api/offline/sessions/:id/verify. A right or wrong
// code is an answer (200 with result success or failure); a session that
// can no longer be verified is an error.
func (o *Flow) handleVerify(c echo.Context) error {
	actor, err := o.requireAPI(c)
	if err != nil {
		return err
	}
	var body otpBody
	if err := server.DecodeJSONBody(c, &body); err != nil {
		return err
	}
	sess, err := o.apiSession(c)
	if err != nil {
		return err
	}
	after, cred, err := o.verify(c.Request().Context(), sess, body.OTP, c.RealIP(), actor)
	if err != nil {
		return err
	}
	v := o.viewSession(after, cred)
	v.Result = "failure"
	if after.State == offline.Succeeded {
		v.Result = "success"
	}
	return c.JSON(http.StatusOK, v)
}

// handleCancel: POST /api/offline/sessions/:id/cancel.
func (o *Flow) handleCancel(c echo.Context) error {
	if _, err := o.requireAPI(c); err != nil {
		return err
	}
	sess, err := o.apiSession(c)
	if err != nil {
		return err
	}
	sess, err = o.st.CancelOfflineSession(c.Request().Context(), sess.ID, o.h.Now())
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, o.viewSession(sess, nil))
}

// handleUserMethods lists a user's offline methods (relying sites and
// the admin page).
func (o *Flow) handleUserMethods(c echo.Context, _ string) error {
	ctx := c.Request().Context()
	u, err := o.h.Store().FindUserByID(ctx, qrauth.UserID(c.Param("id")))
	if err != nil {
		return err
	}
	views, err := o.userMethods(ctx, u.ID)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, map[string]any{"user_id": u.ID, "otp_length": o.cfg.OTPLength,
		"max_attempts": o.cfg.MaxAttempts, "methods": views})
}

func (o *Flow) userMethods(ctx context.Context, id qrauth.UserID) ([]offlineMethodView, error) {
	creds, err := o.st.FindOfflineCredentialsByUser(ctx, id)
	if err != nil {
		return nil, err
	}
	devs, err := o.h.Store().FindDevicesByUser(ctx, id)
	if err != nil {
		return nil, err
	}
	names := map[qrauth.DeviceID]string{}
	for _, d := range devs {
		names[d.ID] = d.Name
	}
	views := make([]offlineMethodView, 0, len(creds))
	for _, cr := range creds {
		views = append(views, o.viewMethod(cr, names[cr.DeviceID]))
	}
	return views, nil
}

// unlockBody is the body of the unlock calls.
type unlockBody struct {
	DeviceID qrauth.DeviceID `json:"device_id"`
	Method   string          `json:"method"`
}

// handleUnlock lifts the lock of one method of one of the user's devices
// (and clears its failure count), with an audit event.
func (o *Flow) handleUnlock(c echo.Context, actor string) error {
	var body unlockBody
	if err := server.DecodeJSONBody(c, &body); err != nil {
		return err
	}
	m, err := offline.ParseMethod(body.Method)
	if err != nil {
		return err
	}
	ctx := c.Request().Context()
	uid := qrauth.UserID(c.Param("id"))
	cred, err := o.st.FindOfflineCredential(ctx, body.DeviceID, m)
	if err == nil && cred.UserID != uid {
		err = qrauth.Errorf(qrauth.ENOTFOUND, "offline_method_not_found", "This offline method is not activated on that device.")
	}
	if err != nil {
		return err
	}
	if !cred.Locked && cred.Failures == 0 {
		return qrauth.Errorf(qrauth.ECONFLICT, "not_locked", "%s of this device is not locked.", m)
	}
	cred, err = o.st.UnlockOfflineCredential(ctx, cred.DeviceID, m, &qrauth.AuditEvent{
		Time: o.h.Now(), Type: offline.AuditUnlocked, UserID: uid, DeviceID: cred.DeviceID, IP: c.RealIP(),
		Detail: fmt.Sprintf("%s unlocked by %s (was locked: %v, wrong codes: %d)", m, actor, cred.Locked, cred.Failures),
	})
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, map[string]any{"method": o.viewMethod(cred, "")})
}

// approvalView is an online transaction as the relying site sees it.
type approvalView struct {
	ID         string                `json:"id"`
	Status     offline.ApprovalState `json:"status"`
	UserID     qrauth.UserID         `json:"user_id"`
	DeviceID   qrauth.DeviceID       `json:"device_id,omitempty"`
	Text       string                `json:"text"`
	TextSHA256 string                `json:"text_sha256"`
	CreatedAt  time.Time             `json:"created_at"`
	ExpiresAt  time.Time             `json:"expires_at"`
	Scanned    bool                  `json:"scanned"`
	DecidedAt  *time.Time            `json:"decided_at,omitempty"`
	DecidedBy  qrauth.DeviceID       `json:"decided_by,omitempty"`
	Signature  string                `json:"signature,omitempty"`
	// SignedBytes is what DecidedBy signed, for anyone who wants to check
	// Signature against the device's public key.
	SignedBytes string `json:"signed_bytes,omitempty"`
	URL         string `json:"url,omitempty"`
	QR          string `json:"qr,omitempty"`
	PageURL     string `json:"page_url,omitempty"`
}

func (o *Flow) viewApproval(a *offline.Approval) approvalView {
	v := approvalView{ID: a.ID, Status: a.Status(o.h.Now()), UserID: a.UserID, DeviceID: a.DeviceID, Text: a.Text,
		TextSHA256: a.TextSHA256, CreatedAt: a.CreatedAt, ExpiresAt: a.ExpiresAt, Scanned: a.ScannedBy != "",
		DecidedBy: a.DecidedBy, Signature: a.Signature}
	if !a.DecidedAt.IsZero() {
		t := a.DecidedAt
		v.DecidedAt = &t
	}
	if a.Signature != "" {
		d := o.transactionDecision(a, a.DecidedBy, a.State)
		v.SignedBytes = string(d.SignedBytes())
	}
	return v
}

// transactionDecision is what a device signs to decide a.
func (o *Flow) transactionDecision(a *offline.Approval, dev qrauth.DeviceID, st offline.ApprovalState) wire.TransactionDecision {
	d := wire.TransactionDecision{Origin: o.h.Origin(), TransactionID: a.ID, TextSHA256: a.TextSHA256,
		DeviceID: dev, Decision: wire.DecisionDeny}
	if st == offline.ApprovalApproved {
		d.Decision = wire.DecisionApprove
	}
	return d
}

// handleCreateApproval: POST /api/approvals.
func (o *Flow) handleCreateApproval(c echo.Context) error {
	if _, err := o.requireAPI(c); err != nil {
		return err
	}
	body, err := server.ReadBody(c)
	if err != nil {
		return err
	}
	req, err := DecodeApprovalRequest(body)
	if err != nil {
		return err
	}
	ctx := c.Request().Context()
	u, err := o.findUser(ctx, req.UserID, req.Email)
	if err != nil {
		return err
	}
	// Its phones would refuse to show the transaction anyway.
	if err := u.CheckEnabled(); err != nil {
		return err
	}
	if req.DeviceID != "" {
		d, err := o.h.Store().FindDeviceByID(ctx, req.DeviceID)
		if err == nil && d.UserID != u.ID {
			err = qrauth.Errorf(qrauth.ENOTFOUND, "device_not_found", "That device does not belong to this user.")
		}
		if err != nil {
			return err
		}
	}
	id, err := qrauth.RandomToken(o.h.Rand(), 16)
	if err != nil {
		return qrauth.Internal(err)
	}
	view, viewHash, err := o.newPageToken()
	if err != nil {
		return err
	}
	tok := approvalQRToken(view)
	now := o.h.Now()
	a := &offline.Approval{ID: "t_" + id, UserID: u.ID, DeviceID: req.DeviceID, Text: req.Text,
		TextSHA256: wire.TextSHA256(req.Text), TokenHash: qrauth.HashToken(tok), ViewTokenHash: viewHash,
		State: offline.ApprovalPending, IP: c.RealIP(), CreatedAt: now, ExpiresAt: now.Add(o.cfg.ApprovalTTL)}
	if err := o.st.CreateApproval(ctx, a); err != nil {
		return err
	}
	o.purge(ctx)
	v := o.viewApproval(a)
	v.URL = o.h.Origin() + wire.Prefix(wire.PathTransactionScan) + tok
	if v.QR, err = qrimage.DataURL(v.URL); err != nil {
		return qrauth.Internal(err)
	}
	v.PageURL = o.h.Origin() + wire.PathApprove + "#" + a.ID + "." + view
	return c.JSON(http.StatusCreated, v)
}

// approvalQRToken derives the token in a transaction's QR code from the
// token of its approval page, one way: the page can have its QR code drawn
// again, while the QR code (seen by anyone near the screen) does not open
// the page. Only the hashes of both are stored.
func approvalQRToken(pageToken string) string {
	sum := sha256.Sum256([]byte("qrauth-v1 transaction-qr\n" + pageToken))
	return base64.RawURLEncoding.EncodeToString(sum[:16])
}

// maxApprovalWait bounds a long poll of an approval's status.
const maxApprovalWait = 25 * time.Second

// waitParam reads ?wait=SECONDS (0 to 25).
func waitParam(c echo.Context) (time.Duration, error) {
	w := c.QueryParam("wait")
	if w == "" {
		return 0, nil
	}
	n, err := strconv.Atoi(w)
	if err != nil || n < 0 || time.Duration(n)*time.Second > maxApprovalWait {
		return 0, qrauth.Errorf(qrauth.EINVALID, "invalid_wait", "wait must be 0 to %d seconds.", int(maxApprovalWait/time.Second))
	}
	return time.Duration(n) * time.Second, nil
}

// awaitApproval reads approval id, waiting up to wait for it to leave
// pending (or for its scan, when it was not scanned yet and scanned is
// false), so that a relying site or page need not poll in a tight loop.
func (o *Flow) awaitApproval(ctx context.Context, id string, wait time.Duration, scanned bool) (*offline.Approval, error) {
	var timeout <-chan time.Time
	if wait > 0 {
		t := time.NewTimer(wait)
		defer t.Stop()
		timeout = t.C
	}
	// In a cluster the phone's scan or decision may reach another
	// instance, whose notify wakes nobody here: read again every so often.
	var recheck <-chan time.Time
	if d := o.h.Recheck(); d > 0 && wait > 0 {
		t := time.NewTicker(d)
		defer t.Stop()
		recheck = t.C
	}
	for {
		ch, done := o.wait.add(id)
		a, err := o.st.FindApproval(ctx, id)
		if err != nil || wait == 0 || a.Status(o.h.Now()) != offline.ApprovalPending || (a.ScannedBy != "") != scanned {
			done()
			return a, err
		}
		select {
		case <-ch:
			done()
		case <-recheck:
			done()
		case <-timeout:
			done()
			return a, nil
		case <-ctx.Done():
			done()
			return a, nil
		case <-o.onShutdown():
			done()
			return a, nil
		}
	}
}

// handleApprovalStatus: GET /api/approvals/:id[?wait=SECONDS].
func (o *Flow) handleApprovalStatus(c echo.Context) error {
	if _, err := o.requireAPI(c); err != nil {
		return err
	}
	wait, err := waitParam(c)
	if err != nil {
		return err
	}
	a, err := o.awaitApproval(c.Request().Context(), c.Param("id"), wait, c.QueryParam("scanned") == "true")
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, o.viewApproval(a))
}

// handleCancelApproval: POST /api/approvals/:id/cancel.
func (o *Flow) handleCancelApproval(c echo.Context) error {
	if _, err := o.requireAPI(c); err != nil {
		return err
	}
	id := c.Param("id")
	a, err := o.st.DecideApproval(c.Request().Context(), id, offline.ApprovalDecision{State: offline.ApprovalCancelled, At: o.h.Now()})
	if err != nil {
		return err
	}
	o.wait.notify(id)
	return c.JSON(http.StatusOK, o.viewApproval(a))
}
