package oathflow

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/qrauth/qrauth"
	"github.com/qrauth/qrauth/internal/keys"
	"github.com/qrauth/qrauth/oath"
	"github.com/qrauth/qrauth/server"
	"github.com/qrauth/qrauth/wire"
)

// MethodOATH is the sign-in method of an accepted OATH code.
const MethodOATH = server.MethodOATH

// Policy says when a sign-in needs an OATH code after the QR step.
type Policy string

// OATH policies.
const (
	// PolicyOff never asks for a code; the zero value.
	PolicyOff Policy = "off"
	// PolicyIfEnrolled asks users who have an active authenticator.
	PolicyIfEnrolled Policy = "if-enrolled"
	// PolicyRequired asks everybody; users without an authenticator
	// enrol one during the sign-in.
	PolicyRequired Policy = "required"
)

// The defaults of Config: what a zero field means (the policy's is
// PolicyOff).
const (
	DefaultIssuer      = "qrauth"
	DefaultKind        = oath.TOTP
	DefaultAlgorithm   = oath.SHA1
	DefaultDigits      = 6
	DefaultPeriod      = 30 * time.Second
	DefaultSecretSize  = 20
	DefaultWindow      = 1 // TOTP steps behind and ahead
	DefaultLookAhead   = 10
	DefaultMaxOffset   = 10
	DefaultMaxFailures = 5
)

// Config configures the oath flow. The flow is on exactly when cmd/qrauthd
// lists it; every zero field takes its Default* constant. Integer
// fields where 0 means "default" take a negative value for "none".
type Config struct {
	// Policy says when the sign-in asks for a code. Default off.
	Policy Policy

	// Issuer is the name authenticator apps show above the account.
	// Default "qrauth".
	Issuer string
	// Kind of new tokens. Default TOTP, which every app supports.
	Kind oath.Kind
	// Algorithm of new tokens. Default SHA1, the only one every common app
	// supports; SHA256 and SHA512 are options.
	Algorithm oath.Algorithm
	// Digits of a code: 6 (default) or 8.
	Digits int
	// Period is the TOTP time step, whole seconds. Default 30s.
	Period time.Duration
	// SecretSize is the secret's length in bytes. Default 20 (160 bits,
	// RFC 4226's recommendation); at least 16.
	SecretSize int

	// Behind and Ahead are the TOTP window: how many time steps before and
	// after the expected one a code may come from. Default 1 each;
	// negative means 0.
	Behind, Ahead int
	// LookAhead is the HOTP window: how many counters past the expected
	// one a code may come from (presses of the button that never reached
	// us). Default 10; negative means 0.
	LookAhead int
	// MaxOffset bounds the TOTP drift the server follows, in time steps
	// either way. Default 10 (five minutes at 30 s).
	MaxOffset int
	// MaxFailures is the number of wrong codes in a row that locks an
	// account until an administrator unlocks it. Default 5; negative never
	// locks.
	MaxFailures int

	// KeepSecret turns the "overwrite existing secret" setting off: a user
	// who enrols again while a TOTP token is active is shown the existing
	// secret (to add a second app) instead of getting a new one. HOTP
	// tokens cannot be shared by two apps, so re-enrolling one is refused.
	KeepSecret bool

	// LetterDir is where activation letters (PDF) are written, created
	// with mode 0700 if missing. Empty refuses to order letters.
	LetterDir string

	sealer *keys.Sealer // AES-256-GCM under the master key, purpose "oath"
}

// withDefaults fills in defaults and checks the settings against the rest
// of the configuration (for example, that a master key is present).
func (c Config) withDefaults(masterKey []byte) (Config, error) {
	switch c.Policy {
	case "":
		c.Policy = PolicyOff
	case PolicyOff:
	case PolicyIfEnrolled, PolicyRequired:
	default:
		return c, fmt.Errorf("policy %q: want off, if-enrolled or required", c.Policy)
	}
	if c.Issuer == "" {
		c.Issuer = DefaultIssuer
	}
	if strings.ContainsAny(c.Issuer, ":\x00\r\n") || len(c.Issuer) > 64 {
		return c, fmt.Errorf("issuer %q: at most 64 characters on one line, without ':'", c.Issuer)
	}
	switch c.Kind {
	case "":
		c.Kind = DefaultKind
	case oath.TOTP, oath.HOTP:
	default:
		return c, fmt.Errorf("kind %q: want totp or hotp", c.Kind)
	}
	c.Algorithm = oath.Algorithm(strings.ToUpper(string(c.Algorithm)))
	switch c.Algorithm {
	case "":
		c.Algorithm = DefaultAlgorithm
	case oath.SHA1, oath.SHA256, oath.SHA512:
	default:
		return c, fmt.Errorf("algorithm %q: want SHA1, SHA256 or SHA512", c.Algorithm)
	}
	if c.Digits == 0 {
		c.Digits = DefaultDigits
	}
	if c.Digits != 6 && c.Digits != 8 {
		return c, fmt.Errorf("digits %d: want 6 or 8", c.Digits)
	}
	if c.Period == 0 {
		c.Period = DefaultPeriod
	}
	if c.Period < time.Second || c.Period%time.Second != 0 || c.Period > time.Hour {
		return c, fmt.Errorf("period %s: want whole seconds, 1s to 1h", c.Period)
	}
	if c.SecretSize == 0 {
		c.SecretSize = DefaultSecretSize
	}
	if c.SecretSize < 16 || c.SecretSize > 64 {
		return c, fmt.Errorf("secret size %d: want 16 to 64 bytes", c.SecretSize)
	}
	window := func(v *int, def, max int, name string) error {
		if *v == 0 {
			*v = def
		} else if *v < 0 {
			*v = 0
		}
		if *v > max {
			return fmt.Errorf("%s %d: at most %d", name, *v, max)
		}
		return nil
	}
	if err := errors.Join(
		window(&c.Behind, DefaultWindow, 10, "window behind"),
		window(&c.Ahead, DefaultWindow, 10, "window ahead"),
		window(&c.LookAhead, DefaultLookAhead, 100, "HOTP look-ahead"),
		window(&c.MaxOffset, DefaultMaxOffset, 1000, "max offset"),
	); err != nil {
		return c, err
	}
	if c.MaxFailures == 0 {
		c.MaxFailures = DefaultMaxFailures
	}
	if len(masterKey) == 0 {
		return c, errors.New("OATH is enabled but there is no master key to encrypt its secrets with. " +
			"Make one with `qrauthd genkey > qrauth.key && chmod 600 qrauth.key` and start with " +
			"-key-file qrauth.key (or put the key in QRAUTH_KEY)")
	}
	return c, nil
}

// Flow is the OATH flow as the server mounts it (server.Flow).
type Flow struct {
	cfg Config
	st  oath.Store
	key []byte // the master key
	h   server.Host
}

// New checks cfg and returns the flow over st. masterKey is the operator's
// key that seals the secrets at rest: required, so the flow is listed only
// when a key is configured.
func New(cfg Config, st oath.Store, masterKey []byte) (*Flow, error) {
	cfg, err := cfg.withDefaults(masterKey)
	if err != nil {
		return nil, fmt.Errorf("oath: %w", err)
	}
	return &Flow{cfg: cfg, st: st, key: masterKey}, nil
}

// Name implements server.Flow.
func (f *Flow) Name() string { return MethodOATH }

// Mount implements server.Flow.
func (f *Flow) Mount(h server.Host, e *echo.Echo) error {
	f.h = h
	sl, err := keys.NewSealer(f.key, keys.OATH, h.Rand())
	if err != nil {
		return err
	}
	f.cfg.sealer = sl
	f.oathRoutes(e)
	return nil
}

// Gate implements server.Flow: it asks for an OATH code after the first
// step, as the policy says.
func (f *Flow) Gate(ctx context.Context, u *qrauth.User, si *server.SignIn) (server.Step, error) {
	p := f.cfg.Policy
	if p == PolicyOff || si.Passed(MethodOATH) {
		return server.Step{}, nil
	}
	if p == PolicyRequired {
		return server.Step{Page: wire.PathVerify}, nil
	}
	a, err := f.findOATH(ctx, u.ID)
	if err != nil {
		return server.Step{}, err
	}
	if a.Active() {
		return server.Step{Page: wire.PathVerify}, nil
	}
	return server.Step{}, nil
}

// AdminUser implements server.Flow: the user's OATH status in the admin
// user list, false without an active token, else its kind and state.
func (f *Flow) AdminUser(ctx context.Context, u *qrauth.User, methods map[string]any) error {
	a, err := f.findOATH(ctx, u.ID)
	if err != nil {
		return err
	}
	if !a.Active() {
		methods[MethodOATH] = false
		return nil
	}
	methods[MethodOATH] = map[string]any{"kind": a.Token.Kind, "locked": a.Locked(), "last_used_at": a.LastUsedAt}
	return nil
}

// Purge implements server.Flow: OATH keeps nothing in memory.
func (f *Flow) Purge(context.Context, time.Time) {}

// Shutdown implements server.Flow.
func (f *Flow) Shutdown() {}

func (f *Flow) oathRoutes(e *echo.Echo) {
	e.GET(wire.PathOATH, f.handleOATHStatus)
	e.POST(wire.PathOATHEnrol, f.handleOATHEnrol)
	e.POST(wire.PathOATHConfirm, f.handleOATHConfirm)

	e.GET(wire.PathVerify, f.handleVerifyPage)
	e.GET(wire.PathOATHSignIn, f.handleOATHSignInStatus)
	e.POST(wire.PathOATHSignInEnrol, f.handleOATHSignInEnrol)
	e.POST(wire.PathOATHSignIn, f.handleOATHSignIn)

	e.GET(wire.PathAdminOATH, f.handleAdminOATH)
	e.DELETE(wire.PathAdminOATH, f.handleAdminOATHDelete)
	e.POST(wire.PathAdminOATHUnlock, f.handleAdminOATHUnlock)
	e.POST(wire.PathAdminOATHSecret, f.handleAdminOATHSecret)
	e.POST(wire.PathAdminOATHLetter, f.handleAdminOATHLetter)
}

// findOATH returns the user's OATH account, or nil if there is none.
func (f *Flow) findOATH(ctx context.Context, id qrauth.UserID) (*oath.Account, error) {
	a, err := f.st.FindOATHAccount(ctx, id)
	if errors.Is(err, oath.ErrNotFound) {
		return nil, nil
	}
	return a, err
}
