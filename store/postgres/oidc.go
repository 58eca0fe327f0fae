package postgres

import (
	"context"
	"errors"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/qrauth/qrauth"
	"github.com/qrauth/qrauth/oidc"
)

var _ oidc.Store = (*DB)(nil)

func oidcNotFound(what string) error {
	return qrauth.Errorf(qrauth.ENOTFOUND, "oidc_"+what+"_not_found", "There is no such %s.", what)
}

func checkOIDCID(what, id string) error {
	if id == "" {
		return invalidf("empty %s id", what)
	} else if strings.Contains(id, "/") {
		return invalidf("%s id %q contains '/'", what, id)
	}
	return nil
}

// CreateOIDCClient implements oidc.Store.
func (db *DB) CreateOIDCClient(ctx context.Context, c *oidc.Client) error {
	if err := checkOIDCID("client", c.ID); err != nil {
		return err
	}
	err := db.update(ctx, nil, func(tx pgx.Tx) error {
		doc, err := marshal(c)
		if err != nil {
			return err
		}
		_, err = tx.Exec(ctx, "INSERT INTO oidc_clients (id, doc) VALUES ($1, $2)", c.ID, doc)
		return err
	})
	if uniqueViolation(err) == "oidc_clients_pkey" {
		return qrauth.Errorf(qrauth.ECONFLICT, "oidc_client_exists", "A client with the id %q is already registered.", c.ID)
	}
	return err
}

// findOne reads one doc; nf names what is missing.
func findOne[T any](ctx context.Context, db *DB, what, sql string, arg any) (*T, error) {
	var v *T
	err := db.view(ctx, func(q querier) (err error) {
		v, err = scanDoc[T](q.QueryRow(ctx, sql, arg))
		return notFound(err, func() error { return oidcNotFound(what) })
	})
	if err != nil {
		return nil, err
	}
	return v, nil
}

// FindOIDCClient implements oidc.Store.
func (db *DB) FindOIDCClient(ctx context.Context, id string) (*oidc.Client, error) {
	return findOne[oidc.Client](ctx, db, "client", "SELECT doc FROM oidc_clients WHERE id = $1", id)
}

// ListOIDCClients implements oidc.Store, by id.
func (db *DB) ListOIDCClients(ctx context.Context) ([]*oidc.Client, error) {
	var out []*oidc.Client
	err := db.view(ctx, func(q querier) (err error) {
		out, err = scanDocs[oidc.Client](q.Query(ctx, "SELECT doc FROM oidc_clients ORDER BY id"))
		return err
	})
	if err != nil || len(out) == 0 {
		return nil, err
	}
	return out, nil
}

// DeleteOIDCClient implements oidc.Store, with every token issued to it.
func (db *DB) DeleteOIDCClient(ctx context.Context, id string) error {
	return db.update(ctx, nil, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, "DELETE FROM oidc_clients WHERE id = $1", id)
		if err != nil {
			return err
		} else if tag.RowsAffected() == 0 {
			return oidcNotFound("client")
		}
		_, err = tx.Exec(ctx, "DELETE FROM oidc_tokens WHERE client_id = $1", id)
		return err
	})
}

func requestCodeHash(r *oidc.AuthRequest) []byte {
	if len(r.CodeHash) == 0 {
		return nil
	}
	return r.CodeHash
}

// CreateOIDCAuthRequest implements oidc.Store.
func (db *DB) CreateOIDCAuthRequest(ctx context.Context, r *oidc.AuthRequest) error {
	if err := checkOIDCID("request", r.ID); err != nil {
		return err
	}
	err := db.update(ctx, nil, func(tx pgx.Tx) error {
		doc, err := marshal(r)
		if err != nil {
			return err
		}
		_, err = tx.Exec(ctx, "INSERT INTO oidc_requests (id, code_hash, expires_at, doc) VALUES ($1, $2, $3, $4)",
			r.ID, requestCodeHash(r), r.ExpiresAt, doc)
		return err
	})
	switch uniqueViolation(err) {
	case "oidc_requests_pkey":
		return qrauth.Errorf(qrauth.ECONFLICT, "oidc_request_exists", "store: request %q exists", r.ID)
	case "oidc_requests_code_hash_key":
		return invalidf("code hash already belongs to another request")
	}
	return err
}

// FindOIDCAuthRequest implements oidc.Store.
func (db *DB) FindOIDCAuthRequest(ctx context.Context, id string) (*oidc.AuthRequest, error) {
	return findOne[oidc.AuthRequest](ctx, db, "request", "SELECT doc FROM oidc_requests WHERE id = $1", id)
}

// FindOIDCAuthRequestByCode implements oidc.Store.
func (db *DB) FindOIDCAuthRequestByCode(ctx context.Context, codeHash []byte) (*oidc.AuthRequest, error) {
	if len(codeHash) == 0 {
		if err := ctxError(ctx); err != nil {
			return nil, err
		}
		return nil, oidcNotFound("code")
	}
	return findOne[oidc.AuthRequest](ctx, db, "code", "SELECT doc FROM oidc_requests WHERE code_hash = $1", codeHash)
}

// UpdateOIDCAuthRequest implements oidc.Store: fn runs under the row lock,
// so two token requests racing with one code see one another's change.
func (db *DB) UpdateOIDCAuthRequest(ctx context.Context, id string, fn func(*oidc.AuthRequest) error) (*oidc.AuthRequest, error) {
	var out *oidc.AuthRequest
	err := db.update(ctx, nil, func(tx pgx.Tx) error {
		r, err := lockDoc[oidc.AuthRequest](ctx, tx, "SELECT doc FROM oidc_requests WHERE id = $1 FOR UPDATE", id)
		if err != nil {
			return err
		} else if r == nil {
			return oidcNotFound("request")
		}
		if err := fn(r); err != nil {
			return err
		}
		if r.ID != id {
			return invalidf("request id changed")
		}
		doc, err := marshal(r)
		if err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, "UPDATE oidc_requests SET code_hash = $2, expires_at = $3, doc = $4 WHERE id = $1",
			id, requestCodeHash(r), r.ExpiresAt, doc); err != nil {
			if uniqueViolation(err) == "oidc_requests_code_hash_key" {
				return invalidf("code hash already belongs to another request")
			}
			return err
		}
		out = r
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// DeleteOIDCAuthRequest implements oidc.Store.
func (db *DB) DeleteOIDCAuthRequest(ctx context.Context, id string) error {
	return db.deleteOne(ctx, "request", "DELETE FROM oidc_requests WHERE id = $1", id)
}

func (db *DB) deleteOne(ctx context.Context, what, sql string, arg any) error {
	return db.update(ctx, nil, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, sql, arg)
		if err != nil {
			return err
		} else if tag.RowsAffected() == 0 {
			return oidcNotFound(what)
		}
		return nil
	})
}

func checkOIDCToken(t *oidc.Token) error {
	if err := checkOIDCID("token", t.ID); err != nil {
		return err
	}
	if err := checkOIDCID("grant", t.GrantID); err != nil {
		return err
	}
	switch {
	case t.Kind == oidc.KindRefresh && len(t.Hash) == 0:
		return invalidf("refresh token %q without a hash", t.ID)
	case t.Kind != oidc.KindRefresh && t.Kind != oidc.KindAccess:
		return invalidf("token kind %q", t.Kind)
	}
	return nil
}

func insertTokens(ctx context.Context, tx pgx.Tx, tokens []*oidc.Token) error {
	for _, t := range tokens {
		var refresh []byte
		if t.Kind == oidc.KindRefresh {
			refresh = t.Hash
		}
		doc, err := marshal(t)
		if err != nil {
			return err
		}
		_, err = tx.Exec(ctx, `INSERT INTO oidc_tokens (id, refresh_hash, grant_id, client_id, expires_at, doc)
			VALUES ($1, $2, $3, $4, $5, $6)`, t.ID, refresh, t.GrantID, t.ClientID, t.ExpiresAt, doc)
		if uniqueViolation(err) == "oidc_tokens_pkey" {
			return qrauth.Errorf(qrauth.ECONFLICT, "oidc_token_exists", "store: token %q exists", t.ID)
		} else if err != nil {
			return err
		}
	}
	return nil
}

// CreateOIDCTokens implements oidc.Store.
func (db *DB) CreateOIDCTokens(ctx context.Context, tokens ...*oidc.Token) error {
	for _, t := range tokens {
		if err := checkOIDCToken(t); err != nil {
			return err
		}
	}
	return db.update(ctx, nil, func(tx pgx.Tx) error { return insertTokens(ctx, tx, tokens) })
}

// FindOIDCToken implements oidc.Store.
func (db *DB) FindOIDCToken(ctx context.Context, id string) (*oidc.Token, error) {
	return findOne[oidc.Token](ctx, db, "token", "SELECT doc FROM oidc_tokens WHERE id = $1", id)
}

// FindOIDCRefreshToken implements oidc.Store.
func (db *DB) FindOIDCRefreshToken(ctx context.Context, hash []byte) (*oidc.Token, error) {
	if len(hash) == 0 {
		if err := ctxError(ctx); err != nil {
			return nil, err
		}
		return nil, oidcNotFound("token")
	}
	return findOne[oidc.Token](ctx, db, "token", "SELECT doc FROM oidc_tokens WHERE refresh_hash = $1", hash)
}

// RotateOIDCRefreshToken implements oidc.Store: the DELETE is the
// spend-once; of two rotations racing with one token, one deletes the row
// and the other deletes nothing and fails.
func (db *DB) RotateOIDCRefreshToken(ctx context.Context, oldHash []byte, tokens ...*oidc.Token) error {
	for _, t := range tokens {
		if err := checkOIDCToken(t); err != nil {
			return err
		}
	}
	return db.update(ctx, nil, func(tx pgx.Tx) error {
		if len(oldHash) == 0 {
			return oidcNotFound("token")
		}
		tag, err := tx.Exec(ctx, "DELETE FROM oidc_tokens WHERE refresh_hash = $1", oldHash)
		if err != nil {
			return err
		} else if tag.RowsAffected() == 0 {
			return oidcNotFound("token")
		}
		return insertTokens(ctx, tx, tokens)
	})
}

// DeleteOIDCToken implements oidc.Store.
func (db *DB) DeleteOIDCToken(ctx context.Context, id string) error {
	return db.deleteOne(ctx, "token", "DELETE FROM oidc_tokens WHERE id = $1", id)
}

// RevokeOIDCGrant implements oidc.Store.
func (db *DB) RevokeOIDCGrant(ctx context.Context, grantID string) error {
	if err := checkOIDCID("grant", grantID); err != nil {
		return err
	}
	return db.update(ctx, nil, func(tx pgx.Tx) error {
		_, err := tx.Exec(ctx, "DELETE FROM oidc_tokens WHERE grant_id = $1", grantID)
		return err
	})
}

// ListOIDCKeys implements oidc.Store.
func (db *DB) ListOIDCKeys(ctx context.Context) ([]*oidc.SigningKey, error) {
	var keys []*oidc.SigningKey
	err := db.view(ctx, func(q querier) error {
		p, err := scanDoc[[]*oidc.SigningKey](q.QueryRow(ctx, "SELECT doc FROM oidc_keys WHERE name = 'keys'"))
		if errors.Is(err, pgx.ErrNoRows) {
			return nil
		} else if err != nil {
			return err
		}
		keys = *p
		return nil
	})
	return keys, err
}

// PutOIDCKeys implements oidc.Store.
func (db *DB) PutOIDCKeys(ctx context.Context, keys []*oidc.SigningKey) error {
	if err := checkOIDCKeys(keys); err != nil {
		return err
	}
	return db.update(ctx, nil, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, "SELECT pg_advisory_xact_lock($1)", int64(oidcKeysLock)); err != nil {
			return err
		}
		return putOIDCKeys(ctx, tx, keys)
	})
}

// oidcKeysLock serializes the changes of the signing keys between
// instances: two that start at once on an empty database would otherwise
// both find no key and each store its own. A transaction advisory lock
// rather than SELECT … FOR UPDATE, as the row does not exist before the
// first key is made.
const oidcKeysLock = migrationLock + 2

// UpdateOIDCKeys implements oidc.Store: read, fn and write under
// oidcKeysLock, in one transaction.
func (db *DB) UpdateOIDCKeys(ctx context.Context, fn func([]*oidc.SigningKey) ([]*oidc.SigningKey, error)) ([]*oidc.SigningKey, error) {
	if fn == nil {
		return nil, invalidf("nil update function")
	}
	var keys []*oidc.SigningKey
	err := db.update(ctx, nil, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, "SELECT pg_advisory_xact_lock($1)", int64(oidcKeysLock)); err != nil {
			return err
		}
		var have []*oidc.SigningKey
		p, err := scanDoc[[]*oidc.SigningKey](tx.QueryRow(ctx, "SELECT doc FROM oidc_keys WHERE name = 'keys'"))
		if err == nil {
			have = *p
		} else if !errors.Is(err, pgx.ErrNoRows) {
			return err
		}
		if keys, err = fn(have); err != nil {
			return err
		} else if err := checkOIDCKeys(keys); err != nil {
			return err
		}
		return putOIDCKeys(ctx, tx, keys)
	})
	if err != nil {
		return nil, err
	}
	return keys, nil
}

func putOIDCKeys(ctx context.Context, tx pgx.Tx, keys []*oidc.SigningKey) error {
	doc, err := marshal(keys)
	if err != nil {
		return err
	}
	_, err = tx.Exec(ctx, `INSERT INTO oidc_keys (name, doc) VALUES ('keys', $1)
		ON CONFLICT (name) DO UPDATE SET doc = excluded.doc`, doc)
	return err
}

func checkOIDCKeys(keys []*oidc.SigningKey) error {
	for _, k := range keys {
		if k == nil || k.ID == "" || len(k.Private) == 0 {
			return invalidf("signing key without id or private key")
		}
	}
	return nil
}

// FindOIDCConsent implements oidc.Store.
func (db *DB) FindOIDCConsent(ctx context.Context, userID, clientID string) (*oidc.Consent, error) {
	var c *oidc.Consent
	err := db.view(ctx, func(q querier) (err error) {
		c, err = scanDoc[oidc.Consent](q.QueryRow(ctx, "SELECT doc FROM oidc_consents WHERE user_id = $1 AND client_id = $2", userID, clientID))
		return notFound(err, func() error { return oidcNotFound("consent") })
	})
	if err != nil {
		return nil, err
	}
	return c, nil
}

// PutOIDCConsent implements oidc.Store.
func (db *DB) PutOIDCConsent(ctx context.Context, c *oidc.Consent) error {
	if err := checkOIDCID("user", c.UserID); err != nil {
		return err
	}
	if err := checkOIDCID("client", c.ClientID); err != nil {
		return err
	}
	return db.update(ctx, nil, func(tx pgx.Tx) error {
		doc, err := marshal(c)
		if err != nil {
			return err
		}
		_, err = tx.Exec(ctx, `INSERT INTO oidc_consents (user_id, client_id, doc) VALUES ($1, $2, $3)
			ON CONFLICT (user_id, client_id) DO UPDATE SET doc = excluded.doc`, c.UserID, c.ClientID, doc)
		return err
	})
}

// PutOIDCSessionInfo implements oidc.Store.
func (db *DB) PutOIDCSessionInfo(ctx context.Context, si *oidc.SessionInfo) error {
	if si.SessionID == "" {
		return invalidf("empty session id")
	}
	return db.update(ctx, nil, func(tx pgx.Tx) error {
		doc, err := marshal(si)
		if err != nil {
			return err
		}
		_, err = tx.Exec(ctx, `INSERT INTO oidc_sessions (session_id, expires_at, doc) VALUES ($1, $2, $3)
			ON CONFLICT (session_id) DO UPDATE SET expires_at = excluded.expires_at, doc = excluded.doc`, si.SessionID, si.ExpiresAt, doc)
		return err
	})
}

// FindOIDCSessionInfo implements oidc.Store.
func (db *DB) FindOIDCSessionInfo(ctx context.Context, sessionID string) (*oidc.SessionInfo, error) {
	return findOne[oidc.SessionInfo](ctx, db, "session", "SELECT doc FROM oidc_sessions WHERE session_id = $1", sessionID)
}

// PurgeOIDC implements oidc.Store.
func (db *DB) PurgeOIDC(ctx context.Context, now time.Time) error {
	return db.update(ctx, nil, func(tx pgx.Tx) error {
		for _, table := range []string{"oidc_requests", "oidc_tokens", "oidc_sessions"} {
			if _, err := tx.Exec(ctx, "DELETE FROM "+table+" WHERE expires_at <= $1", now); err != nil {
				return err
			}
		}
		return nil
	})
}

// syncClientsLock serializes SyncOIDCConfigClients between instances that
// start at once with the same file.
const syncClientsLock = migrationLock + 1

// SyncOIDCConfigClients implements oidc.Store.
func (db *DB) SyncOIDCConfigClients(ctx context.Context, clients []*oidc.Client) error {
	want := map[string]bool{}
	for _, c := range clients {
		if err := checkOIDCID("client", c.ID); err != nil {
			return err
		} else if c.Source != oidc.SourceConfig {
			return invalidf("client %q is not marked as from the config file", c.ID)
		} else if want[c.ID] {
			return invalidf("client %q is listed twice", c.ID)
		}
		want[c.ID] = true
	}
	return db.update(ctx, nil, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, "SELECT pg_advisory_xact_lock($1)", int64(syncClientsLock)); err != nil {
			return err
		}
		have, err := scanDocs[oidc.Client](tx.Query(ctx, "SELECT doc FROM oidc_clients FOR UPDATE"))
		if err != nil {
			return err
		}
		old := map[string]*oidc.Client{}
		for _, c := range have {
			old[c.ID] = c
			if c.Source == oidc.SourceConfig && !want[c.ID] {
				if _, err := tx.Exec(ctx, "DELETE FROM oidc_clients WHERE id = $1", c.ID); err != nil {
					return err
				} else if _, err := tx.Exec(ctx, "DELETE FROM oidc_tokens WHERE client_id = $1", c.ID); err != nil {
					return err
				}
			}
		}
		for _, c := range clients {
			o := old[c.ID]
			if o != nil && o.Source != oidc.SourceConfig {
				return qrauth.Errorf(qrauth.ECONFLICT, "oidc_client_exists",
					"The config file declares the client %q, which `qrauthd admin oidc clients add` registered: "+
						"remove it with `qrauthd admin oidc clients remove %s` or give the file's client another id.", c.ID, c.ID)
			}
			nc := *c
			if o != nil {
				nc.CreatedAt = o.CreatedAt
			}
			doc, err := marshal(&nc)
			if err != nil {
				return err
			}
			if _, err := tx.Exec(ctx, `INSERT INTO oidc_clients (id, doc) VALUES ($1, $2)
				ON CONFLICT (id) DO UPDATE SET doc = excluded.doc`, nc.ID, doc); err != nil {
				return err
			}
		}
		return nil
	})
}
