package server

import (
	"context"
	"crypto/ed25519"
	"fmt"
	"net/http"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/qrauth/qrauth"
	"github.com/qrauth/qrauth/wire"
)

// An account's lifecycle under an administrator (docs/operations-users.md):
// list and remove its phones, disable and enable it, delete it with
// everything of its, export its data. Each change is one store transaction
// with its audit event, which names the actor.

func (s *Server) adminUserRoutes(e *echo.Echo) {
	e.GET(wire.PathAdminUserDevices, s.handleAdminListDevices)
	e.DELETE(wire.PathAdminUserDevice, s.handleAdminRemoveDevice)
	e.POST(wire.PathAdminUserDisable, s.handleAdminDisableUser)
	e.POST(wire.PathAdminUserEnable, s.handleAdminEnableUser)
	e.DELETE(wire.PathAdminUser, s.handleAdminDeleteUser)
	e.GET(wire.PathAdminUserExport, s.handleAdminExportUser)
}

// errOwnAccount refuses an administrator disabling or deleting the account
// they are signed in with: the last administrator would lock everyone
// out of the admin page. The operator can still do it.
var errOwnAccount = qrauth.Errorf(qrauth.ECONFLICT, "own_account",
	"You cannot disable or delete the account you are signed in with.")

func notOwnAccount(a Actor, id qrauth.UserID) error {
	if a.User != nil && a.User.ID == id {
		return errOwnAccount
	}
	return nil
}

func (s *Server) handleAdminListDevices(c echo.Context) error {
	if _, err := s.requireRole(c, qrauth.RoleAdmin, qrauth.RoleHelpdesk); err != nil {
		return err
	}
	u, err := s.store.FindUserByID(c.Request().Context(), qrauth.UserID(c.Param("id")))
	if err != nil {
		return err
	}
	return s.listDevices(c, u.ID)
}

// handleAdminRemoveDevice removes one phone of an account and ends the
// sessions it approved: an administrator removes a phone because it is
// lost or no longer the person's, so what it let in goes too.
func (s *Server) handleAdminRemoveDevice(c echo.Context) error {
	actor, err := s.requireRole(c, qrauth.RoleAdmin)
	if err != nil {
		return err
	}
	ctx := c.Request().Context()
	uid := qrauth.UserID(c.Param("id"))
	if _, err := s.store.FindUserByID(ctx, uid); err != nil {
		return err
	}
	d, err := s.store.FindDeviceByID(ctx, qrauth.DeviceID(c.Param("device")))
	if qrauth.ErrorCode(err) == qrauth.ENOTFOUND || (err == nil && d.UserID != uid) {
		return qrauth.Errorf(qrauth.ENOTFOUND, "device_not_found", "This account has no such phone.")
	} else if err != nil {
		return err
	}
	ended, err := s.store.RemoveDevice(ctx, d.ID, &qrauth.AuditEvent{
		Time: s.cfg.Now(), Type: qrauth.AuditDeviceRemoved, UserID: uid, DeviceID: d.ID, IP: c.RealIP(), Actor: actor.Name(),
		Detail: fmt.Sprintf("removed %s by %s, with the sessions it approved", d.Name, actor.Name()),
	})
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, map[string]any{"ended_sessions": ended})
}

func (s *Server) handleAdminDisableUser(c echo.Context) error {
	actor, err := s.requireRole(c, qrauth.RoleAdmin)
	if err != nil {
		return err
	}
	var body struct {
		Reason string `json:"reason"`
	}
	if err := DecodeJSONBody(c, &body); err != nil {
		return err
	}
	reason, err := qrauth.NormalizeDisableReason(body.Reason)
	if err != nil {
		return err
	}
	id := qrauth.UserID(c.Param("id"))
	if err := notOwnAccount(actor, id); err != nil {
		return err
	}
	now := s.cfg.Now()
	detail := "by " + actor.Name()
	if reason != "" {
		detail += ": " + reason
	}
	u, ended, err := s.store.DisableUser(c.Request().Context(), id, qrauth.Disabled{At: now, By: actor.Name(), Reason: reason},
		&qrauth.AuditEvent{Time: now, Type: qrauth.AuditUserDisabled, UserID: id, IP: c.RealIP(), Actor: actor.Name(), Detail: detail})
	if err != nil {
		return err
	}
	return s.answerAdminUser(c, u, map[string]any{"ended_sessions": ended})
}

func (s *Server) handleAdminEnableUser(c echo.Context) error {
	actor, err := s.requireRole(c, qrauth.RoleAdmin)
	if err != nil {
		return err
	}
	id := qrauth.UserID(c.Param("id"))
	u, err := s.store.EnableUser(c.Request().Context(), id, &qrauth.AuditEvent{
		Time: s.cfg.Now(), Type: qrauth.AuditUserEnabled, UserID: id, IP: c.RealIP(), Actor: actor.Name(), Detail: "by " + actor.Name(),
	})
	if err != nil {
		return err
	}
	return s.answerAdminUser(c, u, nil)
}

// handleAdminDeleteUser deletes an account and everything of its. The
// audit event names only the actor: the account's id would link the
// anonymized events left behind back to whoever knew it.
func (s *Server) handleAdminDeleteUser(c echo.Context) error {
	actor, err := s.requireRole(c, qrauth.RoleAdmin)
	if err != nil {
		return err
	}
	id := qrauth.UserID(c.Param("id"))
	if err := notOwnAccount(actor, id); err != nil {
		return err
	}
	if err := s.store.DeleteUser(c.Request().Context(), id, &qrauth.AuditEvent{
		Time: s.cfg.Now(), Type: qrauth.AuditUserDeleted, IP: c.RealIP(), Actor: actor.Name(), Detail: "an account was deleted by " + actor.Name(),
	}); err != nil {
		return err
	}
	return c.NoContent(http.StatusNoContent)
}

// userExport is everything the service holds about a person, for an
// access request: the public parts only. Token hashes, phone hashes and
// secrets stay out; the flows' entries are what they show administrators.
type userExport struct {
	ExportedAt time.Time            `json:"exported_at"`
	User       exportedUser         `json:"user"`
	Devices    []exportedDevice     `json:"devices"`
	Sessions   []exportedSession    `json:"sessions"`
	Audit      []*qrauth.AuditEvent `json:"audit"`
	Methods    map[string]any       `json:"methods"`
}

type exportedUser struct {
	ID        qrauth.UserID    `json:"id"`
	Name      string           `json:"name"`
	Email     string           `json:"email"`
	CreatedAt time.Time        `json:"created_at"`
	Roles     []qrauth.Role    `json:"roles"`
	Disabled  *qrauth.Disabled `json:"disabled,omitempty"`
}

type exportedDevice struct {
	ID         qrauth.DeviceID   `json:"id"`
	Name       string            `json:"name"`
	PublicKey  ed25519.PublicKey `json:"public_key"`
	CreatedAt  time.Time         `json:"created_at"`
	LastSeenAt time.Time         `json:"last_seen_at,omitzero"`
}

type exportedSession struct {
	ID         qrauth.SessionID `json:"id"`
	DeviceID   qrauth.DeviceID  `json:"device_id,omitempty"`
	IP         string           `json:"ip"`
	UserAgent  string           `json:"user_agent"`
	CreatedAt  time.Time        `json:"created_at"`
	ExpiresAt  time.Time        `json:"expires_at"`
	LastSeenAt time.Time        `json:"last_seen_at"`
}

func (s *Server) handleAdminExportUser(c echo.Context) error {
	actor, err := s.requireRole(c, qrauth.RoleAdmin)
	if err != nil {
		return err
	}
	ctx := c.Request().Context()
	u, err := s.store.FindUserByID(ctx, qrauth.UserID(c.Param("id")))
	if err != nil {
		return err
	}
	x, err := s.exportUser(ctx, u)
	if err != nil {
		return err
	}
	if err := s.store.AppendAudit(ctx, &qrauth.AuditEvent{
		Time: x.ExportedAt, Type: qrauth.AuditUserExported, UserID: u.ID, IP: c.RealIP(), Actor: actor.Name(), Detail: "by " + actor.Name(),
	}); err != nil {
		return err
	}
	return c.JSON(http.StatusOK, x)
}

func (s *Server) exportUser(ctx context.Context, u *qrauth.User) (*userExport, error) {
	x := &userExport{ExportedAt: s.cfg.Now(), Devices: []exportedDevice{}, Sessions: []exportedSession{},
		Audit: []*qrauth.AuditEvent{}, Methods: map[string]any{}}
	x.User = exportedUser{ID: u.ID, Name: u.Name, Email: u.Email, CreatedAt: u.CreatedAt, Roles: u.Roles, Disabled: u.Disabled}
	if x.User.Roles == nil {
		x.User.Roles = []qrauth.Role{}
	}
	devs, err := s.store.FindDevicesByUser(ctx, u.ID)
	if err != nil {
		return nil, err
	}
	for _, d := range devs {
		x.Devices = append(x.Devices, exportedDevice{ID: d.ID, Name: d.Name, PublicKey: d.PublicKey,
			CreatedAt: d.CreatedAt, LastSeenAt: d.LastSeenAt})
	}
	sessions, err := s.store.FindSessionsByUser(ctx, u.ID)
	if err != nil {
		return nil, err
	}
	for _, ss := range sessions {
		x.Sessions = append(x.Sessions, exportedSession{ID: ss.ID, DeviceID: ss.DeviceID, IP: ss.IP, UserAgent: ss.UserAgent,
			CreatedAt: ss.CreatedAt, ExpiresAt: ss.ExpiresAt, LastSeenAt: ss.LastSeenAt})
	}
	for f := (qrauth.AuditFilter{UserID: u.ID, Limit: 1000}); ; {
		page, err := s.store.ListAudit(ctx, f)
		if err != nil {
			return nil, err
		}
		x.Audit = append(x.Audit, page...)
		if len(page) == 0 {
			break
		}
		f.AfterSeq = page[len(page)-1].Seq
	}
	// As in the admin user list: the core's QR method, then each flow's.
	x.Methods["qr"] = len(devs) > 0
	for _, f := range s.flows {
		if err := f.AdminUser(ctx, u, x.Methods); err != nil {
			return nil, err
		}
	}
	return x, nil
}
