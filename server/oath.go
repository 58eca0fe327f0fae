package server

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/qrauth/qrauth"
	"github.com/qrauth/qrauth/internal/keys"
	"github.com/qrauth/qrauth/wire"
)

// The oath flow: OATH one-time passwords (RFC 4226 HOTP, RFC 6238 TOTP)
// from authenticator apps as a second factor after the QR sign-in.
//
// # Flow
//
//  1. Enrolment. A signed-in user asks for a secret (POST /api/oath/enrol):
//     the server makes one, seals it and stores it as the account's pending
//     token, and shows it as an otpauth:// QR code and in Base32. The user
//     types one current code (POST /api/oath/confirm); only then does the
//     pending token become the active one.
//  2. Sign-in. After the QR step, the gate registered below sends users
//     with an active token (policy if-enrolled) or everybody (policy
//     required) to /verify, which posts the code to /api/oath/signin. The
//     session is issued only once the code is accepted. Under "required", a
//     user without a token enrols on that page first.
//  3. Administration under /admin/api/oath/: status, delete, unlock, view
//     the secret (role secret_viewer), order an activation letter (PDF).
//
// Code generation and otpauth:// URIs come from github.com/pquerna/otp;
// the window, drift, replay detection and lock are ours (oath_otp.go) and
// the replay state is kept in the store (qrauth.OATHStore).

// MethodOATH is the sign-in method of an accepted OATH code.
const MethodOATH = "oath"

// OATHPolicy says when a sign-in needs an OATH code after the QR step.
type OATHPolicy string

// OATH policies.
const (
	// OATHPolicyOff never asks for a code; the zero value.
	OATHPolicyOff OATHPolicy = "off"
	// OATHPolicyIfEnrolled asks users who have an active authenticator.
	OATHPolicyIfEnrolled OATHPolicy = "if-enrolled"
	// OATHPolicyRequired asks everybody; users without an authenticator
	// enrol one during the sign-in.
	OATHPolicyRequired OATHPolicy = "required"
)

// The defaults of OATHConfig: what a zero field means (the policy's is
// OATHPolicyOff).
const (
	DefaultOATHIssuer      = "qrauth"
	DefaultOATHKind        = qrauth.OATHTOTP
	DefaultOATHAlgorithm   = qrauth.OATHSHA1
	DefaultOATHDigits      = 6
	DefaultOATHPeriod      = 30 * time.Second
	DefaultOATHSecretSize  = 20
	DefaultOATHWindow      = 1 // TOTP steps behind and ahead
	DefaultOATHLookAhead   = 10
	DefaultOATHMaxOffset   = 10
	DefaultOATHMaxFailures = 5
)

// OATHConfig configures the oath flow. The zero value is its default:
// disabled, and every zero field takes its Default* constant. Integer
// fields where 0 means "default" take a negative value for "none".
type OATHConfig struct {
	// Enabled turns on enrolment and the admin API. A Policy other than
	// off enables it too. Needs Config.MasterKey.
	Enabled bool
	// Policy says when the sign-in asks for a code. Default off.
	Policy OATHPolicy

	// Issuer is the name authenticator apps show above the account.
	// Default "qrauth".
	Issuer string
	// Kind of new tokens. Default TOTP, which every app supports.
	Kind qrauth.OATHKind
	// Algorithm of new tokens. Default SHA1, the only one every common app
	// supports; SHA256 and SHA512 are options.
	Algorithm qrauth.OATHAlgorithm
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
func (c OATHConfig) withDefaults(all Config) (OATHConfig, error) {
	switch c.Policy {
	case "":
		c.Policy = OATHPolicyOff
	case OATHPolicyOff:
	case OATHPolicyIfEnrolled, OATHPolicyRequired:
		c.Enabled = true
	default:
		return c, fmt.Errorf("policy %q: want off, if-enrolled or required", c.Policy)
	}
	if c.Issuer == "" {
		c.Issuer = DefaultOATHIssuer
	}
	if strings.ContainsAny(c.Issuer, ":\x00\r\n") || len(c.Issuer) > 64 {
		return c, fmt.Errorf("issuer %q: at most 64 characters on one line, without ':'", c.Issuer)
	}
	switch c.Kind {
	case "":
		c.Kind = DefaultOATHKind
	case qrauth.OATHTOTP, qrauth.OATHHOTP:
	default:
		return c, fmt.Errorf("kind %q: want totp or hotp", c.Kind)
	}
	c.Algorithm = qrauth.OATHAlgorithm(strings.ToUpper(string(c.Algorithm)))
	switch c.Algorithm {
	case "":
		c.Algorithm = DefaultOATHAlgorithm
	case qrauth.OATHSHA1, qrauth.OATHSHA256, qrauth.OATHSHA512:
	default:
		return c, fmt.Errorf("algorithm %q: want SHA1, SHA256 or SHA512", c.Algorithm)
	}
	if c.Digits == 0 {
		c.Digits = DefaultOATHDigits
	}
	if c.Digits != 6 && c.Digits != 8 {
		return c, fmt.Errorf("digits %d: want 6 or 8", c.Digits)
	}
	if c.Period == 0 {
		c.Period = DefaultOATHPeriod
	}
	if c.Period < time.Second || c.Period%time.Second != 0 || c.Period > time.Hour {
		return c, fmt.Errorf("period %s: want whole seconds, 1s to 1h", c.Period)
	}
	if c.SecretSize == 0 {
		c.SecretSize = DefaultOATHSecretSize
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
		window(&c.Behind, DefaultOATHWindow, 10, "window behind"),
		window(&c.Ahead, DefaultOATHWindow, 10, "window ahead"),
		window(&c.LookAhead, DefaultOATHLookAhead, 100, "HOTP look-ahead"),
		window(&c.MaxOffset, DefaultOATHMaxOffset, 1000, "max offset"),
	); err != nil {
		return c, err
	}
	if c.MaxFailures == 0 {
		c.MaxFailures = DefaultOATHMaxFailures
	}
	if !c.Enabled {
		return c, nil
	}
	if len(all.MasterKey) == 0 {
		return c, errors.New("OATH is enabled but there is no master key to encrypt its secrets with. " +
			"Make one with `qrauthd genkey > qrauth.key && chmod 600 qrauth.key` and start with " +
			"-key-file qrauth.key (or put the key in QRAUTH_KEY)")
	}
	sl, err := keys.NewSealer(all.MasterKey, keys.OATH, all.Rand)
	if err != nil {
		return c, err
	}
	c.sealer = sl
	return c, nil
}

// oathFlow is the OATH flow as the server mounts it.
type oathFlow struct{ s *Server }

// Name implements Flow.
func (f *oathFlow) Name() string { return MethodOATH }

// Mount implements Flow.
func (f *oathFlow) Mount(h Host, e *echo.Echo) error {
	f.s = h.(host).s
	f.s.oathRoutes(e)
	return nil
}

// Gate implements Flow.
func (f *oathFlow) Gate(ctx context.Context, u *qrauth.User, si *SignIn) (Step, error) {
	page, err := oathGate(f.s, ctx, u, si)
	return Step{Page: page}, err
}

// AdminUser implements Flow.
func (f *oathFlow) AdminUser(ctx context.Context, u *qrauth.User, methods map[string]any) error {
	return oathAdminExtra(f.s, ctx, u, methods)
}

// Purge implements Flow: OATH keeps nothing in memory.
func (f *oathFlow) Purge(context.Context, time.Time) {}

// Shutdown implements Flow.
func (f *oathFlow) Shutdown() {}

func (s *Server) oathRoutes(e *echo.Echo) {
	// The account page's section asks GET /api/oath whether the flow is on,
	// so that route answers also when it is off.
	e.GET(wire.PathOATH, s.handleOATHStatus)
	if !s.cfg.OATH.Enabled {
		return
	}
	e.POST(wire.PathOATHEnrol, s.handleOATHEnrol)
	e.POST(wire.PathOATHConfirm, s.handleOATHConfirm)

	e.GET(wire.PathVerify, s.handleVerifyPage)
	e.GET(wire.PathOATHSignIn, s.handleOATHSignInStatus)
	e.POST(wire.PathOATHSignInEnrol, s.handleOATHSignInEnrol)
	e.POST(wire.PathOATHSignIn, s.handleOATHSignIn)

	e.GET(wire.PathAdminOATH, s.handleAdminOATH)
	e.DELETE(wire.PathAdminOATH, s.handleAdminOATHDelete)
	e.POST(wire.PathAdminOATHUnlock, s.handleAdminOATHUnlock)
	e.POST(wire.PathAdminOATHSecret, s.handleAdminOATHSecret)
	e.POST(wire.PathAdminOATHLetter, s.handleAdminOATHLetter)
}

// oathGate asks for an OATH code after the first step, as the policy says.
func oathGate(s *Server, ctx context.Context, u *qrauth.User, si *SignIn) (string, error) {
	p := s.cfg.OATH.Policy
	if !s.cfg.OATH.Enabled || p == OATHPolicyOff || si.Passed(MethodOATH) {
		return "", nil
	}
	if p == OATHPolicyRequired {
		return wire.PathVerify, nil
	}
	a, err := s.findOATH(ctx, u.ID)
	if err != nil {
		return "", err
	}
	if a.Active() {
		return wire.PathVerify, nil
	}
	return "", nil
}

// oathAdminExtra reports the user's OATH status in the admin user list:
// false without an active token, else its kind and state.
func oathAdminExtra(s *Server, ctx context.Context, u *qrauth.User, methods map[string]any) error {
	if !s.cfg.OATH.Enabled {
		return nil
	}
	a, err := s.findOATH(ctx, u.ID)
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

// findOATH returns the user's OATH account, or nil if there is none.
func (s *Server) findOATH(ctx context.Context, id qrauth.UserID) (*qrauth.OATHAccount, error) {
	a, err := s.store.FindOATHAccount(ctx, id)
	if qrauth.ErrorReason(err) == "oath_not_found" {
		return nil, nil
	}
	return a, err
}
