package oathflow

import (
	"fmt"
	"net/http"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/qrauth/qrauth"
	"github.com/qrauth/qrauth/internal/qrimage"
	"github.com/qrauth/qrauth/oath"
	"github.com/qrauth/qrauth/server"
)

// oathAccountView is what a user (and, with the admin fields, an
// administrator) learns about an OATH account. Never the secret.
type oathAccountView struct {
	Active    bool           `json:"active"`
	Pending   bool           `json:"pending"`
	TokenID   string         `json:"token_id,omitempty"`
	Kind      oath.Kind      `json:"kind,omitempty"`
	Algorithm oath.Algorithm `json:"algorithm,omitempty"`
	Digits    int            `json:"digits,omitempty"`
	Period    int            `json:"period,omitempty"`
	Source    string         `json:"source,omitempty"`
	// Dates that have not happened (not activated, never used) are
	// omitted, never Go's zero time.
	CreatedAt   time.Time `json:"created_at,omitzero"`
	ActivatedAt time.Time `json:"activated_at,omitzero"`
	LastUsedAt  time.Time `json:"last_used_at,omitzero"`
	Locked      bool      `json:"locked"`

	// For administrators.
	Failures    *int       `json:"failures,omitempty"`
	LockedAt    *time.Time `json:"locked_at,omitempty"`
	Offset      *int64     `json:"offset,omitempty"`
	NextCounter *uint64    `json:"next_counter,omitempty"`
}

func viewOATH(a *oath.Account, admin bool) *oathAccountView {
	if a == nil {
		return nil
	}
	v := &oathAccountView{Active: a.Active(), Pending: a.Pending != nil, Locked: a.Locked(),
		ActivatedAt: a.ActivatedAt, LastUsedAt: a.LastUsedAt}
	if t := a.Token; t != nil {
		v.TokenID, v.Kind, v.Algorithm, v.Digits, v.Period, v.Source, v.CreatedAt =
			t.ID, t.Kind, t.Algorithm, t.Digits, t.Period, t.Source, t.CreatedAt
	}
	if admin {
		v.Failures, v.Offset, v.NextCounter = &a.Failures, &a.Offset, &a.NextCounter
		if !a.LockedAt.IsZero() {
			v.LockedAt = &a.LockedAt
		}
	}
	return v
}

// oathKeyView shows a secret to the person who will put it into an app
// (or to a secret viewer).
type oathKeyView struct {
	TokenID   string         `json:"token_id"`
	URI       string         `json:"uri"`
	QR        string         `json:"qr"` // PNG data URL of URI
	Secret    string         `json:"secret"`
	Hex       string         `json:"hex,omitempty"`
	Kind      oath.Kind      `json:"kind"`
	Algorithm oath.Algorithm `json:"algorithm"`
	Digits    int            `json:"digits"`
	Period    int            `json:"period,omitempty"`
	Issuer    string         `json:"issuer"`
	Account   string         `json:"account"`
	// Reused is true when an existing active secret is shown again.
	Reused bool `json:"reused"`
	// NeedsCode is true while the token waits for its first code.
	NeedsCode bool `json:"needs_code"`
}

func (f *Flow) viewOATHKey(u *qrauth.User, t *oath.Token, secret []byte) (*oathKeyView, error) {
	k, err := oathURI(t, secret, f.cfg.Issuer, oathAccountName(u))
	if err != nil {
		return nil, err
	}
	qr, err := qrimage.DataURL(k.URI)
	if err != nil {
		return nil, qrauth.Internal(err)
	}
	return &oathKeyView{TokenID: t.ID, URI: k.URI, QR: qr, Secret: k.Secret, Kind: t.Kind, Algorithm: t.Algorithm,
		Digits: t.Digits, Period: t.Period, Issuer: k.Issuer, Account: k.Account}, nil
}

// tokenDetail describes a token for the audit log.
func tokenDetail(t *oath.Token) string {
	d := fmt.Sprintf("token %s (%s %s, %d digits", t.ID, t.Kind, t.Algorithm, t.Digits)
	if t.Period > 0 {
		d += fmt.Sprintf(", %ds", t.Period)
	}
	return d + ")"
}

// enrolOATH starts an enrolment for u: a new pending token, or, with
// KeepSecret and an active TOTP token, that token's secret again.
func (f *Flow) enrolOATH(c echo.Context, u *qrauth.User, kind oath.Kind, source string) (*oathKeyView, error) {
	ctx := c.Request().Context()
	cfg := &f.cfg
	a, err := f.findOATH(ctx, u.ID)
	if err != nil {
		return nil, err
	}
	if a.Active() && source == oath.SourceSignIn {
		return nil, qrauth.Errorf(qrauth.ECONFLICT, "oath_exists", "This account already has an authenticator: enter its code.")
	}
	if a.Active() && cfg.KeepSecret {
		if a.Token.Kind != oath.TOTP {
			return nil, qrauth.Errorf(qrauth.ECONFLICT, "oath_exists",
				"You already have a counter-based (HOTP) authenticator, which cannot be shared by two apps. Ask an administrator to remove it first.")
		}
		secret, err := cfg.openSecret(u.ID, a.Token)
		if err != nil {
			return nil, err
		}
		defer clear(secret)
		v, err := f.viewOATHKey(u, a.Token, secret)
		if err != nil {
			return nil, err
		}
		v.Reused = true
		if err := f.h.Store().AppendAudit(ctx, &qrauth.AuditEvent{Time: f.h.Now(), Type: oath.AuditSecretViewed,
			UserID: u.ID, IP: c.RealIP(), Detail: tokenDetail(a.Token) + " shown again to the user to add another app"}); err != nil {
			return nil, err
		}
		return v, nil
	}
	if kind == "" {
		kind = cfg.Kind
	}
	t, secret, err := cfg.newOATHToken(f.h.Rand(), u.ID, kind, source, f.h.Now())
	if err != nil {
		return nil, err
	}
	defer clear(secret)
	if _, err := f.st.PutOATHPending(ctx, u.ID, t); err != nil {
		return nil, err
	}
	v, err := f.viewOATHKey(u, t, secret)
	if err != nil {
		return nil, err
	}
	v.NeedsCode = true
	return v, nil
}

var errOATHNoEnrolment = qrauth.Errorf(qrauth.ECONFLICT, "oath_no_enrolment",
	"There is no enrolment waiting for a code. Start the set-up again.")

// confirmOATH activates the user's pending token with its first code.
func (f *Flow) confirmOATH(c echo.Context, uid qrauth.UserID, code string, how string) (*oath.Account, error) {
	ctx := c.Request().Context()
	cfg := &f.cfg
	a, err := f.findOATH(ctx, uid)
	if err != nil {
		return nil, err
	} else if a == nil || a.Pending == nil {
		return nil, errOATHNoEnrolment
	}
	t := a.Pending
	code, err = oath.NormalizeCode(code, t.Digits)
	if err != nil {
		return nil, err
	}
	secret, err := cfg.openSecret(uid, t)
	if err != nil {
		return nil, err
	}
	defer clear(secret)
	now := f.h.Now()
	// A new token has no drift and no used codes yet.
	m, err := cfg.match(t, secret, code, 0, 0, now)
	if err != nil {
		return nil, err
	}
	return f.st.ActivateOATHPending(ctx, uid, oath.Use{TokenID: t.ID, Counter: m.Counter, Offset: m.Offset, At: now},
		&qrauth.AuditEvent{Time: now, Type: oath.AuditSecretAdded, UserID: uid, IP: c.RealIP(),
			Detail: tokenDetail(t) + " enrolled by the user " + how})
}

// verifyOATH checks a sign-in code against the user's active token,
// counting a wrong one and locking at the limit.
func (f *Flow) verifyOATH(c echo.Context, a *oath.Account, code string) error {
	ctx := c.Request().Context()
	cfg := &f.cfg
	t := a.Token
	if a.Locked() {
		return errOATHLocked
	}
	code, err := oath.NormalizeCode(code, t.Digits)
	if err != nil {
		return err
	}
	secret, err := cfg.openSecret(a.UserID, t)
	if err != nil {
		return err
	}
	defer clear(secret)
	now := f.h.Now()
	m, err := cfg.match(t, secret, code, a.NextCounter, a.Offset, now)
	if err == errOATHWrongCode {
		limit := max(cfg.MaxFailures, 0)
		after, ferr := f.st.RecordOATHFailure(ctx, a.UserID, t.ID, now, limit, &qrauth.AuditEvent{
			Time: now, Type: oath.AuditLocked, UserID: a.UserID, IP: c.RealIP(),
			Detail: fmt.Sprintf("%s locked after %d wrong codes", tokenDetail(t), limit),
		})
		switch {
		case ferr != nil:
			return ferr
		case after.Locked():
			return errOATHLocked
		case limit > 0:
			return qrauth.Errorf(qrauth.EINVALID, "oath_wrong_code",
				"That code is not right. After %d more wrong codes the authenticator locks.", limit-after.Failures)
		}
		return err
	} else if err != nil {
		return err
	}
	_, err = f.st.RecordOATHUse(ctx, a.UserID, oath.Use{TokenID: t.ID, Counter: m.Counter, Offset: m.Offset, At: now})
	return err
}

type oathCodeBody struct {
	Code string `json:"code"`
}

type oathEnrolBody struct {
	Kind oath.Kind `json:"kind"`
}

// decodeOATHEnrolBody reads the optional {"kind": "totp"|"hotp"}.
func decodeOATHEnrolBody(c echo.Context) (oath.Kind, error) {
	body, err := server.ReadBody(c)
	if err != nil {
		return "", err
	}
	var b oathEnrolBody
	if len(body) > 0 {
		if err := server.DecodeStrict(body, &b); err != nil {
			return "", server.MalformedBody(err, `The body must be empty or JSON: {"kind": "totp"}.`)
		}
	}
	switch b.Kind {
	case "", oath.TOTP, oath.HOTP:
		return b.Kind, nil
	}
	return "", qrauth.Errorf(qrauth.EINVALID, "invalid_kind", "The kind must be totp or hotp.")
}

func decodeOATHCode(c echo.Context) (string, error) {
	body, err := server.ReadBody(c)
	if err != nil {
		return "", err
	}
	var b oathCodeBody
	if err := server.DecodeStrict(body, &b); err != nil {
		return "", server.MalformedBody(err, `The body must be JSON: {"code": "123456"}.`)
	}
	return b.Code, nil
}

// handleOATHStatus tells the account page the state of the user's
// authenticator. "enabled" is always true: while the flow is off this
// route does not exist and the page does not load the section's script.
func (f *Flow) handleOATHStatus(c echo.Context) error {
	_, u, err := f.h.Authenticate(c)
	if err != nil {
		return err
	}
	cfg := &f.cfg
	out := map[string]any{"enabled": true}
	a, err := f.findOATH(c.Request().Context(), u.ID)
	if err != nil {
		return err
	}
	out["policy"], out["overwrite"], out["account"] = cfg.Policy, !cfg.KeepSecret, viewOATH(a, false)
	return c.JSON(http.StatusOK, out)
}

func (f *Flow) handleOATHEnrol(c echo.Context) error {
	_, u, err := f.h.Authenticate(c)
	if err != nil {
		return err
	}
	kind, err := decodeOATHEnrolBody(c)
	if err != nil {
		return err
	}
	v, err := f.enrolOATH(c, u, kind, oath.SourceAccount)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, v)
}

func (f *Flow) handleOATHConfirm(c echo.Context) error {
	_, u, err := f.h.Authenticate(c)
	if err != nil {
		return err
	}
	code, err := decodeOATHCode(c)
	if err != nil {
		return err
	}
	a, err := f.confirmOATH(c, u.ID, code, "on the account page")
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, map[string]any{"account": viewOATH(a, false)})
}

// The sign-in step.

func (f *Flow) handleVerifyPage(c echo.Context) error {
	if err := f.h.EnsureBindCookie(c); err != nil {
		return err
	}
	return f.h.ServePage(c, "verify.html")
}

// oathSignInState is what the verify page must ask for: "verify" (a code
// from the active token), "enrol" (set one up first, policy required) or
// "locked".
func (f *Flow) oathSignInState(a *oath.Account) string {
	switch {
	case a.Active() && a.Locked():
		return "locked"
	case a.Active():
		return "verify"
	}
	return "enrol"
}

func (f *Flow) handleOATHSignInStatus(c echo.Context) error {
	si, err := f.h.PeekSignIn(c)
	if err != nil {
		return err
	}
	ctx := c.Request().Context()
	u, err := f.h.Store().FindUserByID(ctx, si.UserID)
	if err != nil {
		return err
	}
	a, err := f.findOATH(ctx, u.ID)
	if err != nil {
		return err
	}
	state := f.oathSignInState(a)
	out := map[string]any{"name": u.Name, "state": state, "methods": si.Methods, "expires_at": si.Expires(),
		"digits": f.cfg.Digits, "kind": f.cfg.Kind, "issuer": f.cfg.Issuer}
	if a.Active() {
		out["digits"], out["kind"] = a.Token.Digits, a.Token.Kind
	}
	return c.JSON(http.StatusOK, out)
}

func (f *Flow) handleOATHSignInEnrol(c echo.Context) error {
	si, err := f.h.PeekSignIn(c)
	if err != nil {
		return err
	}
	if f.cfg.Policy != PolicyRequired {
		return qrauth.Errorf(qrauth.EFORBIDDEN, "oath_enrol_on_account_page",
			"Set up an authenticator app from your account page after you have signed in.")
	}
	if !si.Authenticated() {
		return qrauth.Errorf(qrauth.EFORBIDDEN, "oath_enrol_needs_sign_in",
			"An authenticator app can only be set up after signing in with your phone. Sign in with the QR code first.")
	}
	u, err := f.h.Store().FindUserByID(c.Request().Context(), si.UserID)
	if err != nil {
		return err
	}
	v, err := f.enrolOATH(c, u, f.cfg.Kind, oath.SourceSignIn)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, v)
}

// handleOATHSignIn takes the code of the sign-in step: it checks it against
// the active token, or under policy required confirms the enrolment made on
// the same page, and then lets the sign-in continue.
func (f *Flow) handleOATHSignIn(c echo.Context) error {
	si, err := f.h.PendingSignIn(c)
	if err != nil {
		return err
	}
	code, err := decodeOATHCode(c)
	if err != nil {
		return err
	}
	ctx := c.Request().Context()
	a, err := f.findOATH(ctx, si.UserID)
	if err != nil {
		return err
	}
	switch {
	case a.Active():
		if err := f.verifyOATH(c, a, code); err != nil {
			return err
		}
	case f.cfg.Policy == PolicyRequired:
		if !si.Authenticated() {
			return qrauth.Errorf(qrauth.EFORBIDDEN, "oath_enrol_needs_sign_in",
				"An authenticator app can only be set up after signing in with your phone. Sign in with the QR code first.")
		}
		if _, err := f.confirmOATH(c, si.UserID, code, "during sign-in"); err != nil {
			return err
		}
	default:
		return qrauth.Errorf(qrauth.ECONFLICT, "oath_not_enrolled", "This account has no authenticator app.")
	}
	// si is this request's own copy (pendingSignIn).
	return f.h.ContinueSignIn(c, si.Pass(MethodOATH))
}
