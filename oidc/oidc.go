// Package oidc holds the records of qrauth's OpenID Connect provider and
// the store contract the provider (server/oidcflow) consumes: registered
// clients, authorization requests, tokens, signing keys, consents and what
// each browser session proved. Standard library only; store/ implements
// Store on bbolt and store/storetest checks any implementation.
//
// Secrets are never stored: a client secret, an authorization code and a
// refresh token are kept as SHA-256 hashes (they are 256-bit random
// values, so a plain hash is enough), signing keys sealed.
package oidc

import (
	"context"
	"crypto/sha256"
	"time"
)

// Signature algorithms of ID tokens.
const (
	AlgRS256 = "RS256"
	AlgEdDSA = "EdDSA"
)

// A Client is a relying site registered by the operator.
type Client struct {
	ID   string `json:"id"`
	Name string `json:"name"` // shown on the login page and the phone
	// SecretHash is Hash(secret) for a confidential client; a public client
	// (Public) has none and must use PKCE.
	SecretHash     []byte   `json:"secret_hash,omitempty"`
	Public         bool     `json:"public,omitempty"`
	RedirectURIs   []string `json:"redirect_uris"` // matched exactly
	PostLogoutURIs []string `json:"post_logout_uris,omitempty"`
	// Scopes are the scopes the client may ask for beyond openid.
	Scopes []string `json:"scopes,omitempty"`
	// SkipConsent: a first-party site; no consent screen.
	SkipConsent bool `json:"skip_consent,omitempty"`
	// IDTokenAlg is AlgRS256 (the default) or AlgEdDSA.
	IDTokenAlg string    `json:"id_token_alg,omitempty"`
	CreatedAt  time.Time `json:"created_at"`
	// Source is SourceConfig for a client declared in qrauthd's config
	// file, which only the file changes; empty for one registered with
	// `qrauthd admin oidc clients add`.
	Source string `json:"source,omitempty"`
}

// SourceConfig marks a Client declared in the config file.
const SourceConfig = "config"

// An AuthRequest is an authorization request from its arrival to the
// exchange of its code. It is kept after the exchange (Exchanged) until
// ExpiresAt, so a second use of the code can revoke the tokens of the first.
type AuthRequest struct {
	ID                  string   `json:"id"`
	ClientID            string   `json:"client_id"`
	RedirectURI         string   `json:"redirect_uri"`
	State               string   `json:"state,omitempty"`
	Nonce               string   `json:"nonce,omitempty"`
	Scopes              []string `json:"scopes"`
	Prompt              []string `json:"prompt,omitempty"`
	MaxAge              *int64   `json:"max_age,omitempty"` // seconds
	ACRValues           []string `json:"acr_values,omitempty"`
	CodeChallenge       string   `json:"code_challenge,omitempty"`
	CodeChallengeMethod string   `json:"code_challenge_method,omitempty"`
	ResponseType        string   `json:"response_type"`
	ResponseMode        string   `json:"response_mode,omitempty"`

	CreatedAt time.Time `json:"created_at"`
	ExpiresAt time.Time `json:"expires_at"`

	// Set once the browser is signed in and the request answered.
	UserID    string    `json:"user_id,omitempty"`
	SessionID string    `json:"session_id,omitempty"`
	AuthTime  time.Time `json:"auth_time,omitzero"`
	AMR       []string  `json:"amr,omitempty"`
	ACR       string    `json:"acr,omitempty"`
	Done      bool      `json:"done,omitempty"`

	// CodeHash is Hash(code) once a code is issued; CodeExpiresAt bounds
	// its use; Exchanged marks it used.
	CodeHash      []byte    `json:"code_hash,omitempty"`
	CodeExpiresAt time.Time `json:"code_expires_at,omitzero"`
	Exchanged     bool      `json:"exchanged,omitempty"`
}

// Token kinds.
const (
	KindAccess  = "access"
	KindRefresh = "refresh"
)

// A Token is an access or refresh token. Access tokens are found by ID
// (the ID travels sealed inside the token); refresh tokens by Hash of the
// value. GrantID names the authorization they descend from, through every
// rotation, so that one grant can be revoked as a whole.
type Token struct {
	ID        string    `json:"id"`
	Kind      string    `json:"kind"`
	Hash      []byte    `json:"hash,omitempty"`
	GrantID   string    `json:"grant_id"`
	ClientID  string    `json:"client_id"`
	UserID    string    `json:"user_id"`
	Scopes    []string  `json:"scopes,omitempty"`
	AMR       []string  `json:"amr,omitempty"`
	ACR       string    `json:"acr,omitempty"`
	AuthTime  time.Time `json:"auth_time,omitzero"`
	CreatedAt time.Time `json:"created_at"`
	ExpiresAt time.Time `json:"expires_at"`
}

// A SigningKey is one of the provider's ID token keys. Private is the
// sealed PKCS #8 private key. A key signs from SignFrom (zero: from the
// start) until RetiredAt (zero: not retired), and is published for
// verification from the moment it is stored until VerifyUntil. A key
// rotated in a cluster gets a SignFrom in the future, and its predecessor
// that time as RetiredAt, so every instance publishes it before any signs
// with it.
type SigningKey struct {
	ID          string    `json:"id"`
	Alg         string    `json:"alg"`
	Private     []byte    `json:"private"`
	CreatedAt   time.Time `json:"created_at"`
	SignFrom    time.Time `json:"sign_from,omitzero"`
	RetiredAt   time.Time `json:"retired_at,omitzero"`
	VerifyUntil time.Time `json:"verify_until,omitzero"`
}

// SignsAt reports whether k is the key that signs at now.
func (k *SigningKey) SignsAt(now time.Time) bool {
	return !now.Before(k.SignFrom) && (k.RetiredAt.IsZero() || now.Before(k.RetiredAt))
}

// A Consent is the scopes a user let a client have.
type Consent struct {
	UserID   string   `json:"user_id"`
	ClientID string   `json:"client_id"`
	Scopes   []string `json:"scopes"`
}

// SessionInfo is what a browser session proved when it was made: the
// methods (amr) and the time of the sign-in, kept for the life of the
// session so a signed-in browser can go straight back to a site.
type SessionInfo struct {
	SessionID string    `json:"session_id"`
	AMR       []string  `json:"amr"`
	AuthTime  time.Time `json:"auth_time"`
	ExpiresAt time.Time `json:"expires_at"`
}

// Hash is the stored form of a secret value (client secret, code, refresh
// token).
func Hash(secret string) []byte {
	h := sha256.Sum256([]byte(secret))
	return h[:]
}

// Store is what the OpenID Connect provider needs kept. Errors are
// *qrauth.Error: ENOTFOUND for a missing record, ECONFLICT for a
// duplicate, EINVALID for a malformed argument (which changes nothing).
type Store interface {
	// CreateOIDCClient adds c; ECONFLICT if its ID is taken.
	CreateOIDCClient(ctx context.Context, c *Client) error
	FindOIDCClient(ctx context.Context, id string) (*Client, error)
	// ListOIDCClients returns the clients ordered by ID.
	ListOIDCClients(ctx context.Context) ([]*Client, error)
	// DeleteOIDCClient removes the client and every token issued to it.
	DeleteOIDCClient(ctx context.Context, id string) error
	// SyncOIDCConfigClients makes the clients of Source SourceConfig be
	// exactly clients (each of that Source), in one transaction: new ones
	// are created, present ones replaced (keeping CreatedAt and their
	// tokens), and those no longer listed deleted like DeleteOIDCClient.
	// ECONFLICT, and nothing changed, if an ID belongs to a client of
	// another source.
	SyncOIDCConfigClients(ctx context.Context, clients []*Client) error

	CreateOIDCAuthRequest(ctx context.Context, r *AuthRequest) error
	FindOIDCAuthRequest(ctx context.Context, id string) (*AuthRequest, error)
	// FindOIDCAuthRequestByCode finds the request whose CodeHash is codeHash.
	FindOIDCAuthRequestByCode(ctx context.Context, codeHash []byte) (*AuthRequest, error)
	// UpdateOIDCAuthRequest applies fn to the request in one transaction;
	// an error from fn changes nothing and is returned. fn must not change
	// the ID.
	UpdateOIDCAuthRequest(ctx context.Context, id string, fn func(*AuthRequest) error) (*AuthRequest, error)
	DeleteOIDCAuthRequest(ctx context.Context, id string) error

	// CreateOIDCTokens stores tokens; a refresh token needs a Hash.
	CreateOIDCTokens(ctx context.Context, tokens ...*Token) error
	FindOIDCToken(ctx context.Context, id string) (*Token, error)
	FindOIDCRefreshToken(ctx context.Context, hash []byte) (*Token, error)
	// RotateOIDCRefreshToken deletes the refresh token old and stores
	// tokens in one transaction; ENOTFOUND (and nothing stored) if old was
	// already used: a refresh token is spent once.
	RotateOIDCRefreshToken(ctx context.Context, oldHash []byte, tokens ...*Token) error
	DeleteOIDCToken(ctx context.Context, id string) error
	// RevokeOIDCGrant deletes every token of the grant.
	RevokeOIDCGrant(ctx context.Context, grantID string) error

	// ListOIDCKeys returns the signing keys, oldest first; PutOIDCKeys
	// replaces them all.
	ListOIDCKeys(ctx context.Context) ([]*SigningKey, error)
	PutOIDCKeys(ctx context.Context, keys []*SigningKey) error
	// UpdateOIDCKeys is the compare-and-set of the key set: fn gets the
	// stored keys (oldest first) and returns the set to store, and the
	// two happen in one transaction that no other UpdateOIDCKeys or
	// PutOIDCKeys interleaves with, even one of another instance on the
	// same database. It returns the set stored. Two instances that find no
	// key at once thus make one set: the second's fn sees the first's
	// keys and keeps them. fn may run more than once (a retried
	// transaction) and must only compute; an error from fn, or a key
	// without an id or a private key, changes nothing.
	UpdateOIDCKeys(ctx context.Context, fn func(keys []*SigningKey) ([]*SigningKey, error)) ([]*SigningKey, error)

	FindOIDCConsent(ctx context.Context, userID, clientID string) (*Consent, error)
	PutOIDCConsent(ctx context.Context, c *Consent) error

	PutOIDCSessionInfo(ctx context.Context, si *SessionInfo) error
	FindOIDCSessionInfo(ctx context.Context, sessionID string) (*SessionInfo, error)

	// PurgeOIDC drops authorization requests, tokens and session records
	// whose ExpiresAt is not after now.
	PurgeOIDC(ctx context.Context, now time.Time) error
}
