package server

import (
	"context"
	"io"
	"log/slog"
	"slices"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/qrauth/qrauth"
	"github.com/qrauth/qrauth/internal/qrimage"
	"golang.org/x/time/rate"
)

// A Flow is a way of signing in, or a further step of a sign-in, beside the
// core QR flow: offline codes, OATH, badges, and later OpenID Connect. The
// server takes its flows as an ordered list (see New): the order is the
// order in which their gates run after each step of a sign-in. A flow that
// is switched off is simply not in the list.
//
// A flow reaches the core only through the Host it is mounted with: never
// the server's fields or locks, never another flow.
type Flow interface {
	// Name is the flow's short name ("offline", "oath", "badge"): the key
	// of its status in the admin user list and of its links on the login
	// page (data-feature="NAME").
	Name() string
	// Mount is called once, when the server builds its routes. The flow
	// keeps h and registers its routes on e. An error stops the server from
	// starting.
	Mount(h Host, e *echo.Echo) error
	// Gate decides, after each passed step of a sign-in, whether the flow
	// asks for another step: it returns the step, or the zero Step when it
	// has nothing to ask.
	Gate(ctx context.Context, u *qrauth.User, si *SignIn) (Step, error)
	// AdminUser adds the flow's status of u to the methods of its row in
	// the admin user list (conventionally under the flow's name).
	AdminUser(ctx context.Context, u *qrauth.User, methods map[string]any) error
	// Purge drops expired state; the core's janitor calls it every 30 s.
	// (Limiters from Host.NewLimiter are purged by the core.)
	Purge(ctx context.Context, now time.Time)
	// Shutdown is called when the server begins to shut down, before it
	// waits for requests: a flow ends its long-polls here.
	Shutdown()
}

// A Finisher is a Flow told of every completed sign-in (OpenID Connect
// sends the browser back to the relying site from here). The core calls
// SignedIn of each Finisher, in flow order, once si's session is issued;
// the first non-empty next (a path on this origin) replaces the account
// page as the browser's next page. An error fails the sign-in's answer,
// not the session already issued.
type Finisher interface {
	SignedIn(c echo.Context, si *SignIn, sess *qrauth.Session) (next string, err error)
}

// A SiteNamer is a Flow that may know which relying site a browser signs
// in for (OpenID Connect: the registered name of the client whose
// authorization request the browser carries). When a login page opens its
// socket, the core asks each SiteNamer in flow order; the first non-empty
// name goes to the phone in the challenge (wire.SiteInfo), so that the
// person sees where the sign-in leads, as the login page says. The name is
// shown only, never signed: it must come from the server's own records,
// never from the request's URL or form.
type SiteNamer interface {
	SiteName(c echo.Context) string
}

// A Step is what a gate asks for: the path of the page that asks for it.
type Step struct {
	Page string
	// Fallback marks a step asked only when no later gate asks for a step
	// of its own: after an insecure badge, any second factor will do, and
	// the badge flow's password is only the last resort.
	Fallback bool
}

// Zero reports whether the gate asks for nothing.
func (s Step) Zero() bool { return s.Page == "" }

// Host is the core as a flow sees it. Everything a flow needs from the
// server goes through it; its methods are safe for concurrent use.
type Host interface {
	// Origin is the public origin in effect; Secure reports whether cookies
	// get the Secure attribute (an https origin).
	Origin() string
	Secure() bool
	// CookieDomain is the session cookie's Domain attribute ("example.com":
	// the session reaches every host below it), or "" for a host-only
	// cookie on the origin's host.
	CookieDomain() string
	Now() time.Time
	Rand() io.Reader
	Logger() *slog.Logger
	// MasterKey is the operator's key for secrets at rest, or nil.
	MasterKey() []byte
	// Store is the core store (users, devices, sessions, audit).
	Store() qrauth.Store

	// Authenticate returns the browser's session and user.
	Authenticate(c echo.Context) (*qrauth.Session, *qrauth.User, error)
	// AuthenticateDevice checks a device-signed app request (rate-limited
	// per address) and returns the device.
	AuthenticateDevice(c echo.Context) (*qrauth.Device, error)
	// RequireRole admits the operator, or a signed-in user holding any of
	// roles.
	RequireRole(c echo.Context, roles ...qrauth.Role) (Actor, error)

	// ContinueSignIn is called after a step passed: it runs the gates and
	// either issues the session or parks the sign-in and answers with the
	// next page.
	ContinueSignIn(c echo.Context, si *SignIn) error
	// PendingSignIn returns a copy of the browser's parked sign-in,
	// counting an attempt (a wrong answer to the step). PeekSignIn does not
	// count one: looking is not guessing.
	PendingSignIn(c echo.Context) (*SignIn, error)
	PeekSignIn(c echo.Context) (*SignIn, error)
	// NextStep runs every flow's gate for si, as ContinueSignIn would, and
	// returns the step the sign-in asks for next (zero: none). A flow's
	// page uses it to say which step is due.
	NextStep(ctx context.Context, u *qrauth.User, si *SignIn) (Step, error)
	// RedeemTicket takes a ticket the QR flow issued to the browser bound
	// to bind, once.
	RedeemTicket(tok, bind string) (qrauth.UserID, qrauth.DeviceID, error)

	// ServePage answers with one of webclient's pages; EnsureBindCookie
	// gives the browser a bind cookie first, BindValue reads it.
	ServePage(c echo.Context, name string) error
	EnsureBindCookie(c echo.Context) error
	BindValue(c echo.Context) (string, error)
	// EndSession ends the browser's session, if it has one (recorded as a
	// sign-out), and clears its cookie: a relying site's logout.
	EndSession(c echo.Context) error
	// RedirectSignedIn reports whether the request carries a valid session
	// (a sign-in page then sends it on to the account page).
	RedirectSignedIn(c echo.Context) bool
	// RenderQR draws text as the PNG data URL the pages show.
	RenderQR(text string) (string, error)
	// NewLimiter returns a per-key token bucket limiter whose idle buckets
	// the core's janitor drops. Its refusals are counted in the metrics
	// under name, a fixed string such as "badge_frames".
	NewLimiter(name string, r rate.Limit, burst int) *Limiter
	// NewPeekLimiter is NewLimiter for a limit whose Peek decides: a limit
	// of wrong answers, peeked before the answer is checked and counted
	// (Allow) only when it is wrong. In a cluster its Peek reads the count
	// every instance shares; a NewLimiter's Peek there always says yes, as
	// the shared store cannot read its buckets without taking a token.
	NewPeekLimiter(name string, r rate.Limit, burst int) *Limiter
	// Recheck is 0 for an instance alone. In a cluster it is how often a
	// flow that waits for a change of stored state (a long poll) reads it
	// again by itself: a change made through another instance wakes no
	// waiter here (Config.RoomRecheck).
	Recheck() time.Duration
}

// SignIn is a sign-in in progress or complete: one or more passed steps.
// The first (a QR scan, a badge, an offline code) names the user; gates
// then decide whether another step is required.
type SignIn struct {
	UserID    qrauth.UserID
	DeviceID  qrauth.DeviceID // the approving phone, if any
	IP        string
	UserAgent string
	// Methods are the steps passed so far, in order.
	Methods []string
	// Identifying lists the steps among Methods that only named the person
	// without proving who they are (an insecure badge, a username
	// substitute): see Authenticated.
	Identifying []string

	bindHash []byte
	expires  time.Time
	attempts int
	scanned  time.Time // a QR sign-in: the phone's join (Metrics.ScanToSignedIn)
}

// Expires is when the parked sign-in is dropped.
func (si *SignIn) Expires() time.Time { return si.expires }

// Passed reports whether method is among the steps passed.
func (si *SignIn) Passed(method string) bool { return slices.Contains(si.Methods, method) }

// Pass returns a copy of si with method passed, proving who the person is.
func (si *SignIn) Pass(method string) *SignIn {
	cp := si.clone()
	cp.Methods = append(cp.Methods, method)
	return cp
}

// PassIdentifying returns a copy of si with method passed, a step that
// only names the person.
func (si *SignIn) PassIdentifying(method string) *SignIn {
	cp := si.Pass(method)
	cp.Identifying = append(cp.Identifying, method)
	return cp
}

// Authenticated reports whether a step so far proved who the person is,
// rather than only naming them: a step such as enrolling a new second
// factor must not build on a username substitute alone.
func (si *SignIn) Authenticated() bool {
	for _, m := range si.Methods {
		if !slices.Contains(si.Identifying, m) {
			return true
		}
	}
	return false
}

func (si *SignIn) clone() *SignIn {
	cp := *si
	cp.Methods = slices.Clone(si.Methods)
	cp.Identifying = slices.Clone(si.Identifying)
	return &cp
}

// host is the Server as its flows see it.
type host struct{ s *Server }

func (h host) Origin() string                       { return h.s.cfg.Origin }
func (h host) Secure() bool                         { return h.s.cfg.secure() }
func (h host) CookieDomain() string                 { return h.s.cfg.CookieDomain }
func (h host) Now() time.Time                       { return h.s.cfg.Now() }
func (h host) Rand() io.Reader                      { return h.s.cfg.Rand }
func (h host) Logger() *slog.Logger                 { return h.s.log }
func (h host) MasterKey() []byte                    { return h.s.cfg.MasterKey }
func (h host) Store() qrauth.Store                  { return h.s.store }
func (h host) RenderQR(text string) (string, error) { return qrimage.DataURL(text) }

func (h host) Authenticate(c echo.Context) (*qrauth.Session, *qrauth.User, error) {
	return h.s.authenticate(c)
}

func (h host) AuthenticateDevice(c echo.Context) (*qrauth.Device, error) {
	return h.s.authenticateDevice(c)
}

func (h host) RequireRole(c echo.Context, roles ...qrauth.Role) (Actor, error) {
	return h.s.requireRole(c, roles...)
}

func (h host) ContinueSignIn(c echo.Context, si *SignIn) error { return h.s.continueSignIn(c, si) }
func (h host) PendingSignIn(c echo.Context) (*SignIn, error)   { return h.s.pendingSignIn(c) }
func (h host) NextStep(ctx context.Context, u *qrauth.User, si *SignIn) (Step, error) {
	return h.s.nextStep(ctx, u, si)
}
func (h host) PeekSignIn(c echo.Context) (*SignIn, error) { return h.s.peekSignIn(c) }

func (h host) RedeemTicket(tok, bind string) (qrauth.UserID, qrauth.DeviceID, error) {
	t, err := h.s.hub.redeemTicket(tok, bind)
	if err != nil {
		return "", "", err
	}
	return t.userID, t.deviceID, nil
}

func (h host) ServePage(c echo.Context, name string) error { return h.s.servePage(c, name) }
func (h host) EnsureBindCookie(c echo.Context) error       { return h.s.ensureBindCookie(c) }
func (h host) BindValue(c echo.Context) (string, error)    { return h.s.bindValue(c) }
func (h host) EndSession(c echo.Context) error             { return h.s.endSession(c) }
func (h host) RedirectSignedIn(c echo.Context) bool        { return h.s.redirectSignedIn(c) }

func (h host) NewLimiter(name string, r rate.Limit, burst int) *Limiter {
	return h.addLimiter(h.s.newLimiter(name, r, burst, false))
}

func (h host) NewPeekLimiter(name string, r rate.Limit, burst int) *Limiter {
	return h.addLimiter(h.s.newLimiter(name, r, burst, true))
}

func (h host) Recheck() time.Duration {
	if h.s.cfg.Shared == nil {
		return 0
	}
	return h.s.cfg.RoomRecheck
}

func (h host) addLimiter(l *Limiter) *Limiter {
	h.s.limitersMu.Lock()
	h.s.limiters = append(h.s.limiters, l)
	h.s.limitersMu.Unlock()
	return l
}
