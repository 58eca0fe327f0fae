package server

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strconv"
	"syscall"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/qrauth/qrauth"
	"github.com/qrauth/qrauth/wire"
)

// The admin API lives under /admin/api. It answers two kinds of caller:
// a signed-in user holding the route's role (the admin page), and the
// operator, who reaches it over a Unix socket next to the database
// (`qrauthd admin ...`). The socket's file mode (0600) is the operator's
// credential, as with a database's local socket.

type operatorKey struct{}

// Actor is who performs an administrative action, for the audit log.
type Actor struct {
	User     *qrauth.User // nil for the operator
	Operator bool
}

// Name describes the actor in audit details.
func (a Actor) Name() string {
	if a.Operator {
		return "operator"
	}
	return string(a.User.ID)
}

// requireRole admits the operator, or a signed-in user holding any of
// roles.
func (s *Server) requireRole(c echo.Context, roles ...qrauth.Role) (Actor, error) {
	if c.Request().Context().Value(operatorKey{}) != nil {
		return Actor{Operator: true}, nil
	}
	_, u, err := s.authenticate(c)
	if err != nil {
		return Actor{}, err
	}
	for _, r := range roles {
		if u.HasRole(r) {
			return Actor{User: u}, nil
		}
	}
	return Actor{}, qrauth.Errorf(qrauth.EFORBIDDEN, "forbidden", "Your account does not have the permission for this.")
}

// openAdminSocket listens on the operator socket, replacing a stale socket
// file left by a crash but never a live one.
func (s *Server) openAdminSocket(path string) error {
	if c, err := net.DialTimeout("unix", path, time.Second); err == nil {
		c.Close()
		return fmt.Errorf("admin socket %s is in use: is another qrauthd running on this data directory?", path)
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	old := syscall.Umask(0o177)
	ln, err := net.Listen("unix", path)
	syscall.Umask(old)
	if err != nil {
		return fmt.Errorf("admin socket: %w", err)
	}
	if err := os.Chmod(path, 0o600); err != nil {
		ln.Close()
		return err
	}
	s.admin = &http.Server{
		Handler:           s.echo,
		ReadHeaderTimeout: 10 * time.Second,
		ConnContext: func(ctx context.Context, _ net.Conn) context.Context {
			return context.WithValue(ctx, operatorKey{}, true)
		},
		ErrorLog: slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
	}
	go s.admin.Serve(ln)
	s.log.Info("admin socket listening", slog.String("path", path))
	return nil
}

// adminUserView is a row of the admin user list. Feature flows add their
// per-user status through Flow.AdminUser.
type adminUserView struct {
	ID        qrauth.UserID  `json:"id"`
	Name      string         `json:"name"`
	Email     string         `json:"email"`
	CreatedAt time.Time      `json:"created_at"`
	Roles     []qrauth.Role  `json:"roles"`
	Devices   int            `json:"devices"`
	Methods   map[string]any `json:"methods"`
	// Disabled is set while the account is disabled.
	Disabled *qrauth.Disabled `json:"disabled,omitempty"`
}

func (s *Server) adminRoutes(e *echo.Echo) {
	e.GET(wire.PathAdminUsers, s.handleAdminListUsers)
	e.GET(wire.PathAdminUser, s.handleAdminGetUser)
	e.PUT(wire.PathAdminUserRoles, s.handleAdminSetRoles)
	e.GET(wire.PathAdminAudit, s.handleAdminAudit)
	e.GET(wire.PathAdminBackup, s.handleAdminBackup)
	e.GET(wire.PathAdmin, s.handleAdminPage)
	s.adminUserRoutes(e)
}

func (s *Server) handleAdminPage(c echo.Context) error {
	if err := s.ensureBindCookie(c); err != nil {
		return err
	}
	return s.servePage(c, "admin.html")
}

func (s *Server) viewAdminUser(ctx context.Context, u *qrauth.User) (adminUserView, error) {
	devs, err := s.store.FindDevicesByUser(ctx, u.ID)
	if err != nil {
		return adminUserView{}, err
	}
	v := adminUserView{ID: u.ID, Name: u.Name, Email: u.Email, CreatedAt: u.CreatedAt, Roles: u.Roles,
		Devices: len(devs), Methods: map[string]any{"qr": len(devs) > 0}, Disabled: u.Disabled}
	if v.Roles == nil {
		v.Roles = []qrauth.Role{}
	}
	for _, f := range s.flows {
		if err := f.AdminUser(ctx, u, v.Methods); err != nil {
			return adminUserView{}, err
		}
	}
	return v, nil
}

// answerAdminUser answers with {"user": AdminUser} and the fields of
// extra.
func (s *Server) answerAdminUser(c echo.Context, u *qrauth.User, extra map[string]any) error {
	v, err := s.viewAdminUser(c.Request().Context(), u)
	if err != nil {
		return err
	}
	body := map[string]any{"user": v}
	for k, x := range extra {
		body[k] = x
	}
	return c.JSON(http.StatusOK, body)
}

func (s *Server) handleAdminListUsers(c echo.Context) error {
	if _, err := s.requireRole(c, qrauth.RoleAdmin, qrauth.RoleHelpdesk); err != nil {
		return err
	}
	limit := 100
	if l := c.QueryParam("limit"); l != "" {
		if _, err := fmt.Sscan(l, &limit); err != nil || limit < 1 || limit > 1000 {
			return qrauth.Errorf(qrauth.EINVALID, "invalid_limit", "limit must be 1 to 1000.")
		}
	}
	ctx := c.Request().Context()
	users, err := s.store.ListUsers(ctx, qrauth.UserID(c.QueryParam("after")), limit)
	if err != nil {
		return err
	}
	out := make([]adminUserView, 0, len(users))
	for _, u := range users {
		v, err := s.viewAdminUser(ctx, u)
		if err != nil {
			return err
		}
		out = append(out, v)
	}
	return c.JSON(http.StatusOK, map[string]any{"users": out})
}

func (s *Server) handleAdminGetUser(c echo.Context) error {
	if _, err := s.requireRole(c, qrauth.RoleAdmin, qrauth.RoleHelpdesk); err != nil {
		return err
	}
	u, err := s.store.FindUserByID(c.Request().Context(), qrauth.UserID(c.Param("id")))
	if err != nil {
		return err
	}
	return s.answerAdminUser(c, u, nil)
}

func (s *Server) handleAdminSetRoles(c echo.Context) error {
	actor, err := s.requireRole(c, qrauth.RoleAdmin)
	if err != nil {
		return err
	}
	var body struct {
		Roles []qrauth.Role `json:"roles"`
	}
	if err := DecodeJSONBody(c, &body); err != nil {
		return err
	}
	id := qrauth.UserID(c.Param("id"))
	u, err := s.store.SetRoles(c.Request().Context(), id, body.Roles, &qrauth.AuditEvent{
		Time: s.cfg.Now(), Type: qrauth.AuditRolesChanged, UserID: id, IP: c.RealIP(), Actor: actor.Name(),
		Detail: fmt.Sprintf("roles %v by %s", body.Roles, actor.Name()),
	})
	if err != nil {
		return err
	}
	return s.answerAdminUser(c, u, nil)
}

func (s *Server) handleAdminAudit(c echo.Context) error {
	if _, err := s.requireRole(c, qrauth.RoleAdmin); err != nil {
		return err
	}
	var f qrauth.AuditFilter
	f.UserID = qrauth.UserID(c.QueryParam("user"))
	if a := c.QueryParam("after"); a != "" {
		if _, err := fmt.Sscan(a, &f.AfterSeq); err != nil {
			return qrauth.Errorf(qrauth.EINVALID, "invalid_after", "after must be a number.")
		}
	}
	events, err := s.store.ListAudit(c.Request().Context(), f)
	if err != nil {
		return err
	}
	if events == nil {
		events = []*qrauth.AuditEvent{}
	}
	return c.JSON(http.StatusOK, map[string]any{"events": events})
}

// Backuper is a store that can copy itself while serving (store.DB). The
// server asks for it by type assertion: the core Store contract does not
// need it, and a store without it answers backups with an error.
type Backuper interface {
	// Backup writes a consistent copy to w from one read transaction,
	// after calling size with its exact length.
	Backup(ctx context.Context, w io.Writer, size func(int64)) (int64, error)
}

// handleAdminBackup streams a consistent copy of the database to the
// operator, with its exact Content-Length so that the client can tell a
// cut-off copy from a whole one. Only the operator socket may ask: the copy
// holds every account, and no role of the web admin page is meant to carry
// it off. The audit event is written first, so the copy records its own
// taking and an abandoned attempt is still logged.
func (s *Server) handleAdminBackup(c echo.Context) error {
	if c.Request().Context().Value(operatorKey{}) == nil {
		return qrauth.Errorf(qrauth.EFORBIDDEN, "operator_only",
			"Backups are taken by the operator on the server: qrauthd admin backup FILE.")
	}
	b, ok := s.store.(Backuper)
	if !ok {
		// PostgreSQL: its own tools make consistent copies.
		return qrauth.Errorf(qrauth.EINVALID, "backup_unsupported",
			"This server keeps its data in PostgreSQL: back it up with pg_dump (docs/cluster.md).")
	}
	ctx := c.Request().Context()
	if err := s.store.AppendAudit(ctx, &qrauth.AuditEvent{Time: s.cfg.Now(), Type: qrauth.AuditBackup,
		Detail: "online backup by operator"}); err != nil {
		return err
	}
	w := c.Response()
	start := time.Now()
	n, err := b.Backup(ctx, w, func(size int64) {
		w.Header().Set(echo.HeaderContentType, "application/octet-stream")
		w.Header().Set(echo.HeaderContentLength, strconv.FormatInt(size, 10))
		w.WriteHeader(http.StatusOK)
	})
	if err != nil && w.Committed {
		// Too late for an error body: the client sees fewer bytes than
		// announced and keeps nothing.
		s.log.Error("backup cut off", slog.Int64("bytes", n), slog.Any("err", err))
		return nil
	} else if err != nil {
		return err
	}
	s.log.Info("backup sent", slog.Int64("bytes", n), slog.Duration("took", time.Since(start)))
	return nil
}

// DecodeJSONBody decodes a JSON request body strictly into v.
func DecodeJSONBody(c echo.Context, v any) error {
	body, err := ReadBody(c)
	if err != nil {
		return err
	}
	if err := DecodeStrict(body, v); err != nil {
		return MalformedBody(err, "The request body is not valid JSON of the expected shape.")
	}
	return nil
}
