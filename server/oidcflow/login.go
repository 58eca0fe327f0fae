package oidcflow

import (
	"context"
	"html/template"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/qrauth/qrauth"
	"github.com/qrauth/qrauth/oidc"
	zoidc "github.com/zitadel/oidc/v3/pkg/oidc"
	"github.com/zitadel/oidc/v3/pkg/op"
)

var errNoRequest = qrauth.Errorf(qrauth.EINVALID, "oidc_request_unknown",
	"This sign-in request is unknown or has expired. Go back to the site and sign in again.")

// handleLogin is the provider's login UI. op sends every authorization
// request here: a browser already signed in (and not asked to sign in
// again) goes straight back to the site; any other goes to the QR login
// page, which returns here once the sign-in is complete (SignedIn).
func (f *Flow) handleLogin(c echo.Context) error {
	ctx := c.Request().Context()
	r, err := f.st.FindOIDCAuthRequest(ctx, c.QueryParam("id"))
	if err != nil || r.Done || !f.h.Now().Before(r.ExpiresAt) {
		return errNoRequest
	}
	cl, err := f.st.FindOIDCClient(ctx, r.ClientID)
	if err != nil {
		return errNoRequest
	}
	none := slices.Contains(r.Prompt, zoidc.PromptNone)

	sess, u, err := f.h.Authenticate(c)
	var info *oidc.SessionInfo
	if err == nil {
		info, err = f.st.FindOIDCSessionInfo(ctx, string(sess.ID))
		if err != nil { // a session from before the provider: a QR sign-in
			info = &oidc.SessionInfo{SessionID: string(sess.ID), AMR: []string{"hwk"}, AuthTime: sess.CreatedAt}
		}
	}
	fresh := sess != nil && r.SessionID == string(sess.ID)
	needLogin := sess == nil
	if !needLogin && !fresh {
		if r.MaxAge != nil && f.h.Now().Sub(info.AuthTime) > time.Duration(*r.MaxAge)*time.Second {
			needLogin = true
		}
		if slices.Contains(r.ACRValues, ACRMFA) && acrOf(info.AMR) != ACRMFA {
			needLogin = true
		}
	}
	if needLogin {
		if none {
			return f.refuse(c, r, zoidc.ErrLoginRequired())
		}
		if sess != nil {
			// prompt=login, max_age or a stronger acr: a new sign-in.
			if err := f.h.EndSession(c); err != nil {
				return err
			}
		}
		c.SetCookie(&http.Cookie{Name: requestCookie, Value: r.ID, Path: "/", HttpOnly: true, Secure: f.h.Secure(),
			SameSite: http.SameSiteLaxMode, MaxAge: int(f.cfg.RequestTTL / time.Second)})
		// The login page asks pendingPath which site this is: never the
		// URL, which anyone can write.
		return c.Redirect(http.StatusFound, "/?oidc=1")
	}
	if slices.Contains(r.ACRValues, ACRMFA) && acrOf(info.AMR) != ACRMFA {
		return f.refuse(c, r, zoidc.ErrAccessDenied().WithDescription("the second factor the site asks for was not given"))
	}
	if !cl.SkipConsent {
		granted, err := f.st.FindOIDCConsent(ctx, string(u.ID), cl.ID)
		var have []string
		if err == nil {
			have = granted.Scopes
		}
		if missing := missingScopes(r.Scopes, have); len(missing) > 0 {
			if none {
				return f.refuse(c, r, &zoidc.Error{ErrorType: "consent_required"})
			}
			return f.consentPage(c, r, cl, missing)
		}
	}
	r, err = f.st.UpdateOIDCAuthRequest(ctx, r.ID, func(r *oidc.AuthRequest) error {
		r.UserID, r.SessionID, r.AuthTime, r.AMR, r.ACR, r.Done = string(u.ID), string(sess.ID), info.AuthTime, info.AMR, acrOf(info.AMR), true
		return nil
	})
	if err != nil {
		return err
	}
	f.clearRequestCookie(c)
	req := c.Request().WithContext(ctxWithState(c))
	op.AuthResponse(authRequest{r}, f.op, c.Response(), req)
	return nil
}

// PendingClient is the answer of GET /oidc/pending: the site the
// browser's open authorization request is for, which the login page shows
// (as text).
type PendingClient struct {
	ClientID   string `json:"client_id"`
	ClientName string `json:"client_name"`
}

// handlePending tells the login page which site asks it to sign in: 200
// with a PendingClient, or 204 when the browser has no open request.
func (f *Flow) handlePending(c echo.Context) error {
	c.Response().Header().Set("Cache-Control", "no-store")
	cl := f.pendingClient(c.Request().Context())
	if cl == nil {
		return c.NoContent(http.StatusNoContent)
	}
	return c.JSON(http.StatusOK, PendingClient{ClientID: cl.ID, ClientName: cl.Name})
}

// pendingClient returns the client of the browser's open authorization
// request, or nil.
func (f *Flow) pendingClient(ctx context.Context) *oidc.Client {
	r := f.pending(ctx)
	if r == nil {
		return nil
	}
	cl, err := f.st.FindOIDCClient(ctx, r.ClientID)
	if err != nil {
		return nil
	}
	return cl
}

// SiteName implements server.SiteNamer: the registered name of the client
// whose authorization request the browser carries (the request cookie,
// which only handleLogin sets, after checking the request), as GET
// /oidc/pending tells the login page; "" without one.
func (f *Flow) SiteName(c echo.Context) string {
	if cl := f.pendingClient(c.Request().Context()); cl != nil {
		return cl.Name
	}
	return ""
}

func (f *Flow) clearRequestCookie(c echo.Context) {
	c.SetCookie(&http.Cookie{Name: requestCookie, Value: "", Path: "/", HttpOnly: true, Secure: f.h.Secure(),
		SameSite: http.SameSiteLaxMode, MaxAge: -1})
}

// refuse answers the site with an error at its (registered, checked)
// redirect URI, as OpenID Connect Core §3.1.2.6 says.
func (f *Flow) refuse(c echo.Context, r *oidc.AuthRequest, err error) error {
	f.clearRequestCookie(c)
	_ = f.st.DeleteOIDCAuthRequest(c.Request().Context(), r.ID)
	op.AuthRequestError(c.Response(), c.Request().WithContext(ctxWithState(c)), authRequest{r}, err, f.op)
	return nil
}

func missingScopes(asked, have []string) []string {
	var out []string
	for _, s := range asked {
		if s != zoidc.ScopeOpenID && !slices.Contains(have, s) {
			out = append(out, s)
		}
	}
	return out
}

var scopeText = map[string]string{
	zoidc.ScopeProfile:       "your name",
	zoidc.ScopeEmail:         "your email address",
	zoidc.ScopeOfflineAccess: "to stay signed in (refresh tokens)",
}

var consentTmpl = template.Must(template.New("consent").Parse(`<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="color-scheme" content="light dark">
<title>Allow {{.Client}}? · qrauth</title>
<link rel="icon" href="/static/favicon.svg" type="image/svg+xml">
<link rel="stylesheet" href="/static/app.css">
</head>
<body class="page-center">
<main id="consent" class="card card-narrow" data-client="{{.ClientID}}">
  <p class="brand"><span class="logo" aria-hidden="true"></span><span class="brand-name">qrauth</span></p>
  <h1>Allow {{.Client}} to see your account?</h1>
  <p class="lead">{{.Client}} asks for:</p>
  <ul>{{range .Scopes}}<li>{{.}}</li>{{end}}</ul>
  <p>If you allow it, qrauth remembers: {{.Client}} is not asked again for these.</p>
  <form method="post" action="/oidc/consent">
    <input type="hidden" name="id" value="{{.ID}}">
    <div class="form-actions">
      <button type="submit" class="btn btn-primary" name="answer" value="allow" id="consent-allow">Allow</button>
      <button type="submit" class="btn btn-secondary" name="answer" value="deny" id="consent-deny">Deny</button>
    </div>
  </form>
</main>
</body>
</html>
`))

func (f *Flow) consentPage(c echo.Context, r *oidc.AuthRequest, cl *oidc.Client, missing []string) error {
	var shown []string
	for _, s := range missing {
		if t, ok := scopeText[s]; ok {
			shown = append(shown, t)
		} else {
			shown = append(shown, s)
		}
	}
	c.Response().Header().Set("Cache-Control", "no-store")
	// Under the site-wide no-referrer, a browser sends the form's POST with
	// "Origin: null", which the core's CSRF check refuses; same-origin
	// lets it send ours, and still nothing to other sites.
	c.Response().Header().Set("Referrer-Policy", "same-origin")
	// The answer's redirects end at the site's (registered) redirect URI,
	// and a browser holds a form's redirects to form-action too.
	if src := cspSource(r.RedirectURI); src != "" {
		h := c.Response().Header()
		h.Set("Content-Security-Policy", strings.Replace(h.Get("Content-Security-Policy"),
			"form-action 'self'", "form-action 'self' "+src, 1))
	}
	c.Response().Header().Set(echo.HeaderContentType, echo.MIMETextHTMLCharsetUTF8)
	c.Response().WriteHeader(http.StatusOK)
	return consentTmpl.Execute(c.Response(), map[string]any{"Client": cl.Name, "ClientID": cl.ID, "Scopes": shown, "ID": r.ID})
}

// handleConsent records the signed-in person's answer.
func (f *Flow) handleConsent(c echo.Context) error {
	ctx := c.Request().Context()
	r, err := f.st.FindOIDCAuthRequest(ctx, c.FormValue("id"))
	if err != nil || r.Done || !f.h.Now().Before(r.ExpiresAt) {
		return errNoRequest
	}
	_, u, err := f.h.Authenticate(c)
	if err != nil {
		return err
	}
	if c.FormValue("answer") != "allow" {
		return f.refuse(c, r, zoidc.ErrAccessDenied().WithDescription("the person did not allow it"))
	}
	have := []string{}
	if old, err := f.st.FindOIDCConsent(ctx, string(u.ID), r.ClientID); err == nil {
		have = old.Scopes
	}
	for _, s := range missingScopes(r.Scopes, have) {
		have = append(have, s)
	}
	if err := f.st.PutOIDCConsent(ctx, &oidc.Consent{UserID: string(u.ID), ClientID: r.ClientID, Scopes: have}); err != nil {
		return err
	}
	return c.Redirect(http.StatusSeeOther, loginPath+"?id="+r.ID)
}

// cspSource is the CSP source expression of a registered redirect URI:
// its origin, or for a private-use scheme (a native app) the scheme; ""
// if it has neither.
func cspSource(uri string) string {
	u, err := url.Parse(uri)
	switch {
	case err != nil || u.Scheme == "" || strings.ContainsAny(u.Scheme+u.Host, " ;,'\""):
		return ""
	case u.Scheme == "http" || u.Scheme == "https":
		if u.Host == "" {
			return ""
		}
		return u.Scheme + "://" + u.Host
	default:
		return u.Scheme + ":"
	}
}
