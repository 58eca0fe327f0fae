package server

import (
	"fmt"
	"net/http"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/qrauth/qrauth"
	"github.com/qrauth/qrauth/internal/qrimage"
)

// oathAccountView is what a user (and, with the admin fields, an
// administrator) learns about an OATH account. Never the secret.
type oathAccountView struct {
	Active    bool                 `json:"active"`
	Pending   bool                 `json:"pending"`
	TokenID   string               `json:"token_id,omitempty"`
	Kind      qrauth.OATHKind      `json:"kind,omitempty"`
	Algorithm qrauth.OATHAlgorithm `json:"algorithm,omitempty"`
	Digits    int                  `json:"digits,omitempty"`
	Period    int                  `json:"period,omitempty"`
	Source    string               `json:"source,omitempty"`
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

func viewOATH(a *qrauth.OATHAccount, admin bool) *oathAccountView {
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
	TokenID   string               `json:"token_id"`
	URI       string               `json:"uri"`
	QR        string               `json:"qr"` // PNG data URL of URI
	Secret    string               `json:"secret"`
	Hex       string               `json:"hex,omitempty"`
	Kind      qrauth.OATHKind      `json:"kind"`
	Algorithm qrauth.OATHAlgorithm `json:"algorithm"`
	Digits    int                  `json:"digits"`
	Period    int                  `json:"period,omitempty"`
	Issuer    string               `json:"issuer"`
	Account   string               `json:"account"`
	// Reused is true when an existing active secret is shown again.
	Reused bool `json:"reused"`
	// NeedsCode is true while the token waits for its first code.
	NeedsCode bool `json:"needs_code"`
}

func (s *Server) viewOATHKey(u *qrauth.User, t *qrauth.OATHToken, secret []byte) (*oathKeyView, error) {
	k, err := oathURI(t, secret, s.cfg.OATH.Issuer, oathAccountName(u))
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
func tokenDetail(t *qrauth.OATHToken) string {
	d := fmt.Sprintf("token %s (%s %s, %d digits", t.ID, t.Kind, t.Algorithm, t.Digits)
	if t.Period > 0 {
		d += fmt.Sprintf(", %ds", t.Period)
	}
	return d + ")"
}

// enrolOATH starts an enrolment for u: a new pending token, or, with
// KeepSecret and an active TOTP token, that token's secret again.
func (s *Server) enrolOATH(c echo.Context, u *qrauth.User, kind qrauth.OATHKind, source string) (*oathKeyView, error) {
	ctx := c.Request().Context()
	cfg := &s.cfg.OATH
	a, err := s.findOATH(ctx, u.ID)
	if err != nil {
		return nil, err
	}
	if a.Active() && source == qrauth.OATHSourceSignIn {
		return nil, qrauth.Errorf(qrauth.ECONFLICT, "oath_exists", "This account already has an authenticator: enter its code.")
	}
	if a.Active() && cfg.KeepSecret {
		if a.Token.Kind != qrauth.OATHTOTP {
			return nil, qrauth.Errorf(qrauth.ECONFLICT, "oath_exists",
				"You already have a counter-based (HOTP) authenticator, which cannot be shared by two apps. Ask an administrator to remove it first.")
		}
		secret, err := cfg.openSecret(u.ID, a.Token)
		if err != nil {
			return nil, err
		}
		defer clear(secret)
		v, err := s.viewOATHKey(u, a.Token, secret)
		if err != nil {
			return nil, err
		}
		v.Reused = true
		if err := s.store.AppendAudit(ctx, &qrauth.AuditEvent{Time: s.cfg.Now(), Type: qrauth.AuditOATHSecretViewed,
			UserID: u.ID, IP: c.RealIP(), Detail: tokenDetail(a.Token) + " shown again to the user to add another app"}); err != nil {
			return nil, err
		}
		return v, nil
	}
	if kind == "" {
		kind = cfg.Kind
	}
	t, secret, err := cfg.newOATHToken(s.cfg.Rand, u.ID, kind, source, s.cfg.Now())
	if err != nil {
		return nil, err
	}
	defer clear(secret)
	if _, err := s.store.PutOATHPending(ctx, u.ID, t); err != nil {
		return nil, err
	}
	v, err := s.viewOATHKey(u, t, secret)
	if err != nil {
		return nil, err
	}
	v.NeedsCode = true
	return v, nil
}

var errOATHNoEnrolment = qrauth.Errorf(qrauth.ECONFLICT, "oath_no_enrolment",
	"There is no enrolment waiting for a code. Start the set-up again.")

// confirmOATH activates the user's pending token with its first code.
func (s *Server) confirmOATH(c echo.Context, uid qrauth.UserID, code string, how string) (*qrauth.OATHAccount, error) {
	ctx := c.Request().Context()
	cfg := &s.cfg.OATH
	a, err := s.findOATH(ctx, uid)
	if err != nil {
		return nil, err
	} else if a == nil || a.Pending == nil {
		return nil, errOATHNoEnrolment
	}
	t := a.Pending
	code, err = qrauth.NormalizeOATHCode(code, t.Digits)
	if err != nil {
		return nil, err
	}
	secret, err := cfg.openSecret(uid, t)
	if err != nil {
		return nil, err
	}
	defer clear(secret)
	now := s.cfg.Now()
	// A new token has no drift and no used codes yet.
	m, err := cfg.match(t, secret, code, 0, 0, now)
	if err != nil {
		return nil, err
	}
	return s.store.ActivateOATHPending(ctx, uid, qrauth.OATHUse{TokenID: t.ID, Counter: m.Counter, Offset: m.Offset, At: now},
		&qrauth.AuditEvent{Time: now, Type: qrauth.AuditOATHSecretAdded, UserID: uid, IP: c.RealIP(),
			Detail: tokenDetail(t) + " enrolled by the user " + how})
}

// verifyOATH checks a sign-in code against the user's active token,
// counting a wrong one and locking at the limit.
func (s *Server) verifyOATH(c echo.Context, a *qrauth.OATHAccount, code string) error {
	ctx := c.Request().Context()
	cfg := &s.cfg.OATH
	t := a.Token
	if a.Locked() {
		return errOATHLocked
	}
	code, err := qrauth.NormalizeOATHCode(code, t.Digits)
	if err != nil {
		return err
	}
	secret, err := cfg.openSecret(a.UserID, t)
	if err != nil {
		return err
	}
	defer clear(secret)
	now := s.cfg.Now()
	m, err := cfg.match(t, secret, code, a.NextCounter, a.Offset, now)
	if err == errOATHWrongCode {
		limit := max(cfg.MaxFailures, 0)
		after, ferr := s.store.RecordOATHFailure(ctx, a.UserID, t.ID, now, limit, &qrauth.AuditEvent{
			Time: now, Type: qrauth.AuditOATHLocked, UserID: a.UserID, IP: c.RealIP(),
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
	_, err = s.store.RecordOATHUse(ctx, a.UserID, qrauth.OATHUse{TokenID: t.ID, Counter: m.Counter, Offset: m.Offset, At: now})
	return err
}

type oathCodeBody struct {
	Code string `json:"code"`
}

type oathEnrolBody struct {
	Kind qrauth.OATHKind `json:"kind"`
}

// decodeOATHEnrolBody reads the optional {"kind": "totp"|"hotp"}.
func decodeOATHEnrolBody(c echo.Context) (qrauth.OATHKind, error) {
	body, err := readBody(c)
	if err != nil {
		return "", err
	}
	var b oathEnrolBody
	if len(body) > 0 {
		if err := decodeStrict(body, &b); err != nil {
			return "", malformedBody(err, `The body must be empty or JSON: {"kind": "totp"}.`)
		}
	}
	switch b.Kind {
	case "", qrauth.OATHTOTP, qrauth.OATHHOTP:
		return b.Kind, nil
	}
	return "", qrauth.Errorf(qrauth.EINVALID, "invalid_kind", "The kind must be totp or hotp.")
}

func decodeOATHCode(c echo.Context) (string, error) {
	body, err := readBody(c)
	if err != nil {
		return "", err
	}
	var b oathCodeBody
	if err := decodeStrict(body, &b); err != nil {
		return "", malformedBody(err, `The body must be JSON: {"code": "123456"}.`)
	}
	return b.Code, nil
}

// handleOATHStatus tells the account page whether the flow is on and the
// state of the user's authenticator.
func (s *Server) handleOATHStatus(c echo.Context) error {
	_, u, err := s.authenticate(c)
	if err != nil {
		return err
	}
	cfg := &s.cfg.OATH
	out := map[string]any{"enabled": cfg.Enabled}
	if !cfg.Enabled {
		return c.JSON(http.StatusOK, out)
	}
	a, err := s.findOATH(c.Request().Context(), u.ID)
	if err != nil {
		return err
	}
	out["policy"], out["overwrite"], out["account"] = cfg.Policy, !cfg.KeepSecret, viewOATH(a, false)
	return c.JSON(http.StatusOK, out)
}

func (s *Server) handleOATHEnrol(c echo.Context) error {
	_, u, err := s.authenticate(c)
	if err != nil {
		return err
	}
	kind, err := decodeOATHEnrolBody(c)
	if err != nil {
		return err
	}
	v, err := s.enrolOATH(c, u, kind, qrauth.OATHSourceAccount)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, v)
}

func (s *Server) handleOATHConfirm(c echo.Context) error {
	_, u, err := s.authenticate(c)
	if err != nil {
		return err
	}
	code, err := decodeOATHCode(c)
	if err != nil {
		return err
	}
	a, err := s.confirmOATH(c, u.ID, code, "on the account page")
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, map[string]any{"account": viewOATH(a, false)})
}

// The sign-in step.

func (s *Server) handleVerifyPage(c echo.Context) error {
	if err := s.ensureBindCookie(c); err != nil {
		return err
	}
	return s.servePage(c, "verify.html")
}

// oathSignInState is what the verify page must ask for: "verify" (a code
// from the active token), "enrol" (set one up first, policy required) or
// "locked".
func (s *Server) oathSignInState(a *qrauth.OATHAccount) string {
	switch {
	case a.Active() && a.Locked():
		return "locked"
	case a.Active():
		return "verify"
	}
	return "enrol"
}

func (s *Server) handleOATHSignInStatus(c echo.Context) error {
	si, err := s.peekSignIn(c)
	if err != nil {
		return err
	}
	ctx := c.Request().Context()
	u, err := s.store.FindUserByID(ctx, si.UserID)
	if err != nil {
		return err
	}
	a, err := s.findOATH(ctx, u.ID)
	if err != nil {
		return err
	}
	state := s.oathSignInState(a)
	out := map[string]any{"name": u.Name, "state": state, "methods": si.Methods, "expires_at": si.expires,
		"digits": s.cfg.OATH.Digits, "kind": s.cfg.OATH.Kind, "issuer": s.cfg.OATH.Issuer}
	if a.Active() {
		out["digits"], out["kind"] = a.Token.Digits, a.Token.Kind
	}
	return c.JSON(http.StatusOK, out)
}

func (s *Server) handleOATHSignInEnrol(c echo.Context) error {
	si, err := s.peekSignIn(c)
	if err != nil {
		return err
	}
	if s.cfg.OATH.Policy != OATHPolicyRequired {
		return qrauth.Errorf(qrauth.EFORBIDDEN, "oath_enrol_on_account_page",
			"Set up an authenticator app from your account page after you have signed in.")
	}
	if !si.Authenticated() {
		return qrauth.Errorf(qrauth.EFORBIDDEN, "oath_enrol_needs_sign_in",
			"An authenticator app can only be set up after signing in with your phone. Sign in with the QR code first.")
	}
	u, err := s.store.FindUserByID(c.Request().Context(), si.UserID)
	if err != nil {
		return err
	}
	v, err := s.enrolOATH(c, u, s.cfg.OATH.Kind, qrauth.OATHSourceSignIn)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, v)
}

// handleOATHSignIn takes the code of the sign-in step: it checks it against
// the active token, or under policy required confirms the enrolment made on
// the same page, and then lets the sign-in continue.
func (s *Server) handleOATHSignIn(c echo.Context) error {
	si, err := s.pendingSignIn(c)
	if err != nil {
		return err
	}
	code, err := decodeOATHCode(c)
	if err != nil {
		return err
	}
	ctx := c.Request().Context()
	a, err := s.findOATH(ctx, si.UserID)
	if err != nil {
		return err
	}
	switch {
	case a.Active():
		if err := s.verifyOATH(c, a, code); err != nil {
			return err
		}
	case s.cfg.OATH.Policy == OATHPolicyRequired:
		if !si.Authenticated() {
			return qrauth.Errorf(qrauth.EFORBIDDEN, "oath_enrol_needs_sign_in",
				"An authenticator app can only be set up after signing in with your phone. Sign in with the QR code first.")
		}
		if _, err := s.confirmOATH(c, si.UserID, code, "during sign-in"); err != nil {
			return err
		}
	default:
		return qrauth.Errorf(qrauth.ECONFLICT, "oath_not_enrolled", "This account has no authenticator app.")
	}
	// si is this request's own copy (pendingSignIn).
	return s.continueSignIn(c, si.Pass(MethodOATH))
}
