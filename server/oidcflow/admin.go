package oidcflow

import (
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/qrauth/qrauth"
	"github.com/qrauth/qrauth/oidc"
)

// ClientRequest is the body of POST /admin/api/oidc/clients.
type ClientRequest struct {
	ID             string   `json:"id"`
	Name           string   `json:"name"`
	RedirectURIs   []string `json:"redirect_uris"`
	PostLogoutURIs []string `json:"post_logout_uris"`
	Public         bool     `json:"public"`
	Scopes         []string `json:"scopes"`
	SkipConsent    bool     `json:"skip_consent"`
	IDTokenAlg     string   `json:"id_token_alg"`
}

// Client validates the request and returns the client it asks for, made
// at now, without a secret: the one check of `qrauthd admin oidc clients
// add` and of the config file's clients (ConfigClient).
func (req ClientRequest) Client(now time.Time) (*oidc.Client, error) {
	switch {
	case req.ID == "" || strings.ContainsAny(req.ID, "/ ") || len(req.ID) > 100:
		return nil, invalid("A client id is 1 to 100 characters without spaces or '/'.")
	case req.Name == "":
		return nil, invalid("A client needs a name (shown to people signing in).")
	case len(req.RedirectURIs) == 0:
		return nil, invalid("A client needs at least one redirect URI.")
	case req.IDTokenAlg != "" && req.IDTokenAlg != oidc.AlgRS256 && req.IDTokenAlg != oidc.AlgEdDSA:
		return nil, invalid("The ID token algorithm is RS256 or EdDSA.")
	}
	if err := checkURIs("redirect URI", req.RedirectURIs); err != nil {
		return nil, err
	}
	if err := checkURIs("post-logout URI", req.PostLogoutURIs); err != nil {
		return nil, err
	}
	scopes := req.Scopes
	if scopes == nil {
		scopes = []string{"profile", "email", "offline_access"}
	}
	return &oidc.Client{ID: req.ID, Name: req.Name, RedirectURIs: req.RedirectURIs, PostLogoutURIs: req.PostLogoutURIs,
		Public: req.Public, Scopes: slices.DeleteFunc(slices.Clone(scopes), func(s string) bool { return s == "openid" }),
		SkipConsent: req.SkipConsent, IDTokenAlg: req.IDTokenAlg, CreatedAt: now}, nil
}

func invalid(format string, args ...any) error {
	return qrauth.Errorf(qrauth.EINVALID, "invalid_oidc_client", format, args...)
}

func checkURIs(what string, list []string) error {
	for _, s := range list {
		u, err := url.Parse(s)
		if err != nil || u.Scheme == "" || u.Fragment != "" || (u.Scheme == "http" || u.Scheme == "https") && u.Host == "" {
			return invalid("%s %q is not an absolute URI without a fragment.", what, s)
		}
	}
	return nil
}

func (f *Flow) adminRoutes(e *echo.Echo) {
	e.GET("/admin/api/oidc/clients", f.handleListClients)
	e.POST("/admin/api/oidc/clients", f.handleAddClient)
	e.DELETE("/admin/api/oidc/clients/:id", f.handleRemoveClient)
	e.POST("/admin/api/oidc/rotate-keys", f.handleRotateKeys)
}

func (f *Flow) handleListClients(c echo.Context) error {
	if _, err := f.h.RequireRole(c, qrauth.RoleAdmin); err != nil {
		return err
	}
	list, err := f.st.ListOIDCClients(c.Request().Context())
	if err != nil {
		return err
	}
	for _, cl := range list {
		cl.SecretHash = nil
	}
	return c.JSON(http.StatusOK, map[string]any{"clients": list})
}

// handleAddClient registers a client; a confidential client's secret is in
// the answer, once, and stored only hashed.
func (f *Flow) handleAddClient(c echo.Context) error {
	if _, err := f.h.RequireRole(c, qrauth.RoleAdmin); err != nil {
		return err
	}
	var req ClientRequest
	if err := c.Bind(&req); err != nil {
		return invalid("The body is not a client.")
	}
	cl, err := req.Client(f.h.Now())
	if err != nil {
		return err
	}
	var secret string
	if !req.Public {
		if secret, err = randomID(f.h.Rand(), 32); err != nil {
			return err
		}
		cl.SecretHash = oidc.Hash(secret)
	}
	if err := f.st.CreateOIDCClient(c.Request().Context(), cl); err != nil {
		return err
	}
	cl.SecretHash = nil
	return c.JSON(http.StatusCreated, map[string]any{"client": cl, "secret": secret})
}

func (f *Flow) handleRemoveClient(c echo.Context) error {
	if _, err := f.h.RequireRole(c, qrauth.RoleAdmin); err != nil {
		return err
	}
	// The file would bring it back at the next start: it is removed there.
	if cl, err := f.st.FindOIDCClient(c.Request().Context(), c.Param("id")); err == nil && cl.Source == oidc.SourceConfig {
		return qrauth.Errorf(qrauth.ECONFLICT, "oidc_client_from_config",
			"The client %q is declared in the config file: remove its [[oidc-client]] table there and restart qrauthd.", cl.ID)
	}
	if err := f.st.DeleteOIDCClient(c.Request().Context(), c.Param("id")); err != nil {
		return err
	}
	return c.NoContent(http.StatusNoContent)
}

func (f *Flow) handleRotateKeys(c echo.Context) error {
	if _, err := f.h.RequireRole(c, qrauth.RoleAdmin); err != nil {
		return err
	}
	from, err := f.RotateKeys(c.Request().Context())
	if err != nil {
		return err
	}
	res := map[string]any{"keys": len(f.keys.publicKeys(c.Request().Context())), "grace": f.cfg.KeyGrace.String()}
	if from.After(f.h.Now()) { // in a cluster: published first, signing later
		res["sign_from"] = from.UTC().Format(time.RFC3339)
	}
	return c.JSON(http.StatusOK, res)
}
