package badgeflow

import (
	"context"
	"crypto/subtle"
	"io"
	"log/slog"
	"net/http"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/qrauth/qrauth"
	"github.com/qrauth/qrauth/badge"
	"github.com/qrauth/qrauth/server"
	"golang.org/x/crypto/argon2"
)

// Passwords: argon2id with a per-user random salt; the parameters are kept
// with each hash. A password is optional. It is the second factor after an
// insecure badge and the credential secure badges are sealed under; it is
// never enough on its own, since qrauth has no usernames to type.

var (
	errWrongPassword = qrauth.Errorf(qrauth.EUNAUTHORIZED, "wrong_password", "That password is not right.")
	errNoPassword    = qrauth.Errorf(qrauth.EUNAUTHORIZED, "no_password",
		"This account has no password. Approve with the account's phone instead, or ask your helpdesk.")
	errPasswordTries = "Too many wrong passwords. Wait a moment before you try again."
)

// hashPassword makes a new credential for pw. stamp is the credential's
// stamp: fresh for a new password, the old one for a rehash.
func (b *Flow) hashPassword(c echo.Context, uid qrauth.UserID, pw string, stamp []byte) (*badge.Password, error) {
	salt := make([]byte, 16)
	if _, err := io.ReadFull(b.h.Rand(), salt); err != nil {
		return nil, qrauth.Internal(err)
	}
	if stamp == nil {
		stamp = make([]byte, 32)
		if _, err := io.ReadFull(b.h.Rand(), stamp); err != nil {
			return nil, qrauth.Internal(err)
		}
	}
	if err := acquire(c, b.hashes); err != nil {
		return nil, err
	}
	defer func() { <-b.hashes }()
	p := b.cfg.Password
	return &badge.Password{
		UserID: uid, Algorithm: badge.PasswordAlgorithm, Params: p, Salt: salt, Stamp: stamp, SetAt: b.h.Now(),
		Hash: argon2.IDKey([]byte(pw), salt, p.Time, p.Memory, p.Threads, p.KeyLen),
	}, nil
}

// verifyPassword checks pw against the stored credential, with the
// parameters stored with it. Stored parameters are bounded like the
// configured ones, so a tampered record cannot make one check eat the
// machine.
func (b *Flow) verifyPassword(c echo.Context, stored *badge.Password, pw string) (bool, error) {
	p := stored.Params
	if stored.Algorithm != badge.PasswordAlgorithm || p.Time == 0 || p.Time > 100 || p.Threads == 0 ||
		p.Memory < 8*uint32(p.Threads) || p.Memory > 4<<20 || int(p.KeyLen) != len(stored.Hash) {
		return false, qrauth.Internal(errBadStoredPassword)
	}
	if len(pw) > badge.MaxPasswordBytes {
		return false, nil
	}
	if err := acquire(c, b.hashes); err != nil {
		return false, err
	}
	defer func() { <-b.hashes }()
	got := argon2.IDKey([]byte(pw), stored.Salt, p.Time, p.Memory, p.Threads, p.KeyLen)
	return subtle.ConstantTimeCompare(got, stored.Hash) == 1, nil
}

var errBadStoredPassword = qrauth.Errorf(qrauth.EINTERNAL, "internal", "stored password has unusable parameters")

// weaker reports whether p is below the configured parameters in any way.
func (b *Flow) weaker(p badge.PasswordParams) bool {
	want := b.cfg.Password
	return p.Time < want.Time || p.Memory < want.Memory || p.Threads < want.Threads || p.KeyLen < want.KeyLen
}

// limitPassword refuses a password attempt from an address or for an
// account that has had too many. Only wrong answers use up the account's
// allowance (see wrongPassword), so that a flood from elsewhere cannot
// lock a person out of their own account for long.
func (b *Flow) limitPassword(c echo.Context, uid qrauth.UserID) error {
	now := b.h.Now()
	if ok, wait := b.pwIP.Allow(c.RealIP(), now); !ok {
		return server.RateLimited(c, wait, "too_many_passwords", errPasswordTries)
	}
	if ok, wait := b.pwUser.Peek(string(uid), now); !ok {
		return server.RateLimited(c, wait, "too_many_passwords", errPasswordTries)
	}
	return nil
}

func (b *Flow) wrongPassword(c echo.Context, uid qrauth.UserID, where string) error {
	b.pwUser.Allow(string(uid), b.h.Now())
	b.h.Logger().Info("wrong password", slog.String("user", string(uid)), slog.String("ip", c.RealIP()), slog.String("where", where))
	return errWrongPassword
}

// checkCurrentPassword verifies pw as uid's current password, counting a
// wrong one.
func (b *Flow) checkCurrentPassword(c echo.Context, stored *badge.Password, pw, where string) error {
	if err := b.limitPassword(c, stored.UserID); err != nil {
		return err
	}
	ok, err := b.verifyPassword(c, stored, pw)
	if err != nil {
		return err
	} else if !ok {
		return b.wrongPassword(c, stored.UserID, where)
	}
	b.rehash(c, stored, pw)
	return nil
}

// rehash redoes a correct password's hash when the configured parameters
// have been raised since it was made. The stamp stays, so secure badges
// keep working. Failure only means the old hash stays another while.
func (b *Flow) rehash(c echo.Context, stored *badge.Password, pw string) {
	if !b.weaker(stored.Params) {
		return
	}
	p, err := b.hashPassword(c, stored.UserID, pw, stored.Stamp)
	if err == nil {
		p.SetAt = stored.SetAt
		err = b.st.SetPassword(c.Request().Context(), p, stored.Stamp)
	}
	if err != nil && qrauth.ErrorCode(err) != qrauth.ECONFLICT {
		b.h.Logger().Warn("password rehash failed", slog.String("user", string(stored.UserID)), slog.Any("err", err))
	}
}

type passwordView struct {
	Enabled bool      `json:"enabled"`
	Set     bool      `json:"set"`
	SetAt   time.Time `json:"set_at,omitzero"`
}

func (b *Flow) viewPassword(ctx context.Context, uid qrauth.UserID) (passwordView, *badge.Password, error) {
	v := passwordView{Enabled: true}
	p, err := b.st.FindPassword(ctx, uid)
	if qrauth.ErrorCode(err) == qrauth.ENOTFOUND {
		return v, nil, nil
	} else if err != nil {
		return v, nil, err
	}
	v.Set, v.SetAt = true, p.SetAt
	return v, p, nil
}

func (b *Flow) handleGetPassword(c echo.Context) error {
	_, u, err := b.h.Authenticate(c)
	if err != nil {
		return err
	}
	v, _, err := b.viewPassword(c.Request().Context(), u.ID)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, map[string]any{"password": v})
}

// handleSetPassword sets a first password or changes it. A change needs
// the current password, so that a browser left signed in cannot be used to
// take over the badges of its owner.
func (b *Flow) handleSetPassword(c echo.Context) error {
	sess, u, err := b.h.Authenticate(c)
	if err != nil {
		return err
	}
	var body struct {
		Current string `json:"current_password"`
		New     string `json:"new_password"`
	}
	if err := server.DecodeJSONBody(c, &body); err != nil {
		return err
	}
	if err := badge.CheckPassword(body.New); err != nil {
		return err
	}
	ctx := c.Request().Context()
	_, cur, err := b.viewPassword(ctx, u.ID)
	if err != nil {
		return err
	}
	var prev []byte
	typ, detail := badge.AuditPasswordSet, "from browser session "+string(sess.ID)
	if cur != nil {
		if body.Current == "" {
			return qrauth.Errorf(qrauth.EINVALID, "current_password_required", "Enter your current password to change it.")
		}
		if err := b.checkCurrentPassword(c, cur, body.Current, "change"); err != nil {
			return err
		}
		prev = cur.Stamp
		typ, detail = badge.AuditPasswordChanged, detail+"; secure badges sealed under the old password no longer work"
	}
	p, err := b.hashPassword(c, u.ID, body.New, nil)
	if err != nil {
		return err
	}
	if err := b.st.SetPassword(ctx, p, prev, &qrauth.AuditEvent{
		Time: b.h.Now(), Type: typ, UserID: u.ID, SessionID: sess.ID, IP: c.RealIP(), Detail: detail,
	}); err != nil {
		return err
	}
	return c.JSON(http.StatusOK, map[string]any{"password": passwordView{Enabled: true, Set: true, SetAt: p.SetAt}})
}

// handleDeletePassword removes the password; it needs the password.
func (b *Flow) handleDeletePassword(c echo.Context) error {
	sess, u, err := b.h.Authenticate(c)
	if err != nil {
		return err
	}
	var body struct {
		Current string `json:"current_password"`
	}
	if err := server.DecodeJSONBody(c, &body); err != nil {
		return err
	}
	ctx := c.Request().Context()
	_, cur, err := b.viewPassword(ctx, u.ID)
	if err != nil {
		return err
	} else if cur == nil {
		return qrauth.Errorf(qrauth.ENOTFOUND, "no_password", "This account has no password.")
	}
	if err := b.checkCurrentPassword(c, cur, body.Current, "remove"); err != nil {
		return err
	}
	if err := b.st.DeletePassword(ctx, u.ID, cur.Stamp, &qrauth.AuditEvent{
		Time: b.h.Now(), Type: badge.AuditPasswordRemoved, UserID: u.ID, SessionID: sess.ID, IP: c.RealIP(),
		Detail: "from browser session " + string(sess.ID) + "; secure badges no longer work",
	}); err != nil {
		return err
	}
	return c.JSON(http.StatusOK, map[string]any{"password": passwordView{Enabled: true}})
}

// handlePasswordStep is the password as the second factor after an
// insecure badge.
func (b *Flow) handlePasswordStep(c echo.Context) error {
	var body struct {
		Password string `json:"password"`
	}
	if err := server.DecodeJSONBody(c, &body); err != nil {
		return err
	}
	si, err := b.pendingStep(c)
	if err != nil {
		return err
	}
	if !si.Passed(MethodBadgeInsecure) || si.Passed(MethodPassword) {
		return qrauth.Errorf(qrauth.EUNAUTHORIZED, "password_not_expected", "This sign-in does not wait for a password.")
	} else if !b.cfg.allows(SecondFactorPassword) {
		return qrauth.Errorf(qrauth.EFORBIDDEN, "second_factor_not_allowed", "This service does not accept a password here.")
	}
	stored, err := b.st.FindPassword(c.Request().Context(), si.UserID)
	if qrauth.ErrorCode(err) == qrauth.ENOTFOUND {
		return errNoPassword
	} else if err != nil {
		return err
	}
	if err := b.checkCurrentPassword(c, stored, body.Password, "sign-in"); err != nil {
		return err
	}
	return b.h.ContinueSignIn(c, si.Pass(MethodPassword))
}
