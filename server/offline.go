package server

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/qrauth/qrauth"
	"golang.org/x/time/rate"
)

// The offline flow (docs/offline.md) has four kinds of caller:
//
//   - the phone, over device-signed requests (see authenticateDevice):
//     activates and deactivates its offline methods and decides online
//     transactions (server/offline_app.go);
//   - a relying site, with an API token or an administrator's session:
//     begins, verifies, cancels and reads offline code sessions, asks for
//     online transaction approvals, unlocks methods (server/offline_api.go);
//   - a browser on the "sign in with a code" page, bound to its bind
//     cookie, and a browser on the transaction approval page, holding the
//     page token the relying site gave it (server/offline_page.go);
//   - an administrator or helpdesk on the admin page or the operator's
//     socket: lists and unlocks methods.

// OfflineConfig configures the offline flow. The zero value is its default:
// disabled.
type OfflineConfig struct {
	// Enabled turns the flow on. It needs Config.MasterKey, which encrypts
	// the method keys at rest.
	Enabled bool
	// OTPLength is the number of digits of a code, 4 to 9. Default 6.
	OTPLength int
	// MaxAttempts is the number of wrong codes, counted per device and
	// method across sessions, that locks the method. Default 3.
	MaxAttempts int
	// SessionTTL bounds how long a code session waits for its code.
	// Default 5m.
	SessionTTL time.Duration
	// ApprovalTTL bounds how long an online transaction waits for the
	// phone. Default 5m.
	ApprovalTTL time.Duration
	// APITokens are the bearer tokens of relying sites, at least 32
	// characters each. Administrators (and the operator's socket) may call
	// the relying-site API without one.
	APITokens []string
	// BeginRate and BeginBurst limit how often one client address may
	// start "sign in with a code". Default 1 per 6 s with a burst of 10.
	BeginRate  rate.Limit
	BeginBurst int
}

// minAPITokenLen keeps relying-site tokens out of guessing range.
const minAPITokenLen = 32

// withDefaults fills in defaults and checks the settings against the rest
// of the configuration (for example, that a master key is present).
func (c OfflineConfig) withDefaults(all Config) (OfflineConfig, error) {
	if c.OTPLength == 0 {
		c.OTPLength = 6
	}
	if c.OTPLength < qrauth.MinOTPLength || c.OTPLength > qrauth.MaxOTPLength {
		return c, fmt.Errorf("OTP length %d: want %d to %d digits", c.OTPLength, qrauth.MinOTPLength, qrauth.MaxOTPLength)
	}
	if c.MaxAttempts == 0 {
		c.MaxAttempts = 3
	}
	if c.MaxAttempts < 1 || c.MaxAttempts > 100 {
		return c, fmt.Errorf("max attempts %d: want 1 to 100", c.MaxAttempts)
	}
	if c.SessionTTL == 0 {
		c.SessionTTL = 5 * time.Minute
	}
	if c.ApprovalTTL == 0 {
		c.ApprovalTTL = 5 * time.Minute
	}
	if c.SessionTTL < 0 || c.ApprovalTTL < 0 {
		return c, errors.New("durations must be positive")
	}
	if c.BeginRate == 0 {
		c.BeginRate = rate.Every(6 * time.Second)
	}
	if c.BeginBurst == 0 {
		c.BeginBurst = 10
	}
	for i, t := range c.APITokens {
		if len(t) < minAPITokenLen || strings.ContainsAny(t, " \t\r\n") {
			return c, fmt.Errorf("API token %d: want at least %d characters without spaces (for example from `qrauthd genkey`)", i+1, minAPITokenLen)
		}
	}
	if c.Enabled && len(all.MasterKey) == 0 {
		return c, errors.New("offline codes need a master key to encrypt the phones' method keys at rest: " +
			"create one with `qrauthd genkey > qrauth.key && chmod 600 qrauth.key` and start with -key-file qrauth.key (or set QRAUTH_KEY)")
	}
	return c, nil
}

// MethodOffline names an offline code among the steps of a sign-in.
const MethodOffline = "offline"

// offlineFlow is the state of the flow, built with the routes.
type offlineFlow struct {
	s      *Server
	cfg    OfflineConfig
	sealer *sealer
	begins *limiter
	tokens [][32]byte // SHA-256 of the API tokens
	wait   approvalWaiters

	mu        sync.Mutex
	lastPurge time.Time

	shutdownOnce sync.Once
	shutdown     chan struct{} // closed when the HTTP server shuts down
}

func (s *Server) offlineRoutes(e *echo.Echo) {
	o := &offlineFlow{s: s, cfg: s.cfg.Offline, begins: newLimiter(s.cfg.Offline.BeginRate, s.cfg.Offline.BeginBurst),
		shutdown: make(chan struct{})}
	for _, t := range o.cfg.APITokens {
		o.tokens = append(o.tokens, sha256.Sum256([]byte(t)))
	}
	if o.cfg.Enabled {
		sl, err := newSealer(s.cfg.MasterKey, "offline", s.cfg.Rand)
		if err != nil {
			// withDefaults checked the key; a failure here is a bug.
			s.log.Error("offline: no sealer", slog.Any("err", err))
			o.cfg.Enabled = false
		}
		o.sealer = sl
	}
	h := o.enabled

	// Pages.
	e.GET("/offline", o.handleOfflinePage)
	e.GET("/approve", o.handleApprovePage)
	// A plain camera app that opens a transaction code lands here; like
	// /q/PSK, the page never touches the transaction.
	e.GET("/t/:token", h(s.handleTransactionScanPage))

	// The browser's "sign in with a code".
	e.POST("/api/offline/signin", h(o.handleSignInBegin))
	e.POST("/api/offline/signin/:id/verify", h(o.handleSignInVerify))
	e.POST("/api/offline/signin/:id/cancel", h(o.handleSignInCancel))
	// The transaction approval page.
	e.POST("/api/approve/view", h(o.handlePageView))
	e.POST("/api/approve/verify", h(o.handlePageVerify))

	// The phone.
	e.GET("/api/app/offline", h(o.handleAppListMethods))
	e.POST("/api/app/offline/:method", h(o.handleAppActivate))
	e.DELETE("/api/app/offline/:method", h(o.handleAppDeactivate))
	e.GET("/api/app/approvals/:token", h(o.handleAppApproval))
	e.POST("/api/app/approvals/:token", h(o.handleAppDecide))

	// Relying sites.
	e.POST("/api/offline/sessions", h(o.handleBegin))
	e.GET("/api/offline/sessions/:id", h(o.handleStatus))
	e.POST("/api/offline/sessions/:id/verify", h(o.handleVerify))
	e.POST("/api/offline/sessions/:id/cancel", h(o.handleCancel))
	e.GET("/api/offline/users/:id/methods", h(o.api(o.handleUserMethods)))
	e.POST("/api/offline/users/:id/unlock", h(o.api(o.handleUnlock)))
	e.POST("/api/approvals", h(o.handleCreateApproval))
	e.GET("/api/approvals/:id", h(o.handleApprovalStatus))
	e.POST("/api/approvals/:id/cancel", h(o.handleCancelApproval))

	// Administration.
	e.GET("/admin/api/offline/users/:id", h(o.admin(o.handleUserMethods)))
	e.POST("/admin/api/offline/users/:id/unlock", h(o.admin(o.handleUnlock)))
}

func init() {
	adminUserExtras = append(adminUserExtras, func(s *Server, ctx context.Context, u *qrauth.User, methods map[string]any) error {
		creds, err := s.store.FindOfflineCredentialsByUser(ctx, u.ID)
		if err != nil {
			return err
		}
		if len(creds) == 0 {
			methods["offline"] = false
			return nil
		}
		views := make([]offlineMethodView, 0, len(creds))
		for _, c := range creds {
			views = append(views, offlineMethodView{DeviceID: c.DeviceID, Method: c.Method, Locked: c.Locked,
				Failures: c.Failures, ActivatedAt: c.ActivatedAt, LastUsedAt: c.LastUsedAt, LockedAt: c.LockedAt})
		}
		methods["offline"] = views
		return nil
	})
}

var errOfflineDisabled = qrauth.Errorf(qrauth.ENOTFOUND, "offline_disabled",
	"Offline codes are not enabled on this server. Sign in with the QR code instead.")

// enabled answers every route of the flow with "offline_disabled" while the
// flow is off, so that clients get a clear reason instead of a bare 404.
func (o *offlineFlow) enabled(h echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		if !o.cfg.Enabled {
			return errOfflineDisabled
		}
		return h(c)
	}
}

// actorFunc is a handler that knows who calls it, for the audit log.
type actorFunc func(c echo.Context, actor string) error

// api admits a relying site: an API token, an administrator or the
// operator.
func (o *offlineFlow) api(h actorFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		actor, err := o.requireAPI(c)
		if err != nil {
			return err
		}
		return h(c, actor)
	}
}

// admin admits the admin page and the operator: administrators and
// helpdesk, who unlock methods.
func (o *offlineFlow) admin(h actorFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		a, err := o.s.requireRole(c, qrauth.RoleAdmin, qrauth.RoleHelpdesk)
		if err != nil {
			return err
		}
		return h(c, a.Name())
	}
}

// requireAPI checks the relying site's credential: "Authorization: Bearer
// TOKEN" with a configured token, or else what requireRole admits for
// administrators. It returns a name for the audit log.
func (o *offlineFlow) requireAPI(c echo.Context) (string, error) {
	h := c.Request().Header.Get("Authorization")
	if h == "" {
		a, err := o.s.requireRole(c, qrauth.RoleAdmin)
		if qrauth.ErrorReason(err) == "not_signed_in" {
			return "", qrauth.Errorf(qrauth.EUNAUTHORIZED, "api_credential_required",
				"This call needs an API token (Authorization: Bearer …) or an administrator's session.")
		}
		if err != nil {
			return "", err
		}
		return a.Name(), nil
	}
	tok, ok := strings.CutPrefix(h, "Bearer ")
	if ok {
		sum := sha256.Sum256([]byte(strings.TrimSpace(tok)))
		found := -1
		for i, t := range o.tokens { // every token is compared, in constant time each
			if subtle.ConstantTimeCompare(sum[:], t[:]) == 1 {
				found = i
			}
		}
		if found >= 0 {
			return fmt.Sprintf("api token %d", found+1), nil
		}
	}
	return "", qrauth.Errorf(qrauth.EUNAUTHORIZED, "bad_api_token", "The API token is not valid.")
}

// keyAD binds a sealed method key to its owner, device and method, so that
// a sealed key copied to another record does not open.
func keyAD(u qrauth.UserID, d qrauth.DeviceID, m qrauth.OfflineMethod) []byte {
	return []byte("offline-key\x00" + string(u) + "\x00" + string(d) + "\x00" + string(m))
}

// purge removes old sessions and approvals, at most once a minute, from a
// request that creates new ones: the flow has no timer of its own. Ended
// records are kept for an hour after their expiry so that status calls
// keep answering.
func (o *offlineFlow) purge(ctx context.Context) {
	now := o.s.cfg.Now()
	o.mu.Lock()
	due := now.Sub(o.lastPurge) > time.Minute
	if due {
		o.lastPurge = now
	}
	o.mu.Unlock()
	if !due {
		return
	}
	o.begins.purge(now)
	if n, err := o.s.store.DeleteOfflineRecords(ctx, now.Add(-time.Hour)); err != nil {
		o.s.log.Error("offline purge failed", slog.Any("err", err))
	} else if n > 0 {
		o.s.log.Info("old offline sessions removed", slog.Int("count", n))
	}
}

// originHost is the host of the public origin, for texts shown on phones.
func (o *offlineFlow) originHost() string {
	if u, err := url.Parse(o.s.cfg.Origin); err == nil && u.Host != "" {
		return u.Host
	}
	return o.s.cfg.Origin
}

// onShutdown returns a channel closed when the HTTP server shuts down, so
// that long polls end instead of holding the shutdown up.
func (o *offlineFlow) onShutdown() <-chan struct{} {
	o.shutdownOnce.Do(func() {
		if o.s.http != nil {
			o.s.http.RegisterOnShutdown(func() { close(o.shutdown) })
		}
	})
	return o.shutdown
}

// approvalWaiters lets long polls wait for a change of an approval.
type approvalWaiters struct {
	mu sync.Mutex
	m  map[string]*approvalWaiter
}

type approvalWaiter struct {
	ch chan struct{}
	n  int
}

// add returns a channel closed at the next change of id; call done when
// no longer waiting.
func (w *approvalWaiters) add(id string) (<-chan struct{}, func()) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.m == nil {
		w.m = make(map[string]*approvalWaiter)
	}
	x := w.m[id]
	if x == nil {
		x = &approvalWaiter{ch: make(chan struct{})}
		w.m[id] = x
	}
	x.n++
	return x.ch, func() {
		w.mu.Lock()
		defer w.mu.Unlock()
		x.n--
		if x.n == 0 && w.m[id] == x {
			delete(w.m, id)
		}
	}
}

// notify wakes everyone waiting for id.
func (w *approvalWaiters) notify(id string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if x := w.m[id]; x != nil {
		close(x.ch)
		delete(w.m, id)
	}
}
