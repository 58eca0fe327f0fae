package badgeflow

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"runtime"
	"slices"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/qrauth/qrauth"
	"github.com/qrauth/qrauth/badge"
	"github.com/qrauth/qrauth/server"
	"github.com/qrauth/qrauth/wire"
	"golang.org/x/time/rate"
)

// Sign-in methods of this flow, recorded on the sign-in's audit event.
const (
	MethodBadgeInsecure = "badge_insecure"
	MethodBadgeSecure   = "badge_secure"
	MethodPassword      = server.MethodPassword
)

// Badge policies: what a badge is in a sign-in.
const (
	// BadgeFirstStep: a badge starts a sign-in and identifies its holder.
	// A secure badge then counts as username and password; an insecure one
	// needs a second factor.
	BadgeFirstStep = "first-step"
	// BadgeMethod: a badge never starts a sign-in. After another first
	// step (the phone), a user who holds a secure badge must show it.
	BadgeMethod = "method"
)

// Second factors that may follow an insecure badge.
const (
	SecondFactorPassword = "password"
	SecondFactorPhone    = "phone" // approve with the holder's own phone, as a normal QR sign-in
)

// DefaultSecondFactors is what may follow an insecure badge when
// Config.SecondFactors is empty: either.
var DefaultSecondFactors = []string{SecondFactorPassword, SecondFactorPhone}

// Who may print a badge of their own from the account page.
const (
	SelfIssueNone   = "none"
	SelfIssueSecure = "secure"
	SelfIssueAny    = "any"
)

// DefaultPasswordParams are the argon2id parameters of new password hashes:
// OWASP's 19 MiB, two passes, one lane. Raising them later rehashes each
// password at its next use, keeping its stamp (so badges stay valid).
var DefaultPasswordParams = badge.PasswordParams{Time: 2, Memory: 19 * 1024, Threads: 1, KeyLen: 32}

// Config configures the badge flow. The zero value is its default. The
// flow is on when it is listed (cmd/qrauthd's -badges): badges (issuing,
// printing, scanning) and passwords; it needs the master key, from which
// the badge keys are derived. Off, it is not listed and its routes do not
// exist.
type Config struct {
	// InsecureScans accepts insecure badges at sign-in: the deployment
	// switch "insecure badge scans enabled". Off by default.
	InsecureScans bool
	// Policy is BadgeFirstStep (default) or BadgeMethod.
	Policy string
	// SecondFactors lists what may follow an insecure badge:
	// SecondFactorPassword and/or SecondFactorPhone. Default
	// DefaultSecondFactors (both). Steps
	// of other flows (an OATH code) count as well when their own gates ask
	// for them.
	SecondFactors []string
	// SelfIssue says which badges users may print for themselves:
	// SelfIssueNone (default), SelfIssueSecure or SelfIssueAny. Admins and
	// the helpdesk issue for anyone regardless.
	SelfIssue string
	// Password holds the argon2id parameters of new hashes. Zero fields
	// take DefaultPasswordParams.
	Password badge.PasswordParams
	// FrameRate and FrameBurst limit camera frames and badge scans per
	// client IP. Default 5/s with a burst of 20: a page sends about three
	// frames a second.
	FrameRate  rate.Limit
	FrameBurst int
	// PasswordRate and PasswordBurst limit password attempts per client IP;
	// each account additionally gets 10 wrong passwords, then one per 30 s.
	// Default 1/s with a burst of 10.
	PasswordRate  rate.Limit
	PasswordBurst int
}

// withDefaults fills in defaults and checks the settings against the rest
// of the configuration (for example, that a master key is present).
func (c Config) withDefaults(masterKey []byte) (Config, error) {
	if len(masterKey) == 0 {
		return c, errors.New("badges need the master key, from which their sealing keys are derived: " +
			"make one with `qrauthd genkey > qrauth.key && chmod 600 qrauth.key` and start with -key-file qrauth.key")
	}
	switch c.Policy {
	case "":
		c.Policy = BadgeFirstStep
	case BadgeFirstStep, BadgeMethod:
	default:
		return c, fmt.Errorf("policy %q: want %s or %s", c.Policy, BadgeFirstStep, BadgeMethod)
	}
	if c.Policy == BadgeMethod && c.InsecureScans {
		return c, errors.New("insecure badge scans cannot go with the method policy: an insecure badge only says who " +
			"someone is, it authenticates nothing; use a secure badge as the method, or the first-step policy")
	}
	if len(c.SecondFactors) == 0 {
		c.SecondFactors = slices.Clone(DefaultSecondFactors)
	}
	for _, f := range c.SecondFactors {
		if f != SecondFactorPassword && f != SecondFactorPhone {
			return c, fmt.Errorf("second factor %q: want %s or %s", f, SecondFactorPassword, SecondFactorPhone)
		}
	}
	c.SecondFactors = slices.Compact(slices.Sorted(slices.Values(c.SecondFactors)))
	switch c.SelfIssue {
	case "":
		c.SelfIssue = SelfIssueNone
	case SelfIssueNone, SelfIssueSecure, SelfIssueAny:
	default:
		return c, fmt.Errorf("self-issue %q: want %s, %s or %s", c.SelfIssue, SelfIssueNone, SelfIssueSecure, SelfIssueAny)
	}
	p := &c.Password
	if p.Time == 0 {
		p.Time = DefaultPasswordParams.Time
	}
	if p.Memory == 0 {
		p.Memory = DefaultPasswordParams.Memory
	}
	if p.Threads == 0 {
		p.Threads = DefaultPasswordParams.Threads
	}
	if p.KeyLen == 0 {
		p.KeyLen = DefaultPasswordParams.KeyLen
	}
	if p.Memory < 8*uint32(p.Threads) || p.Memory > 4<<20 || p.Time > 100 || p.KeyLen < 16 || p.KeyLen > 64 {
		return c, fmt.Errorf("password parameters %+v: want memory 8×threads to 4194304 KiB, time 1 to 100, key length 16 to 64", *p)
	}
	if c.FrameRate == 0 {
		c.FrameRate = 5
	}
	if c.FrameBurst == 0 {
		c.FrameBurst = 20
	}
	if c.PasswordRate == 0 {
		c.PasswordRate = 1
	}
	if c.PasswordBurst == 0 {
		c.PasswordBurst = 10
	}
	if c.FrameRate < 0 || c.FrameBurst < 0 || c.PasswordRate < 0 || c.PasswordBurst < 0 {
		return c, errors.New("rates and bursts must be positive")
	}
	return c, nil
}

// allows reports whether f may follow an insecure badge.
func (c Config) allows(f string) bool { return slices.Contains(c.SecondFactors, f) }

// Flow is the state of the flow on one server: keys and limits.
type Flow struct {
	h    server.Host
	st   badge.Store
	key  []byte // the master key
	cfg  Config
	keys *badgeKeys // nil while badges are off

	frames  *server.Limiter // frames and scans per IP
	pwIP    *server.Limiter // password attempts per IP
	pwUser  *server.Limiter // wrong passwords per account
	hashes  chan struct{}
	decodes chan struct{}
}

// New checks cfg and returns the flow over st. masterKey is the operator's
// key from which the badges' sealing keys are derived: required when the
// flow is enabled.
func New(cfg Config, st badge.Store, masterKey []byte) (*Flow, error) {
	cfg, err := cfg.withDefaults(masterKey)
	if err != nil {
		return nil, fmt.Errorf("badge: %w", err)
	}
	return &Flow{cfg: cfg, st: st, key: masterKey}, nil
}

// Name implements server.Flow.
func (b *Flow) Name() string { return "badge" }

// Gate implements server.Flow.
func (b *Flow) Gate(ctx context.Context, u *qrauth.User, si *server.SignIn) (server.Step, error) {
	return b.gate(ctx, u, si)
}

// AdminUser implements server.Flow.
func (b *Flow) AdminUser(ctx context.Context, u *qrauth.User, methods map[string]any) error {
	return b.adminExtras(ctx, u, methods)
}

// Purge implements server.Flow: the limiters are the core's to purge.
func (b *Flow) Purge(context.Context, time.Time) {}

// Shutdown implements server.Flow.
func (b *Flow) Shutdown() {}

// Mount implements server.Flow.
func (b *Flow) Mount(h server.Host, e *echo.Echo) error {
	cfg := b.cfg
	// argon2id holds its memory for the whole hash, and a QR decode is
	// CPU-bound: bound both by the cores, so a flood queues instead of
	// exhausting memory.
	n := max(2, runtime.GOMAXPROCS(0))
	b.h = h
	b.frames = h.NewLimiter("badge_frames", cfg.FrameRate, cfg.FrameBurst)
	b.pwIP = h.NewLimiter("badge_password_ip", cfg.PasswordRate, cfg.PasswordBurst)
	b.pwUser = h.NewPeekLimiter("badge_password_user", rate.Every(30*time.Second), 10)
	b.hashes = make(chan struct{}, n)
	b.decodes = make(chan struct{}, n)
	keys, err := newBadgeKeys(b.key, h.Rand())
	if err != nil {
		return err
	}
	b.keys = keys

	e.GET(wire.PathBadge, b.handlePage)
	e.GET(wire.PathBadgeStatus, b.handleStatus)
	e.POST(wire.PathBadgeScan, b.handleScan)
	e.POST(wire.PathBadgeFrame, b.handleFrame)
	e.POST(wire.PathBadgePhone, b.handlePhone)
	e.POST(wire.PathSignInPassword, b.handlePasswordStep)

	e.GET(wire.PathPassword, b.handleGetPassword)
	e.PUT(wire.PathPassword, b.handleSetPassword)
	e.DELETE(wire.PathPassword, b.handleDeletePassword)

	e.GET(wire.PathBadges, b.handleListOwnBadges)
	e.POST(wire.PathBadges, b.handleIssueOwnBadge)
	e.POST(wire.PathBadgeRevoke, b.handleRevokeOwnBadge)

	e.GET(wire.PathAdminBadgeUser, b.handleAdminListBadges)
	e.POST(wire.PathAdminBadgeUser, b.handleAdminIssueBadge)
	e.POST(wire.PathAdminBadgeRevoke, b.handleAdminRevokeBadge)
	return nil
}

// badgeGate asks for the second factor after an insecure badge, and, under
// the method policy, for the badge of a user who holds one after any other
// first step.
func (b *Flow) gate(ctx context.Context, u *qrauth.User, si *server.SignIn) (server.Step, error) {
	if si.Passed(MethodBadgeInsecure) {
		// A username substitute alone proves nothing: any other step
		// (password, the phone, a code of another flow) must follow.
		if si.Authenticated() {
			return server.Step{}, nil
		}
		// When a later gate asks for a step of its own (an OATH code), that
		// step is the second factor: a fallback lets it ask, rather than
		// asking for a password first and its step after.
		return server.Step{Page: wire.PathBadge, Fallback: true}, nil
	}
	cfg := b.cfg
	if cfg.Policy != BadgeMethod || si.Passed(MethodBadgeSecure) {
		return server.Step{}, nil
	}
	active, err := b.holdsSecureBadge(ctx, u.ID)
	if err != nil || !active {
		return server.Step{}, err
	}
	return server.Step{Page: wire.PathBadge}, nil
}

// holdsSecureBadge reports whether the user has a secure badge that could
// still sign in: not revoked, not expired, sealed under the current
// password.
func (b *Flow) holdsSecureBadge(ctx context.Context, uid qrauth.UserID) (bool, error) {
	badges, err := b.st.FindBadgesByUser(ctx, uid)
	if err != nil {
		return false, err
	}
	pw, err := b.st.FindPassword(ctx, uid)
	if qrauth.ErrorCode(err) == qrauth.ENOTFOUND {
		return false, nil
	} else if err != nil {
		return false, err
	}
	fp, now := badge.CredentialFingerprint(pw.Stamp), b.h.Now()
	for _, bd := range badges {
		if bd.Kind == badge.Secure && bd.Active(now) && string(bd.Credential) == string(fp) {
			return true, nil
		}
	}
	return false, nil
}

// badgeAdminExtras reports whether the user has a password and how many
// badges can still be used.
func (b *Flow) adminExtras(ctx context.Context, u *qrauth.User, methods map[string]any) error {
	_, err := b.st.FindPassword(ctx, u.ID)
	if err != nil && qrauth.ErrorCode(err) != qrauth.ENOTFOUND {
		return err
	}
	methods["password"] = err == nil
	badges, err := b.st.FindBadgesByUser(ctx, u.ID)
	if err != nil {
		return err
	}
	n, now := 0, b.h.Now()
	for _, bd := range badges {
		if bd.Active(now) {
			n++
		}
	}
	methods["badge"] = n
	return nil
}

var (
	errInsecureBadgesOff = qrauth.Errorf(qrauth.EFORBIDDEN, "badge_insecure_disabled",
		"This service does not accept insecure badges. Use a secure badge, or sign in with your phone.")
	errBadgeRevoked = qrauth.Errorf(qrauth.EUNAUTHORIZED, "badge_revoked",
		"This badge has been revoked. Ask your helpdesk for a new one.")
	errBadgePasswordChanged = qrauth.Errorf(qrauth.EUNAUTHORIZED, "badge_password_changed",
		"This badge no longer works: the account's password was changed after it was printed. Print a new badge.")
	errBadgeNeedsFirstStep = qrauth.Errorf(qrauth.EUNAUTHORIZED, "badge_needs_first_step",
		"Sign in with your phone first; this service then asks for your badge.")
	errBadgeWrongUser = qrauth.Errorf(qrauth.EUNAUTHORIZED, "badge_wrong_user",
		"This badge belongs to someone other than the person signing in.")
	errBadgeInsecureNotMethod = qrauth.Errorf(qrauth.EUNAUTHORIZED, "badge_insecure_not_method",
		"An insecure badge only says who you are; this step needs a secure badge.")
)

func errBadgeExpired(at time.Time) error {
	return qrauth.Errorf(qrauth.EEXPIRED, "badge_expired", "This badge expired on %s. Ask for a new one.", at.UTC().Format("2 January 2006"))
}

// acquire takes a slot of sem, waiting at most a few seconds.
func acquire(c echo.Context, sem chan struct{}) error {
	t := time.NewTimer(5 * time.Second)
	defer t.Stop()
	select {
	case sem <- struct{}{}:
		return nil
	case <-c.Request().Context().Done():
		return qrauth.Internal(c.Request().Context().Err())
	case <-t.C:
		return server.RateLimited(c, 2*time.Second, "busy", "The service is busy. Please try again in a moment.")
	}
}

func (b *Flow) handlePage(c echo.Context) error {
	if err := b.h.EnsureBindCookie(c); err != nil {
		return err
	}
	if b.h.RedirectSignedIn(c) {
		return c.Redirect(http.StatusSeeOther, wire.PathAccount)
	}
	return b.h.ServePage(c, "badge.html")
}

// Steps a parked sign-in may wait for on the badge page.
const (
	stepSecondFactor = "second_factor" // after an insecure badge
	stepBadge        = "badge"         // method policy: show your badge
)

// handleStatus tells the badge page what the deployment accepts and, when
// this browser has a sign-in waiting for a step of this flow, which.
func (b *Flow) handleStatus(c echo.Context) error {
	out := map[string]any{
		"enabled":        true, // the flow answers only while it is on
		"insecure_scans": b.cfg.InsecureScans,
		"policy":         b.cfg.Policy,
		"second_factors": b.cfg.SecondFactors,
		"pending":        nil,
	}
	si, ok := b.peekPending(c)
	if !ok {
		return c.JSON(http.StatusOK, out)
	}
	ctx := c.Request().Context()
	u, err := b.h.Store().FindUserByID(ctx, si.UserID)
	if err != nil {
		return err
	}
	step := ""
	// The step the whole sign-in asks for next: after an insecure badge,
	// another flow's step (an OATH code) comes before this page's password.
	if next, err := b.h.NextStep(ctx, u, si); err != nil {
		return err
	} else if next.Page == wire.PathBadge && si.Passed(MethodBadgeInsecure) {
		step = stepSecondFactor
	} else if next.Page == wire.PathBadge {
		step = stepBadge
	}
	if step == "" {
		// Waiting for another flow's step: not this page's business.
		return c.JSON(http.StatusOK, out)
	}
	_, err = b.st.FindPassword(ctx, si.UserID)
	if err != nil && qrauth.ErrorCode(err) != qrauth.ENOTFOUND {
		return err
	}
	out["pending"] = map[string]any{
		"name": u.Name, "methods": si.Methods, "step": step, "has_password": err == nil, "expires_at": si.Expires(),
	}
	return c.JSON(http.StatusOK, out)
}

// peekPending returns a snapshot of the browser's parked sign-in without
// counting an attempt.
func (b *Flow) peekPending(c echo.Context) (*server.SignIn, bool) {
	si, err := b.h.PeekSignIn(c)
	return si, err == nil
}

// pendingStep returns a copy of the browser's parked sign-in, counting an
// attempt. Handlers add their method to the copy and continue with it, so
// two requests racing on one sign-in never share a slice.
func (b *Flow) pendingStep(c echo.Context) (*server.SignIn, error) {
	return b.h.PendingSignIn(c)
}
