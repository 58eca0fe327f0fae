package oidcflow

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/qrauth/qrauth"
	"github.com/qrauth/qrauth/oidc"
	"github.com/qrauth/qrauth/server"
	"github.com/qrauth/qrauth/wire"
	"github.com/zitadel/oidc/v3/pkg/op"
	"golang.org/x/text/language"
)

// Paths of the provider. The issuer is the server's origin, so discovery
// is at ORIGIN/.well-known/openid-configuration.
const (
	loginPath   = "/oidc/login"
	consentPath = "/oidc/consent"
	pendingPath = "/oidc/pending"
	pathPrefix  = "/oidc/"
)

// The ACR values this provider knows. ACRMFA demands a second factor after
// the QR sign-in (an authenticator app code).
const (
	ACRQR  = "urn:qrauth:acr:qr"
	ACRMFA = "urn:qrauth:acr:mfa"
)

// requestCookie ties an authorization request to the browser that signs in
// for it.
const requestCookie = "qrauth_oidc"

// DefaultKeyGrace is how long a rotated signing key still verifies by
// default (Config.KeyGrace, qrauthd's -oidc-key-grace).
const DefaultKeyGrace = 24 * time.Hour

// DefaultKeyReload is Config.KeyReload's default.
const DefaultKeyReload = 30 * time.Second

// Config configures the provider. Zero fields take their defaults.
type Config struct {
	// KeyGrace is how long a rotated signing key stays in the JWKS for
	// verification. Default 24 h.
	KeyGrace time.Duration
	// KeyReload is, in a cluster, how old the signing keys an instance
	// holds in memory may get before a request reads them again (a
	// rotation through another instance reaches this one within it), and
	// half the time a rotated key waits before it signs. Default 30 s;
	// unused by an instance alone, whose keys nobody else changes.
	KeyReload       time.Duration
	RequestTTL      time.Duration // authorization request to sign-in; default 10 min
	CodeTTL         time.Duration // default 1 min
	AccessTokenTTL  time.Duration // default 1 h
	RefreshTokenTTL time.Duration // default 30 days
	// Clients are the clients declared in the config file, applied at
	// Mount: those that left it are removed.
	Clients []ConfigClient
}

func (c Config) withDefaults() Config {
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&c.KeyGrace, DefaultKeyGrace)
	def(&c.KeyReload, DefaultKeyReload)
	def(&c.RequestTTL, 10*time.Minute)
	def(&c.CodeTTL, time.Minute)
	def(&c.AccessTokenTTL, time.Hour)
	def(&c.RefreshTokenTTL, 30*24*time.Hour)
	return c
}

// Flow is the OpenID Connect provider as a server.Flow. It is listed last,
// so its gate runs after every other flow's.
type Flow struct {
	cfg  Config
	st   oidc.Store
	h    server.Host
	op   *op.Provider
	keys *keyring
	http http.Handler
}

var (
	_ server.Flow      = (*Flow)(nil)
	_ server.Finisher  = (*Flow)(nil)
	_ server.SiteNamer = (*Flow)(nil)
)

// New returns the provider over st.
func New(cfg Config, st oidc.Store) *Flow { return &Flow{cfg: cfg.withDefaults(), st: st} }

// Name implements server.Flow.
func (f *Flow) Name() string { return "oidc" }

// Mount implements server.Flow: it loads (or, on first start, makes) the
// signing keys and registers discovery and the provider's endpoints.
func (f *Flow) Mount(h server.Host, e *echo.Echo) error {
	f.h = h
	ctx := context.Background()
	aead, err := newSealAEAD(ctx, h.MasterKey(), h.Store(), h.Rand())
	if err != nil {
		return err
	}
	f.keys = &keyring{aead: aead, st: f.st, rnd: h.Rand(), now: h.Now, grace: f.cfg.KeyGrace,
		log: h.Logger().With("flow", "oidc")}
	if h.Recheck() > 0 { // in a cluster
		f.keys.reload = f.cfg.KeyReload
	}
	if _, err := f.keys.load(ctx, false); err != nil {
		return fmt.Errorf("oidc signing keys: %w", err)
	}
	if err := f.syncConfigClients(ctx); err != nil {
		return fmt.Errorf("oidc clients of the config file: %w", err)
	}
	// The code and access token key: a fresh key per start would void the
	// tokens out at every restart, so it is kept (sealed by the store's
	// secret area like the bind key).
	ck, err := h.Store().Secret(ctx, "oidc_token_key", func() ([]byte, error) {
		id, err := randomID(h.Rand(), 32)
		return []byte(id), err
	})
	if err != nil {
		return err
	}
	var key [32]byte
	key = sha256.Sum256(append([]byte("qrauth/v1/oidc-tokens/"), ck...))
	cfg := &op.Config{
		CryptoKey:                key,
		DefaultLogoutRedirectURI: "/",
		CodeMethodS256:           true,
		AuthMethodPost:           true,
		GrantTypeRefreshToken:    true,
		SupportedUILocales:       []language.Tag{language.English},
		SupportedClaims: []string{"sub", "aud", "exp", "iat", "iss", "auth_time", "nonce", "acr", "amr",
			"at_hash", "azp", "name", "email", "email_verified"},
		SupportedScopes: []string{"openid", "profile", "email", "offline_access"},
	}
	opts := []op.Option{
		op.WithCustomEndpoints(op.NewEndpoint("oidc/authorize"), op.NewEndpoint("oidc/token"),
			op.NewEndpoint("oidc/userinfo"), op.NewEndpoint("oidc/revoke"), op.NewEndpoint("oidc/end_session"),
			op.NewEndpoint("oidc/keys")),
		op.WithCustomIntrospectionEndpoint(op.NewEndpoint("oidc/introspect")),
		op.WithLogger(h.Logger().With("flow", "oidc")),
		op.WithIDTokenHintVerifierOpts(op.WithSupportedIDTokenHintSigningAlgorithms("RS256", "EdDSA")),
	}
	if !strings.HasPrefix(h.Origin(), "https://") {
		opts = append(opts, op.WithAllowInsecure())
	}
	p, err := op.NewProvider(cfg, storage{f}, op.StaticIssuer(h.Origin()), opts...)
	if err != nil {
		return fmt.Errorf("oidc provider: %w", err)
	}
	f.op = p
	f.http = p
	serve := f.serve
	e.GET("/.well-known/openid-configuration", serve)
	// GET and POST where the specs allow both (docs/protocol.md §11.6).
	getPost := func(path string) {
		e.GET(path, serve)
		e.POST(path, serve)
	}
	getPost(pathPrefix + "authorize")
	e.GET(pathPrefix+"authorize/callback", serve)
	e.POST(pathPrefix+"token", serve)
	e.POST(pathPrefix+"introspect", serve)
	e.POST(pathPrefix+"revoke", serve)
	getPost(pathPrefix + "userinfo")
	getPost(pathPrefix + "end_session")
	e.GET(pathPrefix+"keys", serve)
	e.GET(loginPath, f.handleLogin)
	e.POST(consentPath, f.handleConsent)
	e.GET(pendingPath, f.handlePending)
	f.adminRoutes(e)
	e.Use(f.requestContext)
	return nil
}

// serve hands a request to the provider, with the echo context in reach of
// the storage (for the browser's session at logout).
func (f *Flow) serve(c echo.Context) error {
	r := c.Request()
	r = r.WithContext(context.WithValue(r.Context(), stateKey{}, &reqState{c: c}))
	f.http.ServeHTTP(c.Response(), r)
	return nil
}

type pendingKey struct{}

// requestContext puts the id of the browser's authorization request, if
// any, into every request's context: the gate (which sees no request) reads
// it there.
func (f *Flow) requestContext(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		if ck, err := c.Cookie(requestCookie); err == nil && ck.Value != "" {
			r := c.Request()
			c.SetRequest(r.WithContext(context.WithValue(r.Context(), pendingKey{}, ck.Value)))
		}
		return next(c)
	}
}

// pending returns the browser's open authorization request, or nil.
func (f *Flow) pending(ctx context.Context) *oidc.AuthRequest {
	id, _ := ctx.Value(pendingKey{}).(string)
	if id == "" {
		return nil
	}
	r, err := f.st.FindOIDCAuthRequest(ctx, id)
	if err != nil || r.Done || !f.h.Now().Before(r.ExpiresAt) {
		return nil
	}
	return r
}

// Gate implements server.Flow: a relying site that demands a second factor
// (acr_values with ACRMFA) gets the authenticator code asked for.
func (f *Flow) Gate(ctx context.Context, u *qrauth.User, si *server.SignIn) (server.Step, error) {
	r := f.pending(ctx)
	if r == nil || !slices.Contains(r.ACRValues, ACRMFA) || hasSecondFactor(si.Methods) {
		return server.Step{}, nil
	}
	return server.Step{Page: wire.PathVerify}, nil
}

// SignedIn implements server.Finisher: it records what the sign-in proved
// and, when the browser signed in for a relying site, sends it back there.
func (f *Flow) SignedIn(c echo.Context, si *server.SignIn, sess *qrauth.Session) (string, error) {
	ctx := c.Request().Context()
	if err := f.st.PutOIDCSessionInfo(ctx, &oidc.SessionInfo{SessionID: string(sess.ID), AMR: amrOf(si.Methods),
		AuthTime: sess.CreatedAt, ExpiresAt: sess.ExpiresAt}); err != nil {
		return "", err
	}
	r := f.pending(ctx)
	if r == nil {
		return "", nil
	}
	if _, err := f.st.UpdateOIDCAuthRequest(ctx, r.ID, func(r *oidc.AuthRequest) error {
		r.SessionID = string(sess.ID)
		return nil
	}); err != nil {
		return "", err
	}
	return loginPath + "?id=" + r.ID, nil
}

// amrOf maps sign-in methods to RFC 8176 values.
func amrOf(methods []string) []string {
	var out []string
	add := func(v string) {
		if !slices.Contains(out, v) {
			out = append(out, v)
		}
	}
	for _, m := range methods {
		switch {
		case m == server.MethodQR:
			add("hwk")
		case m == server.MethodOATH, strings.HasPrefix(m, server.MethodOffline):
			add("otp")
		case m == server.MethodPassword:
			add("pwd")
		case strings.HasPrefix(m, "badge"):
			add("sc")
		}
	}
	if len(out) > 1 {
		add("mfa")
	}
	return out
}

func hasSecondFactor(methods []string) bool {
	return slices.Contains(amrOf(methods), "otp") && len(methods) > 1
}

// acrOf is the ACR a sign-in reached.
func acrOf(amr []string) string {
	if slices.Contains(amr, "otp") && len(amr) > 1 {
		return ACRMFA
	}
	return ACRQR
}

// AdminUser implements server.Flow: nothing per user.
func (f *Flow) AdminUser(context.Context, *qrauth.User, map[string]any) error { return nil }

// Purge implements server.Flow.
func (f *Flow) Purge(ctx context.Context, now time.Time) {
	if err := f.st.PurgeOIDC(ctx, now); err != nil && !errors.Is(err, context.Canceled) {
		f.h.Logger().Error("oidc: purge", "err", err)
	}
}

// Shutdown implements server.Flow.
func (f *Flow) Shutdown() {}

// RotateKeys makes new signing keys and retires the active ones (still
// published for f.cfg.KeyGrace after). It returns when the new keys sign:
// now for an instance alone; in a cluster 2×KeyReload later, once every
// instance publishes them, the old keys signing until then.
func (f *Flow) RotateKeys(ctx context.Context) (time.Time, error) {
	return f.keys.load(ctx, true)
}

func ctxWithState(c echo.Context) context.Context {
	return context.WithValue(c.Request().Context(), stateKey{}, &reqState{c: c})
}
