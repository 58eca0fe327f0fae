package oidcflow

import (
	"context"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"io"
	"slices"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/labstack/echo/v4"
	"github.com/qrauth/qrauth"
	"github.com/qrauth/qrauth/oidc"
	zoidc "github.com/zitadel/oidc/v3/pkg/oidc"
	"github.com/zitadel/oidc/v3/pkg/op"
)

// reqState travels in the context of every request the provider serves:
// the echo context (for the browser's session) and the client the request
// is about (for the ID token's algorithm).
type reqState struct {
	c        echo.Context
	clientID string
}

type stateKey struct{}

func stateOf(ctx context.Context) *reqState {
	s, _ := ctx.Value(stateKey{}).(*reqState)
	return s
}

// storage adapts oidc.Store to op.Storage.
type storage struct{ f *Flow }

var _ op.Storage = storage{}
var _ op.CanSetUserinfoFromRequest = storage{}

func (s storage) now() time.Time { return s.f.h.Now() }

func randomID(r io.Reader, n int) (string, error) {
	b := make([]byte, n)
	if _, err := io.ReadFull(r, b); err != nil {
		return "", qrauth.Internal(err)
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}

// authRequest is an oidc.AuthRequest as op sees it.
type authRequest struct{ r *oidc.AuthRequest }

func (a authRequest) GetID() string          { return a.r.ID }
func (a authRequest) GetACR() string         { return a.r.ACR }
func (a authRequest) GetAMR() []string       { return a.r.AMR }
func (a authRequest) GetAudience() []string  { return []string{a.r.ClientID} }
func (a authRequest) GetAuthTime() time.Time { return a.r.AuthTime }
func (a authRequest) GetClientID() string    { return a.r.ClientID }
func (a authRequest) GetNonce() string       { return a.r.Nonce }
func (a authRequest) GetRedirectURI() string { return a.r.RedirectURI }
func (a authRequest) GetScopes() []string    { return a.r.Scopes }
func (a authRequest) GetState() string       { return a.r.State }
func (a authRequest) GetSubject() string     { return a.r.UserID }
func (a authRequest) Done() bool             { return a.r.Done }
func (a authRequest) GetResponseType() zoidc.ResponseType {
	return zoidc.ResponseType(a.r.ResponseType)
}
func (a authRequest) GetResponseMode() zoidc.ResponseMode {
	return zoidc.ResponseMode(a.r.ResponseMode)
}
func (a authRequest) GetCodeChallenge() *zoidc.CodeChallenge {
	if a.r.CodeChallenge == "" {
		return nil
	}
	return &zoidc.CodeChallenge{Challenge: a.r.CodeChallenge, Method: zoidc.CodeChallengeMethod(a.r.CodeChallengeMethod)}
}

// client is an oidc.Client as op sees it.
type client struct{ c *oidc.Client }

func (c client) GetID() string                    { return c.c.ID }
func (c client) RedirectURIs() []string           { return c.c.RedirectURIs }
func (c client) PostLogoutRedirectURIs() []string { return c.c.PostLogoutURIs }
func (c client) ApplicationType() op.ApplicationType {
	if c.c.Public {
		// Native: loopback http and private-use schemes allowed, as
		// RFC 8252 says; op treats only web clients as confidential.
		return op.ApplicationTypeNative
	}
	return op.ApplicationTypeWeb
}
func (c client) AuthMethod() zoidc.AuthMethod {
	if c.c.Public {
		return zoidc.AuthMethodNone
	}
	return zoidc.AuthMethodBasic
}
func (c client) ResponseTypes() []zoidc.ResponseType {
	return []zoidc.ResponseType{zoidc.ResponseTypeCode}
}
func (c client) GrantTypes() []zoidc.GrantType {
	return []zoidc.GrantType{zoidc.GrantTypeCode, zoidc.GrantTypeRefreshToken}
}
func (c client) LoginURL(id string) string            { return loginPath + "?id=" + id }
func (c client) AccessTokenType() op.AccessTokenType  { return op.AccessTokenTypeBearer }
func (c client) IDTokenLifetime() time.Duration       { return time.Hour }
func (c client) DevMode() bool                        { return false }
func (c client) IsScopeAllowed(scope string) bool     { return slices.Contains(c.c.Scopes, scope) }
func (c client) IDTokenUserinfoClaimsAssertion() bool { return true }
func (c client) ClockSkew() time.Duration             { return 0 }
func (c client) RestrictAdditionalIdTokenScopes() func([]string) []string {
	return func(s []string) []string { return s }
}
func (c client) RestrictAdditionalAccessTokenScopes() func([]string) []string {
	return func(s []string) []string { return s }
}

// allowedScopes are asked-for scopes the client may have: openid always,
// the rest only if registered for it.
func allowedScopes(c *oidc.Client, asked []string) []string {
	var out []string
	for _, s := range asked {
		if (s == zoidc.ScopeOpenID || slices.Contains(c.Scopes, s)) && !slices.Contains(out, s) {
			out = append(out, s)
		}
	}
	return out
}

func (s storage) CreateAuthRequest(ctx context.Context, req *zoidc.AuthRequest, _ string) (op.AuthRequest, error) {
	c, err := s.f.st.FindOIDCClient(ctx, req.ClientID)
	if err != nil {
		return nil, zoidc.ErrInvalidClient().WithDescription("unknown client")
	}
	switch {
	case req.CodeChallenge == "" && c.Public:
		return nil, zoidc.ErrInvalidRequest().WithDescription("PKCE (code_challenge with S256) is required for public clients")
	case req.CodeChallenge != "" && req.CodeChallengeMethod != zoidc.CodeChallengeMethodS256:
		return nil, zoidc.ErrInvalidRequest().WithDescription("code_challenge_method must be S256")
	}
	id, err := randomID(s.f.h.Rand(), 16)
	if err != nil {
		return nil, err
	}
	now := s.now()
	r := &oidc.AuthRequest{
		ID: id, ClientID: c.ID, RedirectURI: req.RedirectURI, State: req.State, Nonce: req.Nonce,
		Scopes: allowedScopes(c, req.Scopes), Prompt: req.Prompt, ACRValues: req.ACRValues,
		CodeChallenge: req.CodeChallenge, CodeChallengeMethod: string(req.CodeChallengeMethod),
		ResponseType: string(req.ResponseType), ResponseMode: string(req.ResponseMode),
		CreatedAt: now, ExpiresAt: now.Add(s.f.cfg.RequestTTL),
	}
	if req.MaxAge != nil {
		m := int64(*req.MaxAge)
		r.MaxAge = &m
	}
	if err := s.f.st.CreateOIDCAuthRequest(ctx, r); err != nil {
		return nil, err
	}
	return authRequest{r}, nil
}

func (s storage) AuthRequestByID(ctx context.Context, id string) (op.AuthRequest, error) {
	r, err := s.f.st.FindOIDCAuthRequest(ctx, id)
	if err != nil {
		return nil, err
	}
	if !s.now().Before(r.ExpiresAt) || r.Exchanged {
		return nil, errors.New("authorization request expired")
	}
	return authRequest{r}, nil
}

// AuthRequestByCode spends the code: a code is good once. A second use
// revokes every token of the first, as RFC 6749 §4.1.2 advises.
func (s storage) AuthRequestByCode(ctx context.Context, code string) (op.AuthRequest, error) {
	r, err := s.f.st.FindOIDCAuthRequestByCode(ctx, oidc.Hash(code))
	if err != nil {
		return nil, zoidc.ErrInvalidGrant().WithDescription("invalid code")
	}
	now := s.now()
	grant := r.ID
	var reused bool
	r, err = s.f.st.UpdateOIDCAuthRequest(ctx, r.ID, func(r *oidc.AuthRequest) error {
		switch {
		case r.Exchanged:
			reused = true
			return errCodeUsed
		case !now.Before(r.CodeExpiresAt):
			return errCodeExpired
		}
		r.Exchanged = true
		return nil
	})
	if reused {
		if rerr := s.f.st.RevokeOIDCGrant(ctx, grant); rerr != nil {
			s.f.h.Logger().Error("oidc: revoking the tokens of a reused code", "err", rerr)
		}
		s.f.h.Logger().Warn("oidc: an authorization code was used twice; its tokens are revoked")
	}
	if err != nil {
		return nil, zoidc.ErrInvalidGrant().WithDescription("%s", qrauth.ErrorMessage(err))
	}
	return authRequest{r}, nil
}

// Typed, so that the store returns them as they are (and changes nothing).
var (
	errCodeUsed    = qrauth.Errorf(qrauth.ECONFLICT, "oidc_code_used", "The code was already used.")
	errCodeExpired = qrauth.Errorf(qrauth.EEXPIRED, "oidc_code_expired", "The code has expired.")
)

func (s storage) SaveAuthCode(ctx context.Context, id, code string) error {
	exp := s.now().Add(s.f.cfg.CodeTTL)
	_, err := s.f.st.UpdateOIDCAuthRequest(ctx, id, func(r *oidc.AuthRequest) error {
		if len(r.CodeHash) > 0 {
			return errors.New("a code was already issued for this request")
		}
		r.CodeHash, r.CodeExpiresAt = oidc.Hash(code), exp
		if r.ExpiresAt.Before(exp.Add(s.f.cfg.RequestTTL)) {
			// Kept after the exchange, to recognise a second use.
			r.ExpiresAt = exp.Add(s.f.cfg.RequestTTL)
		}
		return nil
	})
	return err
}

// DeleteAuthRequest keeps an exchanged request until it expires: it is
// what recognises a code used twice.
func (s storage) DeleteAuthRequest(ctx context.Context, id string) error {
	r, err := s.f.st.FindOIDCAuthRequest(ctx, id)
	if err != nil || r.Exchanged {
		return nil
	}
	return s.f.st.DeleteOIDCAuthRequest(ctx, id)
}

// grantOf is what every token request says about its grant.
type grantInfo struct {
	grantID, clientID, userID string
	scopes, amr               []string
	acr                       string
	authTime                  time.Time
}

func grantOf(req op.TokenRequest) grantInfo {
	g := grantInfo{userID: req.GetSubject(), scopes: req.GetScopes()}
	switch r := req.(type) {
	case authRequest:
		g.grantID, g.clientID, g.amr, g.acr, g.authTime = r.r.ID, r.r.ClientID, r.r.AMR, r.r.ACR, r.r.AuthTime
	case *refreshRequest:
		g.grantID, g.clientID, g.amr, g.acr, g.authTime = r.t.GrantID, r.t.ClientID, r.t.AMR, r.t.ACR, r.t.AuthTime
	}
	return g
}

func (s storage) newToken(g grantInfo, kind string, ttl time.Duration) (*oidc.Token, error) {
	id, err := randomID(s.f.h.Rand(), 16)
	if err != nil {
		return nil, err
	}
	now := s.now()
	return &oidc.Token{ID: id, Kind: kind, GrantID: g.grantID, ClientID: g.clientID, UserID: g.userID,
		Scopes: g.scopes, AMR: g.amr, ACR: g.acr, AuthTime: g.authTime, CreatedAt: now, ExpiresAt: now.Add(ttl)}, nil
}

func (s storage) CreateAccessToken(ctx context.Context, req op.TokenRequest) (string, time.Time, error) {
	g := grantOf(req)
	if g.grantID == "" {
		return "", time.Time{}, zoidc.ErrUnsupportedGrantType()
	}
	t, err := s.newToken(g, oidc.KindAccess, s.f.cfg.AccessTokenTTL)
	if err != nil {
		return "", time.Time{}, err
	}
	if err := s.f.st.CreateOIDCTokens(ctx, t); err != nil {
		return "", time.Time{}, err
	}
	return t.ID, t.ExpiresAt, nil
}

// CreateAccessAndRefreshTokens issues an access token and a refresh token;
// a refresh rotates: the presented token is spent in the same transaction.
func (s storage) CreateAccessAndRefreshTokens(ctx context.Context, req op.TokenRequest, current string) (string, string, time.Time, error) {
	g := grantOf(req)
	if g.grantID == "" {
		return "", "", time.Time{}, zoidc.ErrUnsupportedGrantType()
	}
	at, err := s.newToken(g, oidc.KindAccess, s.f.cfg.AccessTokenTTL)
	if err != nil {
		return "", "", time.Time{}, err
	}
	rt, err := s.newToken(g, oidc.KindRefresh, s.f.cfg.RefreshTokenTTL)
	if err != nil {
		return "", "", time.Time{}, err
	}
	value, err := randomID(s.f.h.Rand(), 32)
	if err != nil {
		return "", "", time.Time{}, err
	}
	rt.Hash = oidc.Hash(value)
	if current == "" {
		err = s.f.st.CreateOIDCTokens(ctx, at, rt)
	} else {
		err = s.f.st.RotateOIDCRefreshToken(ctx, oidc.Hash(current), at, rt)
		if qrauth.ErrorCode(err) == qrauth.ENOTFOUND {
			return "", "", time.Time{}, zoidc.ErrInvalidGrant().WithDescription("refresh token already used or revoked")
		}
	}
	if err != nil {
		return "", "", time.Time{}, err
	}
	return at.ID, value, at.ExpiresAt, nil
}

// refreshRequest is a stored refresh token as op sees it.
type refreshRequest struct {
	t      *oidc.Token
	scopes []string
}

func (r *refreshRequest) GetAMR() []string                 { return r.t.AMR }
func (r *refreshRequest) GetAudience() []string            { return []string{r.t.ClientID} }
func (r *refreshRequest) GetAuthTime() time.Time           { return r.t.AuthTime }
func (r *refreshRequest) GetClientID() string              { return r.t.ClientID }
func (r *refreshRequest) GetScopes() []string              { return r.scopes }
func (r *refreshRequest) GetSubject() string               { return r.t.UserID }
func (r *refreshRequest) SetCurrentScopes(scopes []string) { r.scopes = scopes }

func (s storage) TokenRequestByRefreshToken(ctx context.Context, token string) (op.RefreshTokenRequest, error) {
	t, err := s.f.st.FindOIDCRefreshToken(ctx, oidc.Hash(token))
	if err != nil || !s.now().Before(t.ExpiresAt) {
		return nil, zoidc.ErrInvalidGrant().WithDescription("invalid refresh token")
	}
	return &refreshRequest{t: t, scopes: t.Scopes}, nil
}

// TerminateSession ends the browser's qrauth session (RP-initiated
// logout) and the tokens of that user at that client.
func (s storage) TerminateSession(ctx context.Context, userID, clientID string) error {
	if st := stateOf(ctx); st != nil && st.c != nil {
		return s.f.h.EndSession(st.c)
	}
	return nil
}

// RevokeToken revokes an access token, or a refresh token's whole grant.
// op passes the id of a token it recognised (an access token it decrypted,
// a refresh token GetRefreshTokenInfo found) with its user, or else the
// presented value with no user.
func (s storage) RevokeToken(ctx context.Context, tokenOrID, userID, clientID string) *zoidc.Error {
	if userID != "" {
		t, err := s.f.st.FindOIDCToken(ctx, tokenOrID)
		if err != nil {
			return nil // unknown tokens are "revoked" (RFC 7009 §2.2)
		}
		if t.ClientID != clientID {
			return zoidc.ErrInvalidClient().WithDescription("token was not issued to this client")
		}
		if t.Kind == oidc.KindRefresh {
			err = s.f.st.RevokeOIDCGrant(ctx, t.GrantID)
		} else {
			err = s.f.st.DeleteOIDCToken(ctx, t.ID)
		}
		if err != nil && qrauth.ErrorCode(err) != qrauth.ENOTFOUND {
			return zoidc.ErrServerError()
		}
		return nil
	}
	t, err := s.f.st.FindOIDCRefreshToken(ctx, oidc.Hash(tokenOrID))
	if err != nil {
		return nil
	}
	if t.ClientID != clientID {
		return zoidc.ErrInvalidClient().WithDescription("token was not issued to this client")
	}
	// Revoking a refresh token revokes its grant's access tokens too.
	if err := s.f.st.RevokeOIDCGrant(ctx, t.GrantID); err != nil {
		return zoidc.ErrServerError()
	}
	return nil
}

func (s storage) GetRefreshTokenInfo(ctx context.Context, clientID, token string) (string, string, error) {
	t, err := s.f.st.FindOIDCRefreshToken(ctx, oidc.Hash(token))
	if err != nil {
		return "", "", op.ErrInvalidRefreshToken
	}
	return t.UserID, t.ID, nil
}

func (s storage) SigningKey(ctx context.Context) (op.SigningKey, error) {
	alg := oidc.AlgRS256
	if st := stateOf(ctx); st != nil && st.clientID != "" {
		if c, err := s.f.st.FindOIDCClient(ctx, st.clientID); err == nil && c.IDTokenAlg == oidc.AlgEdDSA {
			alg = oidc.AlgEdDSA
		}
	}
	return s.f.keys.signer(ctx, alg)
}

func (s storage) SignatureAlgorithms(context.Context) ([]jose.SignatureAlgorithm, error) {
	return []jose.SignatureAlgorithm{jose.RS256, jose.EdDSA}, nil
}

func (s storage) KeySet(ctx context.Context) ([]op.Key, error) { return s.f.keys.publicKeys(ctx), nil }

func (s storage) GetClientByClientID(ctx context.Context, id string) (op.Client, error) {
	c, err := s.f.st.FindOIDCClient(ctx, id)
	if err != nil {
		if qrauth.ErrorCode(err) == qrauth.ENOTFOUND {
			return nil, errors.New("unknown client")
		}
		return nil, zoidc.ErrServerError().WithParent(err)
	}
	if st := stateOf(ctx); st != nil {
		st.clientID = id
	}
	return client{c}, nil
}

func (s storage) AuthorizeClientIDSecret(ctx context.Context, id, secret string) error {
	c, err := s.f.st.FindOIDCClient(ctx, id)
	if err != nil {
		if qrauth.ErrorCode(err) == qrauth.ENOTFOUND {
			return errors.New("unknown client")
		}
		return zoidc.ErrServerError().WithParent(err)
	}
	if c.Public || len(c.SecretHash) == 0 || subtle.ConstantTimeCompare(c.SecretHash, oidc.Hash(secret)) != 1 {
		return errors.New("wrong client secret")
	}
	if st := stateOf(ctx); st != nil {
		st.clientID = id
	}
	return nil
}

func (s storage) SetUserinfoFromScopes(context.Context, *zoidc.UserInfo, string, string, []string) error {
	return nil
}

func (s storage) setUserinfo(ctx context.Context, info *zoidc.UserInfo, userID string, scopes []string) error {
	u, err := s.f.h.Store().FindUserByID(ctx, qrauth.UserID(userID))
	if err != nil {
		return err
	}
	info.Subject = string(u.ID)
	if slices.Contains(scopes, zoidc.ScopeProfile) && u.Name != "" {
		info.Name = u.Name
	}
	if slices.Contains(scopes, zoidc.ScopeEmail) && u.Email != "" {
		info.Email = u.Email
		info.EmailVerified = false // qrauth never verifies an address
	}
	return nil
}

func (s storage) SetUserinfoFromRequest(ctx context.Context, info *zoidc.UserInfo, req op.IDTokenRequest, scopes []string) error {
	return s.setUserinfo(ctx, info, req.GetSubject(), scopes)
}

func (s storage) liveToken(ctx context.Context, id string) (*oidc.Token, error) {
	t, err := s.f.st.FindOIDCToken(ctx, id)
	if err != nil || t.Kind != oidc.KindAccess || !s.now().Before(t.ExpiresAt) {
		return nil, errors.New("token is invalid or has expired")
	}
	return t, nil
}

func (s storage) SetUserinfoFromToken(ctx context.Context, info *zoidc.UserInfo, tokenID, subject, _ string) error {
	t, err := s.liveToken(ctx, tokenID)
	if err != nil || t.UserID != subject {
		return errors.New("token is invalid or has expired")
	}
	return s.setUserinfo(ctx, info, t.UserID, t.Scopes)
}

func (s storage) SetIntrospectionFromToken(ctx context.Context, resp *zoidc.IntrospectionResponse, tokenID, subject, clientID string) error {
	t, err := s.liveToken(ctx, tokenID)
	if err != nil || t.UserID != subject {
		return errors.New("token is invalid or has expired")
	}
	info := new(zoidc.UserInfo)
	if err := s.setUserinfo(ctx, info, t.UserID, t.Scopes); err != nil {
		return err
	}
	resp.SetUserInfo(info)
	resp.Active = true
	resp.Scope = t.Scopes
	resp.ClientID = t.ClientID
	resp.Audience = []string{t.ClientID}
	resp.Expiration = zoidc.FromTime(t.ExpiresAt)
	resp.IssuedAt = zoidc.FromTime(t.CreatedAt)
	resp.TokenType = zoidc.BearerToken
	return nil
}

func (s storage) GetPrivateClaimsFromScopes(context.Context, string, string, []string) (map[string]any, error) {
	return nil, nil
}

func (s storage) GetKeyByIDAndClientID(context.Context, string, string) (*jose.JSONWebKey, error) {
	return nil, errors.New("JWT profile client authentication is not supported")
}

func (s storage) ValidateJWTProfileScopes(context.Context, string, []string) ([]string, error) {
	return nil, errors.New("JWT profile grants are not supported")
}

func (s storage) Health(context.Context) error { return nil }
