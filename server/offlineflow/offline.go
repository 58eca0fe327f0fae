package offlineflow

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
	"github.com/qrauth/qrauth/internal/keys"
	"github.com/qrauth/qrauth/offline"
	"github.com/qrauth/qrauth/server"
	"github.com/qrauth/qrauth/webclient"
	"github.com/qrauth/qrauth/wire"
	"golang.org/x/time/rate"
)

// The defaults of Config: what a zero field means.
const (
	DefaultOTPLength   = 6
	DefaultMaxAttempts = 3
	DefaultSessionTTL  = 5 * time.Minute
	DefaultApprovalTTL = 5 * time.Minute
)

// Config configures the offline flow. The flow is on exactly when
// cmd/qrauthd lists it; every zero field takes its Default* constant.
type Config struct {
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
func (c Config) withDefaults(masterKey []byte) (Config, error) {
	if c.OTPLength == 0 {
		c.OTPLength = DefaultOTPLength
	}
	if c.OTPLength < offline.MinOTPLength || c.OTPLength > offline.MaxOTPLength {
		return c, fmt.Errorf("OTP length %d: want %d to %d digits", c.OTPLength, offline.MinOTPLength, offline.MaxOTPLength)
	}
	if c.MaxAttempts == 0 {
		c.MaxAttempts = DefaultMaxAttempts
	}
	if c.MaxAttempts < 1 || c.MaxAttempts > 100 {
		return c, fmt.Errorf("max attempts %d: want 1 to 100", c.MaxAttempts)
	}
	if c.SessionTTL == 0 {
		c.SessionTTL = DefaultSessionTTL
	}
	if c.ApprovalTTL == 0 {
		c.ApprovalTTL = DefaultApprovalTTL
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
	if len(masterKey) == 0 {
		return c, errors.New("offline codes need a master key to encrypt the phones' method keys at rest: " +
			"create one with `qrauthd genkey > qrauth.key && chmod 600 qrauth.key` and start with -key-file qrauth.key (or set QRAUTH_KEY)")
	}
	return c, nil
}

// handleTransactionScanPage answers a plain camera app that opened a
// transaction code (/t/TOKEN): the page says what that code is and touches
// nothing.
func (o *Flow) handleTransactionScanPage(c echo.Context) error {
	return o.h.ServePage(c, webclient.TransactionScanPage)
}

// MethodOffline names an offline code among the steps of a sign-in.
const MethodOffline = server.MethodOffline

// Flow is the state of the flow, built with the routes.
type Flow struct {
	h      server.Host
	st     offline.Store
	key    []byte // the master key
	cfg    Config
	sealer *keys.Sealer
	begins *server.Limiter
	tokens [][32]byte // SHA-256 of the API tokens
	wait   approvalWaiters

	mu        sync.Mutex
	lastPurge time.Time

	shutdownOnce sync.Once
	shutdown     chan struct{} // closed when the HTTP server shuts down
}

// New checks cfg and returns the flow over st. masterKey is the operator's
// key that seals the phones' method keys at rest: required.
func New(cfg Config, st offline.Store, masterKey []byte) (*Flow, error) {
	cfg, err := cfg.withDefaults(masterKey)
	if err != nil {
		return nil, fmt.Errorf("offline: %w", err)
	}
	return &Flow{cfg: cfg, st: st, key: masterKey, shutdown: make(chan struct{})}, nil
}

// Name implements server.Flow.
func (o *Flow) Name() string { return "offline" }

// Gate implements server.Flow: an offline code is a first step; it asks for none.
func (o *Flow) Gate(context.Context, *qrauth.User, *server.SignIn) (server.Step, error) {
	return server.Step{}, nil
}

// Purge implements server.Flow.
func (o *Flow) Purge(ctx context.Context, _ time.Time) { o.purge(ctx) }

// Shutdown implements server.Flow: long polls end.
func (o *Flow) Shutdown() { o.shutdownOnce.Do(func() { close(o.shutdown) }) }

// Mount implements server.Flow.
func (o *Flow) Mount(hs server.Host, e *echo.Echo) error {
	o.h = hs
	o.begins = hs.NewLimiter("offline_begin", o.cfg.BeginRate, o.cfg.BeginBurst)
	for _, t := range o.cfg.APITokens {
		o.tokens = append(o.tokens, sha256.Sum256([]byte(t)))
	}
	sl, err := keys.NewSealer(o.key, keys.Offline, hs.Rand())
	if err != nil {
		return err
	}
	o.sealer = sl

	// Pages.
	e.GET(wire.PathOffline, o.handleOfflinePage)
	e.GET(wire.PathApprove, o.handleApprovePage)
	// A plain camera app that opens a transaction code lands here; like
	// /q/PSK, the page never touches the transaction.
	e.GET(wire.PathTransactionScan, o.handleTransactionScanPage)

	// The browser's "sign in with a code".
	e.POST(wire.PathOfflineSignIn, o.handleSignInBegin)
	e.POST(wire.PathOfflineSignInVerify, o.handleSignInVerify)
	e.POST(wire.PathOfflineSignInCancel, o.handleSignInCancel)
	// The transaction approval page.
	e.POST(wire.PathApproveView, o.handlePageView)
	e.POST(wire.PathApproveVerify, o.handlePageVerify)

	// The phone.
	e.GET(wire.PathAppOffline, o.handleAppListMethods)
	e.POST(wire.PathAppOfflineMethod, o.handleAppActivate)
	e.DELETE(wire.PathAppOfflineMethod, o.handleAppDeactivate)
	e.GET(wire.PathAppApproval, o.handleAppApproval)
	e.POST(wire.PathAppApproval, o.handleAppDecide)

	// Relying sites.
	e.POST(wire.PathOfflineSessions, o.handleBegin)
	e.GET(wire.PathOfflineSession, o.handleStatus)
	e.POST(wire.PathOfflineSessionVerify, o.handleVerify)
	e.POST(wire.PathOfflineSessionCancel, o.handleCancel)
	e.GET(wire.PathOfflineUserMethods, o.api(o.handleUserMethods))
	e.POST(wire.PathOfflineUserUnlock, o.api(o.handleUnlock))
	e.POST(wire.PathApprovals, o.handleCreateApproval)
	e.GET(wire.PathApproval, o.handleApprovalStatus)
	e.POST(wire.PathApprovalCancel, o.handleCancelApproval)

	// Administration.
	e.GET(wire.PathAdminOfflineUser, o.admin(o.handleUserMethods))
	e.POST(wire.PathAdminOfflineUserUnlock, o.admin(o.handleUnlock))
	return nil
}

// AdminUser implements server.Flow: the user's offline methods.
func (o *Flow) AdminUser(ctx context.Context, u *qrauth.User, methods map[string]any) error {
	{
		creds, err := o.st.FindOfflineCredentialsByUser(ctx, u.ID)
		if err != nil {
			return err
		}
		if len(creds) == 0 {
			methods["offline"] = false
			return nil
		}
		views := make([]offlineMethodView, 0, len(creds))
		// viewMethod, as the other lists do: RemainingAttempts was left
		// out here and read 0 for a method never used.
		for _, c := range creds {
			views = append(views, o.viewMethod(c, ""))
		}
		methods["offline"] = views
		return nil
	}
}

// actorFunc is a handler that knows who calls it, for the audit log.
type actorFunc func(c echo.Context, actor string) error

// api admits a relying site: an API token, an administrator or the
// operator.
func (o *Flow) api(h actorFunc) echo.HandlerFunc {
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
func (o *Flow) admin(h actorFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		a, err := o.h.RequireRole(c, qrauth.RoleAdmin, qrauth.RoleHelpdesk)
		if err != nil {
			return err
		}
		return h(c, a.Name())
	}
}

// requireAPI checks the relying site's credential: "Authorization: Bearer
// TOKEN" with a configured token, or else what requireRole admits for
// administrators. It returns a name for the audit log.
func (o *Flow) requireAPI(c echo.Context) (string, error) {
	h := c.Request().Header.Get("Authorization")
	if h == "" {
		a, err := o.h.RequireRole(c, qrauth.RoleAdmin)
		if errors.Is(err, qrauth.ErrNotSignedIn) {
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
func keyAD(u qrauth.UserID, d qrauth.DeviceID, m offline.Method) []byte {
	return []byte("offline-key\x00" + string(u) + "\x00" + string(d) + "\x00" + string(m))
}

// purge removes old sessions and approvals, at most once a minute, from a
// request that creates new ones: the flow has no timer of its own. Ended
// records are kept for an hour after their expiry so that status calls
// keep answering.
func (o *Flow) purge(ctx context.Context) {
	now := o.h.Now()
	o.mu.Lock()
	due := now.Sub(o.lastPurge) > time.Minute
	if due {
		o.lastPurge = now
	}
	o.mu.Unlock()
	if !due {
		return
	}
	if n, err := o.st.DeleteOfflineRecords(ctx, now.Add(-time.Hour)); err != nil {
		o.h.Logger().Error("offline purge failed", slog.Any("err", err))
	} else if n > 0 {
		o.h.Logger().Info("old offline sessions removed", slog.Int("count", n))
	}
}

// originHost is the host of the public origin, for texts shown on phones.
func (o *Flow) originHost() string {
	if u, err := url.Parse(o.h.Origin()); err == nil && u.Host != "" {
		return u.Host
	}
	return o.h.Origin()
}

// onShutdown returns a channel closed when the server shuts down, so that
// long polls end instead of holding the shutdown up.
func (o *Flow) onShutdown() <-chan struct{} { return o.shutdown }

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
