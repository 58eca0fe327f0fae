package oathflow

import (
	"encoding/hex"
	"net/http"
	"os"
	"path/filepath"

	"github.com/labstack/echo/v4"
	"github.com/qrauth/qrauth"
	"github.com/qrauth/qrauth/oath"
)

// The OATH part of the admin API, under /admin/api/oath/:id where :id is
// a user id. Every change and every look at a secret is audited with who
// did it ("by operator" for `qrauthd admin`, else the admin's user id).

func (f *Flow) adminOATHAccount(c echo.Context) (*qrauth.User, *oath.Account, error) {
	ctx := c.Request().Context()
	u, err := f.h.Store().FindUserByID(ctx, qrauth.UserID(c.Param("id")))
	if err != nil {
		return nil, nil, err
	}
	a, err := f.findOATH(ctx, u.ID)
	return u, a, err
}

var errOATHNone = qrauth.Errorf(qrauth.ENOTFOUND, "oath_not_found", "This user has no active authenticator.")

func (f *Flow) handleAdminOATH(c echo.Context) error {
	if _, err := f.h.RequireRole(c, qrauth.RoleAdmin, qrauth.RoleHelpdesk); err != nil {
		return err
	}
	_, a, err := f.adminOATHAccount(c)
	if err != nil {
		return err
	} else if a == nil {
		return errOATHNone
	}
	return c.JSON(http.StatusOK, map[string]any{"account": viewOATH(a, true)})
}

func (f *Flow) handleAdminOATHDelete(c echo.Context) error {
	actor, err := f.h.RequireRole(c, qrauth.RoleAdmin)
	if err != nil {
		return err
	}
	u, a, err := f.adminOATHAccount(c)
	if err != nil {
		return err
	} else if a == nil {
		return errOATHNone
	}
	what := "pending enrolment"
	if a.Active() {
		what = tokenDetail(a.Token)
	}
	if err := f.st.DeleteOATHAccount(c.Request().Context(), u.ID, &qrauth.AuditEvent{
		Time: f.h.Now(), Type: oath.AuditSecretDeleted, UserID: u.ID, IP: c.RealIP(),
		Detail: what + " deleted by " + actor.Name(),
	}); err != nil {
		return err
	}
	return c.NoContent(http.StatusNoContent)
}

func (f *Flow) handleAdminOATHUnlock(c echo.Context) error {
	actor, err := f.h.RequireRole(c, qrauth.RoleAdmin, qrauth.RoleHelpdesk)
	if err != nil {
		return err
	}
	u, a, err := f.adminOATHAccount(c)
	if err != nil {
		return err
	} else if !a.Active() {
		return errOATHNone
	}
	a, err = f.st.UnlockOATHAccount(c.Request().Context(), u.ID, &qrauth.AuditEvent{
		Time: f.h.Now(), Type: oath.AuditUnlocked, UserID: u.ID, IP: c.RealIP(),
		Detail: tokenDetail(a.Token) + " unlocked by " + actor.Name(),
	})
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, map[string]any{"account": viewOATH(a, true)})
}

// handleAdminOATHSecret shows a user's active secret as QR, Base32 and
// hex. It is a POST because it has an effect: the audit event, written
// before the secret leaves the server.
func (f *Flow) handleAdminOATHSecret(c echo.Context) error {
	actor, err := f.h.RequireRole(c, qrauth.RoleSecretViewer)
	if err != nil {
		return err
	}
	u, a, err := f.adminOATHAccount(c)
	if err != nil {
		return err
	} else if !a.Active() {
		return errOATHNone
	}
	secret, err := f.cfg.openSecret(u.ID, a.Token)
	if err != nil {
		return err
	}
	defer clear(secret)
	v, err := f.viewOATHKey(u, a.Token, secret)
	if err != nil {
		return err
	}
	v.Hex, v.Reused = hex.EncodeToString(secret), true
	if err := f.h.Store().AppendAudit(c.Request().Context(), &qrauth.AuditEvent{
		Time: f.h.Now(), Type: oath.AuditSecretViewed, UserID: u.ID, IP: c.RealIP(),
		Detail: tokenDetail(a.Token) + " viewed by " + actor.Name(),
	}); err != nil {
		return err
	}
	return c.JSON(http.StatusOK, v)
}

// handleAdminOATHLetter writes an activation letter into LetterDir. A user
// with an active token gets a letter of that token; otherwise a new token
// is created, active at once (the letter is how it reaches the person;
// they prove it works at their next sign-in).
func (f *Flow) handleAdminOATHLetter(c echo.Context) error {
	actor, err := f.h.RequireRole(c, qrauth.RoleAdmin, qrauth.RoleHelpdesk)
	if err != nil {
		return err
	}
	cfg := &f.cfg
	if cfg.LetterDir == "" {
		return qrauth.Errorf(qrauth.ECONFLICT, "oath_letters_off",
			"Activation letters are not configured: start qrauthd with -oath-letter-dir DIR.")
	}
	u, a, err := f.adminOATHAccount(c)
	if err != nil {
		return err
	}
	now := f.h.Now()
	reused := a.Active()
	var t *oath.Token
	var secret []byte
	if reused {
		t = a.Token
		if secret, err = cfg.openSecret(u.ID, t); err != nil {
			return err
		}
	} else if t, secret, err = cfg.newOATHToken(f.h.Rand(), u.ID, cfg.Kind, oath.SourceLetter, now); err != nil {
		return err
	}
	defer clear(secret)
	key, err := oathURI(t, secret, cfg.Issuer, oathAccountName(u))
	if err != nil {
		return err
	}
	pdf, err := renderOATHLetter(oathLetter{Key: key, Token: t, User: u, Origin: f.h.Origin(), Created: now})
	if err != nil {
		return qrauth.Internal(err)
	}
	// The file first, the record after: a letter whose token failed to
	// store is removed again, so no letter carries a secret that does not
	// work.
	path, err := writeLetter(cfg.LetterDir, u.ID, now, pdf)
	if err != nil {
		return qrauth.Internal(err)
	}
	ordered := &qrauth.AuditEvent{Time: now, Type: oath.AuditLetterOrdered, UserID: u.ID, IP: c.RealIP(),
		Detail: "letter " + filepath.Base(path) + " of " + tokenDetail(t) + " ordered by " + actor.Name()}
	ctx := c.Request().Context()
	if reused {
		err = f.h.Store().AppendAudit(ctx, ordered)
	} else {
		a, err = f.st.CreateOATHToken(ctx, u.ID, t, &qrauth.AuditEvent{
			Time: now, Type: oath.AuditSecretAdded, UserID: u.ID, IP: c.RealIP(),
			Detail: tokenDetail(t) + " created for an activation letter by " + actor.Name(),
		}, ordered)
	}
	if err != nil {
		os.Remove(path)
		return err
	}
	return c.JSON(http.StatusOK, map[string]any{"file": path, "token_id": t.ID, "reused": reused, "account": viewOATH(a, true)})
}
