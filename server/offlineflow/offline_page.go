package offlineflow

import (
	"cmp"
	"context"
	"crypto/subtle"
	"net/http"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/labstack/echo/v4"
	"github.com/qrauth/qrauth"
	"github.com/qrauth/qrauth/internal/qrimage"
	"github.com/qrauth/qrauth/offline"
	"github.com/qrauth/qrauth/server"
	"github.com/qrauth/qrauth/wire"
)

// The browser side: the "sign in with a code" page (/offline) and the
// transaction approval page (/approve).

func (o *Flow) handleOfflinePage(c echo.Context) error {
	if err := o.h.EnsureBindCookie(c); err != nil {
		return err
	}
	return o.h.ServePage(c, "offline.html")
}

func (o *Flow) handleApprovePage(c echo.Context) error {
	return o.h.ServePage(c, "approve.html")
}

// signInBeginBody is the body of POST /api/offline/signin.
type signInBeginBody struct {
	// Identifier is the e-mail address of the account or its user id.
	Identifier string `json:"identifier"`
	// Choice picks another of the account's phones and methods: the
	// usable ones are tried in order of last use, and Choice counts on
	// from the first, round and round.
	Choice int `json:"choice"`
}

var errNoOfflineMethod = qrauth.Errorf(qrauth.ENOTFOUND, "no_offline_method",
	"No phone with offline codes is set up for that account. Check the e-mail address, sign in with the QR code instead, "+
		"or turn on offline codes in the app while the phone is online.")

// signInUser finds the account a person named on the sign-in page. Unknown
// accounts and accounts without offline codes get the same answer.
func (o *Flow) signInUser(ctx context.Context, ident string) (*qrauth.User, []*offline.Credential, error) {
	ident = strings.TrimSpace(ident)
	var users []*qrauth.User
	switch {
	case ident == "" || len(ident) > qrauth.MaxEmailLen:
		return nil, nil, qrauth.Errorf(qrauth.EINVALID, "invalid_identifier", "Enter the e-mail address of your account.")
	case strings.HasPrefix(ident, "u_") && !strings.Contains(ident, "@"):
		u, err := o.h.Store().FindUserByID(ctx, qrauth.UserID(ident))
		if qrauth.ErrorCode(err) == qrauth.ENOTFOUND {
			return nil, nil, errNoOfflineMethod
		} else if err != nil {
			return nil, nil, err
		}
		users = []*qrauth.User{u}
	case strings.Contains(ident, "@"):
		var err error
		if users, err = o.usersByEmail(ctx, ident); err != nil {
			return nil, nil, err
		}
	default:
		return nil, nil, qrauth.Errorf(qrauth.EINVALID, "invalid_identifier", "Enter the e-mail address of your account.")
	}
	// An address used by several accounts is fine as long as only one of
	// them has offline codes.
	var found *qrauth.User
	var creds []*offline.Credential
	for _, u := range users {
		cs, err := o.st.FindOfflineCredentialsByUser(ctx, u.ID)
		if err != nil {
			return nil, nil, err
		}
		// A disabled account is answered like one without offline codes:
		// the page names no account to whoever types an address.
		if len(cs) == 0 || u.CheckEnabled() != nil {
			continue
		}
		if found != nil {
			return nil, nil, qrauth.Errorf(qrauth.ECONFLICT, "ambiguous_email",
				"Several accounts use this e-mail address. Sign in with the QR code, or enter your account id (shown on your account page).")
		}
		found, creds = u, cs
	}
	if found == nil {
		return nil, nil, errNoOfflineMethod
	}
	return found, creds, nil
}

// signInContext is the context shown on the phone for a browser sign-in.
func (o *Flow) signInContext() string {
	s := "Sign in to " + o.originHost()
	for len(s) > offline.ContextLimit(s) {
		_, n := utf8.DecodeLastRuneInString(s)
		s = s[:len(s)-n]
	}
	return s
}

// signInView is the answer to the sign-in page.
type signInView struct {
	ID                string         `json:"id"`
	QR                string         `json:"qr"`
	Context           string         `json:"context"`
	Method            offline.Method `json:"method"`
	DeviceName        string         `json:"device_name"`
	OTPLength         int            `json:"otp_length"`
	RemainingAttempts int            `json:"remaining_attempts"`
	Choices           int            `json:"choices"`
	Choice            int            `json:"choice"`
	ExpiresAt         time.Time      `json:"expires_at"`
}

// handleSignInBegin: POST /api/offline/signin. It starts a code session
// bound to this browser for the account named.
func (o *Flow) handleSignInBegin(c echo.Context) error {
	bind, err := o.h.BindValue(c)
	if err != nil {
		return err
	}
	if ok, wait := o.begins.Allow(c.RealIP(), o.h.Now()); !ok {
		return server.RateLimited(c, wait, "rate_limited", "Too many sign-in codes from this address. Wait a moment and try again.")
	}
	var body signInBeginBody
	if err := server.DecodeJSONBody(c, &body); err != nil {
		return err
	}
	if body.Choice < 0 || body.Choice > 100 {
		return qrauth.Errorf(qrauth.EINVALID, "invalid_choice", "choice must be 0 to 100.")
	}
	ctx := c.Request().Context()
	u, creds, err := o.signInUser(ctx, body.Identifier)
	if err != nil {
		return err
	}
	var usable []*offline.Credential
	for _, cr := range creds {
		if !cr.Locked {
			usable = append(usable, cr)
		}
	}
	if len(usable) == 0 {
		return qrauth.Errorf(qrauth.ECONFLICT, "method_locked",
			"Offline codes are locked for this account after too many wrong codes. Sign in with the QR code instead (it still works), "+
				"or ask an administrator to unlock them.")
	}
	// The phone used last comes first: most people have one phone and
	// use one method.
	slices.SortStableFunc(usable, func(a, b *offline.Credential) int {
		if c := b.LastUsedAt.Compare(a.LastUsedAt); c != 0 {
			return c
		}
		if c := b.ActivatedAt.Compare(a.ActivatedAt); c != 0 {
			return c
		}
		return cmp.Compare(a.Method, b.Method)
	})
	cred := usable[body.Choice%len(usable)]
	sess, err := o.begin(ctx, beginRequest{User: u, Device: cred.DeviceID, Method: cred.Method, Context: o.signInContext(),
		Purpose: offline.ForSignIn, BindHash: qrauth.HashToken(bind), IP: c.RealIP()})
	if err != nil {
		return err
	}
	qr, err := qrimage.DataURL(sess.VerificationData)
	if err != nil {
		return qrauth.Internal(err)
	}
	name := "Phone"
	if d, err := o.h.Store().FindDeviceByID(ctx, cred.DeviceID); err == nil {
		name = d.Name
	}
	return c.JSON(http.StatusOK, signInView{ID: sess.ID, QR: qr, Context: o.signInContext(), Method: cred.Method, DeviceName: name,
		OTPLength: o.cfg.OTPLength, RemainingAttempts: o.remaining(cred), Choices: len(usable), Choice: body.Choice % len(usable),
		ExpiresAt: sess.ExpiresAt})
}

// signInSession returns the browser's own sign-in session. Another
// browser's session, or one begun by a relying site, reads as missing.
func (o *Flow) signInSession(c echo.Context) (*offline.Session, error) {
	missing := qrauth.Errorf(qrauth.ENOTFOUND, "offline_session_not_found", "This code is no longer valid. Start again.")
	bind, err := o.h.BindValue(c)
	if err != nil {
		return nil, err
	}
	sess, err := o.st.FindOfflineSession(c.Request().Context(), c.Param("id"))
	if qrauth.ErrorCode(err) == qrauth.ENOTFOUND {
		return nil, missing
	} else if err != nil {
		return nil, err
	}
	if sess.Purpose != offline.ForSignIn || subtle.ConstantTimeCompare(sess.BindHash, qrauth.HashToken(bind)) != 1 {
		return nil, missing
	}
	return sess, nil
}

// handleSignInVerify: POST /api/offline/signin/:id/verify. A right code
// continues the sign-in like any first step (gates may ask for more).
func (o *Flow) handleSignInVerify(c echo.Context) error {
	var body otpBody
	if err := server.DecodeJSONBody(c, &body); err != nil {
		return err
	}
	sess, err := o.signInSession(c)
	if err != nil {
		return err
	}
	after, cred, err := o.verify(c.Request().Context(), sess, body.OTP, c.RealIP(), "browser")
	if err != nil {
		return err
	}
	if after.State != offline.Succeeded {
		return o.attemptError(after, cred)
	}
	return o.h.ContinueSignIn(c, &server.SignIn{UserID: after.UserID, DeviceID: after.DeviceID, IP: c.RealIP(),
		UserAgent: c.Request().UserAgent(), Methods: []string{MethodOffline}})
}

// handleSignInCancel: POST /api/offline/signin/:id/cancel, when the person
// starts over.
func (o *Flow) handleSignInCancel(c echo.Context) error {
	sess, err := o.signInSession(c)
	if err != nil {
		return err
	}
	if _, err := o.st.CancelOfflineSession(c.Request().Context(), sess.ID, o.h.Now()); err != nil {
		return err
	}
	return c.NoContent(http.StatusNoContent)
}

// pageBody is the body of the approval page's calls. Token is what follows
// "#" in the page URL: an offline session id or a transaction id, a dot,
// and the page token. The fragment never reaches a server log or a
// Referer header.
type pageBody struct {
	Token string `json:"token"`
	OTP   string `json:"otp,omitempty"`
	// Wait (seconds, at most 25) makes a view of a pending online
	// transaction wait for its next change; Scanned says whether the page
	// already knows it was scanned.
	Wait    int  `json:"wait,omitempty"`
	Scanned bool `json:"scanned,omitempty"`
}

var errBadPageToken = qrauth.Errorf(qrauth.ENOTFOUND, "invalid_page_link",
	"This approval link is not valid. Go back to the site that sent you here.")

func splitPageToken(tok string) (id, secret string, ok bool) {
	id, secret, ok = strings.Cut(tok, ".")
	if !ok || len(id) < 3 || len(id) > 64 || !qrauth.ValidToken(id, 0, len(id)) || len(secret) != 43 || !qrauth.ValidToken(secret, 0, len(secret)) {
		return "", "", false
	}
	return id, secret, true
}

// pageView is what the approval page shows. A field of one kind only is
// present, false or 0 included, exactly in the views of that kind; qr is
// present only while the code can be used (docs/offline.md).
type pageView struct {
	Kind              string    `json:"kind"` // "offline" or "online"
	Text              string    `json:"text"`
	QR                string    `json:"qr,omitempty"`
	Status            string    `json:"status"`
	OTPLength         *int      `json:"otp_length,omitempty"`         // offline
	RemainingAttempts *int      `json:"remaining_attempts,omitempty"` // offline
	Scanned           *bool     `json:"scanned,omitempty"`            // online
	ExpiresAt         time.Time `json:"expires_at"`
}

// handlePageView: POST /api/approve/view.
func (o *Flow) handlePageView(c echo.Context) error {
	var body pageBody
	if err := server.DecodeJSONBody(c, &body); err != nil {
		return err
	}
	id, secret, ok := splitPageToken(body.Token)
	if !ok {
		return errBadPageToken
	}
	ctx := c.Request().Context()
	if strings.HasPrefix(id, "o_") {
		sess, err := o.pageSession(ctx, id, secret)
		if err != nil {
			return err
		}
		cred, err := o.credential(ctx, sess)
		if err != nil {
			return err
		}
		return c.JSON(http.StatusOK, o.offlinePageView(sess, cred))
	}
	if body.Wait < 0 || time.Duration(body.Wait)*time.Second > maxApprovalWait {
		return qrauth.Errorf(qrauth.EINVALID, "invalid_wait", "wait must be 0 to 25 seconds.")
	}
	a, err := o.st.FindApproval(ctx, id)
	if err != nil || subtle.ConstantTimeCompare(a.ViewTokenHash, qrauth.HashToken(secret)) != 1 {
		if err != nil && qrauth.ErrorCode(err) != qrauth.ENOTFOUND {
			return err
		}
		return errBadPageToken
	}
	if a, err = o.awaitApproval(ctx, id, time.Duration(body.Wait)*time.Second, body.Scanned); err != nil {
		return err
	}
	scanned := a.ScannedBy != ""
	v := pageView{Kind: "online", Text: a.Text, Status: string(a.Status(o.h.Now())), Scanned: &scanned, ExpiresAt: a.ExpiresAt}
	if v.Status == string(offline.ApprovalPending) {
		// The QR code is shown only while it can be used.
		if v.QR, err = qrimage.DataURL(o.h.Origin() + wire.Prefix(wire.PathTransactionScan) + approvalQRToken(secret)); err != nil {
			return qrauth.Internal(err)
		}
	}
	return c.JSON(http.StatusOK, v)
}

func (o *Flow) offlinePageView(sess *offline.Session, cred *offline.Credential) pageView {
	v := o.viewSession(sess, cred)
	pv := pageView{Kind: "offline", Text: v.Context, Status: string(v.Status), OTPLength: &v.OTPLength,
		RemainingAttempts: &v.RemainingAttempts, ExpiresAt: v.ExpiresAt}
	if v.Status == offline.Pending {
		pv.QR, _ = qrimage.DataURL(sess.VerificationData)
	}
	return pv
}

// pageSession returns the API session a page token opens.
func (o *Flow) pageSession(ctx context.Context, id, secret string) (*offline.Session, error) {
	sess, err := o.st.FindOfflineSession(ctx, id)
	if err != nil || sess.Purpose != offline.ForAPI ||
		subtle.ConstantTimeCompare(sess.ViewTokenHash, qrauth.HashToken(secret)) != 1 {
		if err != nil && qrauth.ErrorCode(err) != qrauth.ENOTFOUND {
			return nil, err
		}
		return nil, errBadPageToken
	}
	return sess, nil
}

// handlePageVerify: POST /api/approve/verify, the code typed on the
// approval page of an offline transaction. The relying site learns the
// outcome from the session's status.
func (o *Flow) handlePageVerify(c echo.Context) error {
	var body pageBody
	if err := server.DecodeJSONBody(c, &body); err != nil {
		return err
	}
	id, secret, ok := splitPageToken(body.Token)
	if !ok || !strings.HasPrefix(id, "o_") {
		return errBadPageToken
	}
	ctx := c.Request().Context()
	sess, err := o.pageSession(ctx, id, secret)
	if err != nil {
		return err
	}
	after, cred, err := o.verify(ctx, sess, body.OTP, c.RealIP(), "approval page")
	if err != nil {
		return err
	}
	if after.State != offline.Succeeded {
		return o.attemptError(after, cred)
	}
	return c.JSON(http.StatusOK, o.offlinePageView(after, cred))
}
