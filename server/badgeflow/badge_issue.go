package badgeflow

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/qrauth/qrauth"
	"github.com/qrauth/qrauth/badge"
	"github.com/qrauth/qrauth/server"
)

// Issuing, listing and revoking badges: by the holder on the account page
// (when Config.SelfIssue allows it; revoking one's own badge is always
// allowed), and by an admin or the helpdesk for anyone, on the admin page
// or with `qrauthd admin badge`.

// Badge statuses in views.
const (
	badgeActive          = "active"
	badgeRevokedStatus   = "revoked"
	badgeExpiredStatus   = "expired"
	badgePasswordChanged = "password_changed" // secure, sealed under an earlier password
)

// maxBadgeValidity bounds the expiry date of a secure badge.
const maxBadgeValidity = 10 * 366 * 24 * time.Hour

type badgeView struct {
	ID        badge.ID   `json:"id"`
	Kind      badge.Kind `json:"kind"`
	Status    string     `json:"status"`
	CreatedAt time.Time  `json:"created_at"`
	CreatedBy string     `json:"created_by"`
	ExpiresAt time.Time  `json:"expires_at,omitzero"`
	RevokedAt time.Time  `json:"revoked_at,omitzero"`
	RevokedBy string     `json:"revoked_by,omitempty"`
}

// viewBadge describes b; pw is the holder's current password, or nil.
func (b *Flow) viewBadge(x *badge.Badge, pw *badge.Password) badgeView {
	v := badgeView{ID: x.ID, Kind: x.Kind, Status: badgeActive, CreatedAt: x.CreatedAt, CreatedBy: x.CreatedBy,
		ExpiresAt: x.ExpiresAt, RevokedAt: x.RevokedAt, RevokedBy: x.RevokedBy}
	switch {
	case x.Revoked():
		v.Status = badgeRevokedStatus
	case x.Expired(b.h.Now()):
		v.Status = badgeExpiredStatus
	case x.Kind == badge.Secure && (pw == nil || !bytes.Equal(badge.CredentialFingerprint(pw.Stamp), x.Credential)):
		v.Status = badgePasswordChanged
	}
	return v
}

// listBadges returns the views of a user's badges, newest first, and
// whether the user has a password.
func (b *Flow) listBadges(ctx context.Context, uid qrauth.UserID) ([]badgeView, bool, error) {
	list, err := b.st.FindBadgesByUser(ctx, uid)
	if err != nil {
		return nil, false, err
	}
	_, pw, err := b.viewPassword(ctx, uid)
	if err != nil {
		return nil, false, err
	}
	out := make([]badgeView, 0, len(list))
	for i := len(list) - 1; i >= 0; i-- {
		out = append(out, b.viewBadge(list[i], pw))
	}
	return out, pw != nil, nil
}

// issueRequest is the body of both issue calls.
type issueRequest struct {
	Kind badge.Kind `json:"kind"`
	// Expires is an optional last day of validity, YYYY-MM-DD (UTC), for
	// secure badges only.
	Expires string `json:"expires"`
	// CurrentPassword is needed when people print a secure badge of
	// their own: a browser left signed in must not be enough to mint a
	// credential that outlives its session.
	CurrentPassword string `json:"current_password"`
}

// issuedBadge is the answer to an issue call. The payload and the files
// are returned once and kept nowhere.
type issuedBadge struct {
	Badge   badgeView `json:"badge"`
	Payload string    `json:"payload"`
	PNG     []byte    `json:"png"`
	PDF     []byte    `json:"pdf"`
}

// issue creates a badge of kind for u, issued by by (for the record and
// the audit log), and renders it.
func (b *Flow) issue(c echo.Context, u *qrauth.User, req issueRequest, by string) (*issuedBadge, error) {
	if !badge.ValidKind(req.Kind) {
		return nil, qrauth.Errorf(qrauth.EINVALID, "invalid_badge_kind", "The badge kind must be %q or %q.", badge.Secure, badge.Insecure)
	}
	now := b.h.Now()
	var expires time.Time
	if req.Expires != "" {
		if req.Kind == badge.Insecure {
			return nil, qrauth.Errorf(qrauth.EINVALID, "insecure_badge_expiry", "Insecure badges never expire; revoke one when it is no longer needed.")
		}
		day, err := time.Parse(time.DateOnly, req.Expires)
		if err != nil {
			return nil, qrauth.Errorf(qrauth.EINVALID, "invalid_expiry", "Give the last day of validity as YYYY-MM-DD.")
		}
		// Valid through the whole of that day (UTC).
		expires = day.Add(24 * time.Hour)
		if !expires.After(now) || expires.Sub(now) > maxBadgeValidity {
			return nil, qrauth.Errorf(qrauth.EINVALID, "invalid_expiry", "The expiry must be a day from today to ten years ahead.")
		}
	}
	ctx := c.Request().Context()
	id, err := badge.NewID(b.h.Rand())
	if err != nil {
		return nil, qrauth.Internal(err)
	}
	rec := &badge.Badge{ID: id, UserID: u.ID, Kind: req.Kind, CreatedBy: by, CreatedAt: now, ExpiresAt: expires}
	var payload string
	var pw *badge.Password
	if req.Kind == badge.Secure {
		pw, err = b.st.FindPassword(ctx, u.ID)
		if qrauth.ErrorCode(err) == qrauth.ENOTFOUND {
			return nil, qrauth.Errorf(qrauth.ECONFLICT, "no_password",
				"A secure badge is sealed under the account's password, and this account has none yet. Set a password on the account page first.")
		} else if err != nil {
			return nil, err
		}
		rec.Credential = badge.CredentialFingerprint(pw.Stamp)
		payload, err = b.keys.securePayload(id, u.ID, pw.Stamp)
	} else {
		payload, err = b.keys.insecurePayload(id)
	}
	if err != nil {
		return nil, err
	}
	png, err := renderBadgePNG(payload)
	if err != nil {
		return nil, qrauth.Internal(err)
	}
	pdf, err := renderBadgePDF(badgeCard{Payload: payload, Name: displayName(u), Kind: req.Kind, ID: id,
		Issued: now, Expires: expires, Service: b.h.Origin()})
	if err != nil {
		return nil, qrauth.Internal(err)
	}
	detail := fmt.Sprintf("%s badge %s by %s", req.Kind, id, by)
	if !expires.IsZero() {
		detail += ", valid until " + req.Expires
	}
	if err := b.st.CreateBadge(ctx, rec, &qrauth.AuditEvent{
		Time: now, Type: badge.AuditIssued, UserID: u.ID, IP: c.RealIP(), Detail: detail,
	}); err != nil {
		return nil, err
	}
	return &issuedBadge{Badge: b.viewBadge(rec, pw), Payload: payload, PNG: png, PDF: pdf}, nil
}

// displayName is the name printed on a badge.
func displayName(u *qrauth.User) string {
	if u.Name != "" {
		return u.Name
	}
	return u.Email
}

// revoke revokes badge id of owner (any owner when owner is ""), by by.
func (b *Flow) revoke(c echo.Context, id badge.ID, owner qrauth.UserID, by string) (badgeView, error) {
	ctx := c.Request().Context()
	notFound := qrauth.Errorf(qrauth.ENOTFOUND, "badge_not_found", "There is no such badge.")
	x, err := b.st.FindBadgeByID(ctx, id)
	if qrauth.ErrorCode(err) == qrauth.ENOTFOUND || (err == nil && owner != "" && x.UserID != owner) {
		// Someone else's badge gives the same answer as an unknown one.
		return badgeView{}, notFound
	} else if err != nil {
		return badgeView{}, err
	}
	now := b.h.Now()
	x, err = b.st.RevokeBadge(ctx, id, now, by, &qrauth.AuditEvent{
		Time: now, Type: badge.AuditRevoked, UserID: x.UserID, IP: c.RealIP(),
		Detail: fmt.Sprintf("%s badge %s by %s", x.Kind, id, by),
	})
	if err != nil {
		return badgeView{}, err
	}
	_, pw, err := b.viewPassword(ctx, x.UserID)
	if err != nil {
		return badgeView{}, err
	}
	return b.viewBadge(x, pw), nil
}

// selfKinds lists the kinds users may print for themselves.
func (b *Flow) selfKinds() []badge.Kind {
	switch b.cfg.SelfIssue {
	case SelfIssueSecure:
		return []badge.Kind{badge.Secure}
	case SelfIssueAny:
		return []badge.Kind{badge.Secure, badge.Insecure}
	}
	return []badge.Kind{}
}

func (b *Flow) handleListOwnBadges(c echo.Context) error {
	_, u, err := b.h.Authenticate(c)
	if err != nil {
		return err
	}
	list, hasPW, err := b.listBadges(c.Request().Context(), u.ID)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, map[string]any{"enabled": true, "badges": list, "self_issue": b.selfKinds(),
		"has_password": hasPW, "insecure_scans": b.cfg.InsecureScans, "policy": b.cfg.Policy})
}

func (b *Flow) handleIssueOwnBadge(c echo.Context) error {
	sess, u, err := b.h.Authenticate(c)
	if err != nil {
		return err
	}
	var req issueRequest
	if err := server.DecodeJSONBody(c, &req); err != nil {
		return err
	}
	allowed := false
	for _, k := range b.selfKinds() {
		allowed = allowed || k == req.Kind
	}
	if !allowed {
		return qrauth.Errorf(qrauth.EFORBIDDEN, "self_issue_not_allowed", "This service does not let you print this badge yourself. Ask your helpdesk.")
	}
	if req.Kind == badge.Secure {
		_, pw, err := b.viewPassword(c.Request().Context(), u.ID)
		if err != nil {
			return err
		} else if pw != nil {
			if req.CurrentPassword == "" {
				return qrauth.Errorf(qrauth.EINVALID, "current_password_required", "Enter your password to print a secure badge.")
			}
			if err := b.checkCurrentPassword(c, pw, req.CurrentPassword, "self-issue"); err != nil {
				return err
			}
		}
	}
	out, err := b.issue(c, u, req, "self")
	if err != nil {
		return err
	}
	b.h.Logger().Info("badge issued", "badge", out.Badge.ID, "user", u.ID, "session", sess.ID)
	return c.JSON(http.StatusOK, out)
}

func (b *Flow) handleRevokeOwnBadge(c echo.Context) error {
	_, u, err := b.h.Authenticate(c)
	if err != nil {
		return err
	}
	v, err := b.revoke(c, badge.ID(c.Param("id")), u.ID, "self")
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, map[string]any{"badge": v})
}

// adminUser loads the user of the :id parameter for an admin call.
func (b *Flow) adminUser(c echo.Context) (server.Actor, *qrauth.User, error) {
	actor, err := b.h.RequireRole(c, qrauth.RoleAdmin, qrauth.RoleHelpdesk)
	if err != nil {
		return server.Actor{}, nil, err
	}
	u, err := b.h.Store().FindUserByID(c.Request().Context(), qrauth.UserID(c.Param("id")))
	if err != nil {
		return server.Actor{}, nil, err
	}
	return actor, u, nil
}

func (b *Flow) handleAdminListBadges(c echo.Context) error {
	_, u, err := b.adminUser(c)
	if err != nil {
		return err
	}
	list, hasPW, err := b.listBadges(c.Request().Context(), u.ID)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, map[string]any{"user": server.ViewUser(u), "badges": list, "has_password": hasPW,
		"insecure_scans": b.cfg.InsecureScans, "policy": b.cfg.Policy})
}

func (b *Flow) handleAdminIssueBadge(c echo.Context) error {
	actor, u, err := b.adminUser(c)
	if err != nil {
		return err
	}
	var req issueRequest
	if err := server.DecodeJSONBody(c, &req); err != nil {
		return err
	}
	if req.CurrentPassword != "" {
		return qrauth.Errorf(qrauth.EINVALID, "malformed_body", "An administrator never gives the holder's password.")
	}
	// A badge signs its holder in: issuing one for a user who holds a role
	// the issuer lacks would hand the issuer that role.
	if !actor.Operator {
		for _, r := range u.Roles {
			if !actor.User.HasRole(r) {
				return qrauth.Errorf(qrauth.EFORBIDDEN, "badge_privileged_holder",
					"This user holds the %s role, which you do not: ask someone who holds it, or the operator.", r)
			}
		}
	}
	out, err := b.issue(c, u, req, actor.Name())
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, out)
}

func (b *Flow) handleAdminRevokeBadge(c echo.Context) error {
	actor, err := b.h.RequireRole(c, qrauth.RoleAdmin, qrauth.RoleHelpdesk)
	if err != nil {
		return err
	}
	v, err := b.revoke(c, badge.ID(c.Param("id")), "", actor.Name())
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, map[string]any{"badge": v})
}
