package forwardauth

import (
	"context"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/qrauth/qrauth"
	"github.com/qrauth/qrauth/server"
	"github.com/qrauth/qrauth/wire"
)

// Paths of the flow's routes.
const (
	// PathForwardAuth is what the proxy asks before every request.
	PathForwardAuth = wire.PathForwardAuth
	// PathSignIn?rd=URL signs the browser in if it is not, then sends it to
	// URL. The forward-auth redirect points here; an application's own
	// "sign in" link may too.
	PathSignIn = wire.PathForwardAuthSignIn
)

// The headers of a 200 answer, which the proxy copies into the request it
// passes on to the application.
const (
	HeaderUser   = "Remote-User"   // the stable, opaque user id
	HeaderName   = "Remote-Name"   // the name the person gave, or empty
	HeaderEmail  = "Remote-Email"  // the e-mail the person gave (not verified), or empty
	HeaderGroups = "Remote-Groups" // the user's roles, comma-separated, or empty
)

// maxReturnURL bounds the address a browser is sent back to.
const maxReturnURL = 4096

// Flow is the forward-auth flow. Create it with New.
type Flow struct {
	cfg  Config
	host server.Host
}

var _ server.Flow = (*Flow)(nil)

// New returns the flow for cfg; Mount checks cfg against the core's cookie
// domain and origin.
func New(cfg Config) *Flow { return &Flow{cfg: cfg} }

// Name implements server.Flow.
func (f *Flow) Name() string { return "forward-auth" }

// Mount implements server.Flow: it checks the configuration and adds the
// routes.
func (f *Flow) Mount(h server.Host, e *echo.Echo) error {
	o, err := url.Parse(h.Origin())
	if err != nil {
		return err
	}
	if f.cfg, err = f.cfg.check(h.CookieDomain(), strings.ToLower(o.Hostname())); err != nil {
		return err
	}
	f.host = h
	e.GET(PathForwardAuth, f.handleForwardAuth)
	e.HEAD(PathForwardAuth, f.handleForwardAuth)
	e.GET(PathSignIn, f.handleSignIn)
	return nil
}

// Gate implements server.Flow: forward auth asks for no step of its own.
func (f *Flow) Gate(context.Context, *qrauth.User, *server.SignIn) (server.Step, error) {
	return server.Step{}, nil
}

// AdminUser implements server.Flow: forward auth keeps nothing per user.
func (f *Flow) AdminUser(context.Context, *qrauth.User, map[string]any) error { return nil }

// Purge implements server.Flow: there is no state to purge.
func (f *Flow) Purge(context.Context, time.Time) {}

// Shutdown implements server.Flow: there is nothing long-running.
func (f *Flow) Shutdown() {}

// Errors.
var (
	errNoOriginal = qrauth.Errorf(qrauth.EINVALID, "forward_auth_headers_missing",
		"This address is for a reverse proxy's forward-auth request: it needs X-Original-URL (nginx auth_request) or "+
			"X-Forwarded-Proto, X-Forwarded-Host and X-Forwarded-Uri (Traefik, Caddy).")
	errBadOriginal = qrauth.Errorf(qrauth.EINVALID, "forward_auth_headers_malformed",
		"The proxy sent an original address that is not an absolute http(s) address.")
)

func errHostNotProtected(host string) error {
	return qrauth.Errorf(qrauth.EFORBIDDEN, "host_not_protected",
		"qrauth does not sign people in to %s: its domain is not among the forward-auth domains.", host)
}

// original is the request the proxy asks about.
type original struct {
	url    *url.URL
	method string
	nginx  bool // answer 401, not a redirect: auth_request passes no redirect through
}

// originalRequest reads the original request from the proxy's headers, as
// Authelia does: nginx sends X-Original-URL (and X-Original-Method);
// Traefik and Caddy send X-Forwarded-Proto, -Host, -Uri and -Method.
func originalRequest(r *http.Request) (*original, error) {
	if raw := r.Header.Get("X-Original-URL"); raw != "" {
		u, err := url.Parse(raw)
		if err != nil || !u.IsAbs() || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil {
			return nil, errBadOriginal
		}
		return &original{url: u, method: r.Header.Get("X-Original-Method"), nginx: true}, nil
	}
	proto, host, uri := r.Header.Get("X-Forwarded-Proto"), r.Header.Get("X-Forwarded-Host"), r.Header.Get("X-Forwarded-Uri")
	if host == "" && uri == "" {
		return nil, errNoOriginal
	}
	if proto == "" {
		proto = "https"
	}
	if uri == "" {
		uri = "/"
	}
	// A proxy chain may list several values; the first is the client's.
	proto, _, _ = strings.Cut(proto, ",")
	host, _, _ = strings.Cut(host, ",")
	if !strings.HasPrefix(uri, "/") {
		return nil, errBadOriginal
	}
	u, err := url.Parse(strings.TrimSpace(proto) + "://" + strings.TrimSpace(host) + uri)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil {
		return nil, errBadOriginal
	}
	return &original{url: u, method: r.Header.Get("X-Forwarded-Method")}, nil
}

// handleForwardAuth answers the proxy: 200 with the user's headers, a
// redirect to sign in, or 403.
func (f *Flow) handleForwardAuth(c echo.Context) error {
	o, err := originalRequest(c.Request())
	if err != nil {
		return f.refuse(c, err)
	}
	host := strings.ToLower(o.url.Hostname())
	if !f.cfg.protected(host) {
		return f.refuse(c, errHostNotProtected(host))
	}
	_, u, err := f.host.Authenticate(c)
	if qrauth.ErrorCode(err) == qrauth.EUNAUTHORIZED {
		return f.toSignIn(c, o)
	} else if err != nil {
		return err
	}
	if r, ok := f.cfg.rule(host); ok && !slices.ContainsFunc(r.Roles, u.HasRole) {
		return f.refuse(c, qrauth.Errorf(qrauth.EFORBIDDEN, "role_required",
			"You are signed in as %s, but %s is open only to users with the role %s.",
			displayName(u), host, strings.Join(roleNames(r.Roles), " or ")))
	}
	h := c.Response().Header()
	h.Set(HeaderUser, string(u.ID))
	h.Set(HeaderName, headerValue(u.Name))
	h.Set(HeaderEmail, headerValue(u.Email))
	h.Set(HeaderGroups, strings.Join(roleNames(u.Roles), ","))
	return c.NoContent(http.StatusOK)
}

// toSignIn sends a browser without a session to sign in, and back to the
// original address afterwards.
func (f *Flow) toSignIn(c echo.Context, o *original) error {
	to := f.host.Origin() + PathSignIn + "?rd=" + url.QueryEscape(o.url.String())
	if o.nginx {
		// nginx's error_page 401 =302 $upstream_http_location (see
		// docs/integration.md) makes this the redirect.
		c.Response().Header().Set(echo.HeaderLocation, to)
		return f.refuse(c, qrauth.Errorf(qrauth.EUNAUTHORIZED, "not_signed_in", "You are not signed in."))
	}
	status := http.StatusFound
	if m := o.method; m != "" && m != http.MethodGet && m != http.MethodHead {
		// A form's POST must not be repeated as a POST to the sign-in page.
		status = http.StatusSeeOther
	}
	return c.Redirect(status, to)
}

// handleSignIn checks rd, then sends a signed-in browser there and any
// other to the login page, which returns it here afterwards.
func (f *Flow) handleSignIn(c echo.Context) error {
	rd, err := f.returnURL(c.QueryParam("rd"))
	if err != nil {
		return f.refuse(c, err)
	}
	if _, _, err := f.host.Authenticate(c); err == nil {
		return c.Redirect(http.StatusFound, rd)
	} else if qrauth.ErrorCode(err) != qrauth.EUNAUTHORIZED {
		return err
	}
	// The login page accepts only a path on its own site as next; the
	// absolute address is checked again here when the browser comes back.
	next := PathSignIn + "?rd=" + url.QueryEscape(rd)
	return c.Redirect(http.StatusFound, "/?next="+url.QueryEscape(next))
}

// returnURL checks an address to send a browser back to: absolute http(s),
// no user name or password, on a host within one of the domains, https
// when qrauth's own origin is (the session cookie is Secure then, and an
// http address would never see it). It returns the address re-encoded.
func (f *Flow) returnURL(raw string) (string, error) {
	bad := qrauth.Errorf(qrauth.EINVALID, "return_url_not_allowed",
		"The address to return to after signing in must be an %s address on %s.", f.scheme(), strings.Join(f.cfg.Domains, " or "))
	if raw == "" || len(raw) > maxReturnURL || strings.ContainsAny(raw, "\\\x00\r\n\t") {
		return "", bad
	}
	u, err := url.Parse(raw)
	if err != nil || !u.IsAbs() || u.User != nil || u.Host == "" || u.Opaque != "" {
		return "", bad
	}
	if u.Scheme != "https" && (u.Scheme != "http" || f.host.Secure()) {
		return "", bad
	}
	if !f.cfg.protected(strings.ToLower(u.Hostname())) {
		return "", bad
	}
	return u.String(), nil
}

func (f *Flow) scheme() string {
	if f.host.Secure() {
		return "https"
	}
	return "http(s)"
}

func roleNames(rs []qrauth.Role) []string {
	s := make([]string, len(rs))
	for i, r := range rs {
		s[i] = string(r)
	}
	return s
}

func displayName(u *qrauth.User) string {
	if u.Name != "" {
		return u.Name
	}
	return string(u.ID)
}

// headerValue keeps a profile field fit for a header line. Profiles are
// single-line already (qrauth.Profile.Normalize); this is the last guard
// against a control character splitting the proxy's request.
func headerValue(s string) string {
	return strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return -1
		}
		return r
	}, s)
}
