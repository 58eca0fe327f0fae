package store

import (
	"bytes"
	"context"
	"time"

	"github.com/qrauth/qrauth"
	"github.com/qrauth/qrauth/oidc"
	bolt "go.etcd.io/bbolt"
)

// The OpenID Connect provider's buckets (see doc.go).
var (
	bucketOIDCClients  = []byte("oidc_clients")  // client id → oidc.Client
	bucketOIDCRequests = []byte("oidc_requests") // request id → oidc.AuthRequest
	bucketOIDCCodes    = []byte("oidc_codes")    // Hash(code) → request id
	bucketOIDCTokens   = []byte("oidc_tokens")   // token id → oidc.Token
	bucketOIDCRefresh  = []byte("oidc_refresh")  // Hash(refresh token) → token id
	bucketOIDCGrants   = []byte("oidc_grants")   // grant id "/" token id → present
	bucketOIDCKeys     = []byte("oidc_keys")     // "keys" → []oidc.SigningKey
	bucketOIDCConsents = []byte("oidc_consents") // user id "/" client id → oidc.Consent
	bucketOIDCSessions = []byte("oidc_sessions") // session id → oidc.SessionInfo
)

var _ oidc.Store = (*DB)(nil)

var keyOIDCKeys = []byte("keys")

func oidcNotFound(what string) error {
	return qrauth.Errorf(qrauth.ENOTFOUND, "oidc_"+what+"_not_found", "There is no such %s.", what)
}

func checkOIDCID(what, id string) error {
	if id == "" {
		return invalidf("empty %s id", what)
	} else if bytes.ContainsRune([]byte(id), '/') {
		return invalidf("%s id %q contains '/'", what, id)
	}
	return nil
}

func pairKey(a, b string) []byte { return []byte(a + "/" + b) }

// CreateOIDCClient implements oidc.Store.
func (db *DB) CreateOIDCClient(ctx context.Context, c *oidc.Client) error {
	if err := checkOIDCID("client", c.ID); err != nil {
		return err
	}
	return db.update(ctx, false, nil, func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketOIDCClients)
		if b.Get([]byte(c.ID)) != nil {
			return qrauth.Errorf(qrauth.ECONFLICT, "oidc_client_exists", "A client with the id %q is already registered.", c.ID)
		}
		return put(b, []byte(c.ID), c)
	})
}

// FindOIDCClient implements oidc.Store.
func (db *DB) FindOIDCClient(ctx context.Context, id string) (*oidc.Client, error) {
	var c *oidc.Client
	err := db.view(ctx, func(tx *bolt.Tx) (err error) {
		c, err = get[oidc.Client](tx.Bucket(bucketOIDCClients), []byte(id))
		return err
	})
	if err == nil && c == nil {
		err = oidcNotFound("client")
	}
	return c, err
}

// ListOIDCClients implements oidc.Store.
func (db *DB) ListOIDCClients(ctx context.Context) ([]*oidc.Client, error) {
	var out []*oidc.Client
	err := db.view(ctx, func(tx *bolt.Tx) error {
		return tx.Bucket(bucketOIDCClients).ForEach(func(k, v []byte) error {
			c, err := decode[oidc.Client](k, v)
			out = append(out, c)
			return err
		})
	})
	return out, err
}

// DeleteOIDCClient implements oidc.Store.
func (db *DB) DeleteOIDCClient(ctx context.Context, id string) error {
	return db.update(ctx, false, nil, func(tx *bolt.Tx) error {
		if tx.Bucket(bucketOIDCClients).Get([]byte(id)) == nil {
			return oidcNotFound("client")
		}
		return deleteOIDCClient(tx, id)
	})
}

// deleteOIDCClient deletes the client id and every token issued to it.
func deleteOIDCClient(tx *bolt.Tx, id string) error {
	var drop []*oidc.Token
	err := tx.Bucket(bucketOIDCTokens).ForEach(func(k, v []byte) error {
		t, err := decode[oidc.Token](k, v)
		if err == nil && t.ClientID == id {
			drop = append(drop, t)
		}
		return err
	})
	if err != nil {
		return err
	}
	for _, t := range drop {
		if err := deleteOIDCToken(tx, t); err != nil {
			return err
		}
	}
	return tx.Bucket(bucketOIDCClients).Delete([]byte(id))
}

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
	return db.update(ctx, false, nil, func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketOIDCClients)
		var gone []string
		err := b.ForEach(func(k, v []byte) error {
			c, err := decode[oidc.Client](k, v)
			if err == nil && c.Source == oidc.SourceConfig && !want[c.ID] {
				gone = append(gone, c.ID)
			}
			return err
		})
		if err != nil {
			return err
		}
		for _, id := range gone {
			if err := deleteOIDCClient(tx, id); err != nil {
				return err
			}
		}
		for _, c := range clients {
			old, err := get[oidc.Client](b, []byte(c.ID))
			if err != nil {
				return err
			}
			if old != nil && old.Source != oidc.SourceConfig {
				return qrauth.Errorf(qrauth.ECONFLICT, "oidc_client_exists",
					"The config file declares the client %q, which `qrauthd admin oidc clients add` registered: "+
						"remove it with `qrauthd admin oidc clients remove %s` or give the file's client another id.", c.ID, c.ID)
			}
			nc := *c
			if old != nil {
				nc.CreatedAt = old.CreatedAt
			}
			if err := put(b, []byte(c.ID), &nc); err != nil {
				return err
			}
		}
		return nil
	})
}

// CreateOIDCAuthRequest implements oidc.Store.
func (db *DB) CreateOIDCAuthRequest(ctx context.Context, r *oidc.AuthRequest) error {
	if err := checkOIDCID("request", r.ID); err != nil {
		return err
	}
	return db.update(ctx, true, nil, func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketOIDCRequests)
		if b.Get([]byte(r.ID)) != nil {
			return qrauth.Errorf(qrauth.ECONFLICT, "oidc_request_exists", "store: request %q exists", r.ID)
		}
		return putOIDCRequest(tx, nil, r)
	})
}

func putOIDCRequest(tx *bolt.Tx, old, r *oidc.AuthRequest) error {
	codes := tx.Bucket(bucketOIDCCodes)
	if old != nil && len(old.CodeHash) > 0 && !bytes.Equal(old.CodeHash, r.CodeHash) {
		if err := codes.Delete(old.CodeHash); err != nil {
			return err
		}
	}
	if len(r.CodeHash) > 0 {
		if id := codes.Get(r.CodeHash); id != nil && string(id) != r.ID {
			return invalidf("code hash already belongs to another request")
		}
		if err := codes.Put(r.CodeHash, []byte(r.ID)); err != nil {
			return err
		}
	}
	return put(tx.Bucket(bucketOIDCRequests), []byte(r.ID), r)
}

// FindOIDCAuthRequest implements oidc.Store.
func (db *DB) FindOIDCAuthRequest(ctx context.Context, id string) (*oidc.AuthRequest, error) {
	var r *oidc.AuthRequest
	err := db.view(ctx, func(tx *bolt.Tx) (err error) {
		r, err = get[oidc.AuthRequest](tx.Bucket(bucketOIDCRequests), []byte(id))
		return err
	})
	if err == nil && r == nil {
		err = oidcNotFound("request")
	}
	return r, err
}

// FindOIDCAuthRequestByCode implements oidc.Store.
func (db *DB) FindOIDCAuthRequestByCode(ctx context.Context, codeHash []byte) (*oidc.AuthRequest, error) {
	var r *oidc.AuthRequest
	err := db.view(ctx, func(tx *bolt.Tx) (err error) {
		if len(codeHash) == 0 {
			return nil
		}
		id := tx.Bucket(bucketOIDCCodes).Get(codeHash)
		if id == nil {
			return nil
		}
		r, err = get[oidc.AuthRequest](tx.Bucket(bucketOIDCRequests), id)
		return err
	})
	if err == nil && r == nil {
		err = oidcNotFound("code")
	}
	return r, err
}

// UpdateOIDCAuthRequest implements oidc.Store.
func (db *DB) UpdateOIDCAuthRequest(ctx context.Context, id string, fn func(*oidc.AuthRequest) error) (*oidc.AuthRequest, error) {
	var out *oidc.AuthRequest
	err := db.update(ctx, true, nil, func(tx *bolt.Tx) error {
		old, err := get[oidc.AuthRequest](tx.Bucket(bucketOIDCRequests), []byte(id))
		if err != nil {
			return err
		} else if old == nil {
			return oidcNotFound("request")
		}
		r, _ := get[oidc.AuthRequest](tx.Bucket(bucketOIDCRequests), []byte(id))
		if err := fn(r); err != nil {
			return err
		}
		if r.ID != id {
			return invalidf("request id changed")
		}
		out = r
		return putOIDCRequest(tx, old, r)
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// DeleteOIDCAuthRequest implements oidc.Store.
func (db *DB) DeleteOIDCAuthRequest(ctx context.Context, id string) error {
	return db.update(ctx, true, nil, func(tx *bolt.Tx) error {
		r, err := get[oidc.AuthRequest](tx.Bucket(bucketOIDCRequests), []byte(id))
		if err != nil {
			return err
		} else if r == nil {
			return oidcNotFound("request")
		}
		return deleteOIDCRequest(tx, r)
	})
}

func deleteOIDCRequest(tx *bolt.Tx, r *oidc.AuthRequest) error {
	if len(r.CodeHash) > 0 {
		if err := tx.Bucket(bucketOIDCCodes).Delete(r.CodeHash); err != nil {
			return err
		}
	}
	return tx.Bucket(bucketOIDCRequests).Delete([]byte(r.ID))
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

func putOIDCToken(tx *bolt.Tx, t *oidc.Token) error {
	b := tx.Bucket(bucketOIDCTokens)
	if b.Get([]byte(t.ID)) != nil {
		return qrauth.Errorf(qrauth.ECONFLICT, "oidc_token_exists", "store: token %q exists", t.ID)
	}
	if t.Kind == oidc.KindRefresh {
		if err := tx.Bucket(bucketOIDCRefresh).Put(t.Hash, []byte(t.ID)); err != nil {
			return err
		}
	}
	if err := tx.Bucket(bucketOIDCGrants).Put(pairKey(t.GrantID, t.ID), present); err != nil {
		return err
	}
	return put(b, []byte(t.ID), t)
}

func deleteOIDCToken(tx *bolt.Tx, t *oidc.Token) error {
	if t.Kind == oidc.KindRefresh {
		if err := tx.Bucket(bucketOIDCRefresh).Delete(t.Hash); err != nil {
			return err
		}
	}
	if err := tx.Bucket(bucketOIDCGrants).Delete(pairKey(t.GrantID, t.ID)); err != nil {
		return err
	}
	return tx.Bucket(bucketOIDCTokens).Delete([]byte(t.ID))
}

// CreateOIDCTokens implements oidc.Store.
func (db *DB) CreateOIDCTokens(ctx context.Context, tokens ...*oidc.Token) error {
	for _, t := range tokens {
		if err := checkOIDCToken(t); err != nil {
			return err
		}
	}
	return db.update(ctx, true, nil, func(tx *bolt.Tx) error {
		for _, t := range tokens {
			if err := putOIDCToken(tx, t); err != nil {
				return err
			}
		}
		return nil
	})
}

// FindOIDCToken implements oidc.Store.
func (db *DB) FindOIDCToken(ctx context.Context, id string) (*oidc.Token, error) {
	var t *oidc.Token
	err := db.view(ctx, func(tx *bolt.Tx) (err error) {
		t, err = get[oidc.Token](tx.Bucket(bucketOIDCTokens), []byte(id))
		return err
	})
	if err == nil && t == nil {
		err = oidcNotFound("token")
	}
	return t, err
}

// FindOIDCRefreshToken implements oidc.Store.
func (db *DB) FindOIDCRefreshToken(ctx context.Context, hash []byte) (*oidc.Token, error) {
	var t *oidc.Token
	err := db.view(ctx, func(tx *bolt.Tx) (err error) {
		if len(hash) == 0 {
			return nil
		}
		id := tx.Bucket(bucketOIDCRefresh).Get(hash)
		if id == nil {
			return nil
		}
		t, err = get[oidc.Token](tx.Bucket(bucketOIDCTokens), id)
		return err
	})
	if err == nil && t == nil {
		err = oidcNotFound("token")
	}
	return t, err
}

// RotateOIDCRefreshToken implements oidc.Store.
func (db *DB) RotateOIDCRefreshToken(ctx context.Context, oldHash []byte, tokens ...*oidc.Token) error {
	for _, t := range tokens {
		if err := checkOIDCToken(t); err != nil {
			return err
		}
	}
	return db.update(ctx, true, nil, func(tx *bolt.Tx) error {
		id := tx.Bucket(bucketOIDCRefresh).Get(oldHash)
		if len(oldHash) == 0 || id == nil {
			return oidcNotFound("token")
		}
		old, err := get[oidc.Token](tx.Bucket(bucketOIDCTokens), id)
		if err != nil {
			return err
		} else if old == nil {
			return oidcNotFound("token")
		}
		if err := deleteOIDCToken(tx, old); err != nil {
			return err
		}
		for _, t := range tokens {
			if err := putOIDCToken(tx, t); err != nil {
				return err
			}
		}
		return nil
	})
}

// DeleteOIDCToken implements oidc.Store.
func (db *DB) DeleteOIDCToken(ctx context.Context, id string) error {
	return db.update(ctx, true, nil, func(tx *bolt.Tx) error {
		t, err := get[oidc.Token](tx.Bucket(bucketOIDCTokens), []byte(id))
		if err != nil {
			return err
		} else if t == nil {
			return oidcNotFound("token")
		}
		return deleteOIDCToken(tx, t)
	})
}

// RevokeOIDCGrant implements oidc.Store.
func (db *DB) RevokeOIDCGrant(ctx context.Context, grantID string) error {
	if err := checkOIDCID("grant", grantID); err != nil {
		return err
	}
	return db.update(ctx, true, nil, func(tx *bolt.Tx) error {
		var ids [][]byte
		prefix := pairKey(grantID, "")
		c := tx.Bucket(bucketOIDCGrants).Cursor()
		for k, _ := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, _ = c.Next() {
			ids = append(ids, bytes.Clone(k[len(prefix):]))
		}
		for _, id := range ids {
			t, err := get[oidc.Token](tx.Bucket(bucketOIDCTokens), id)
			if err != nil {
				return err
			}
			if t == nil {
				if err := tx.Bucket(bucketOIDCGrants).Delete(pairKey(grantID, string(id))); err != nil {
					return err
				}
				continue
			}
			if err := deleteOIDCToken(tx, t); err != nil {
				return err
			}
		}
		return nil
	})
}

// ListOIDCKeys implements oidc.Store.
func (db *DB) ListOIDCKeys(ctx context.Context) ([]*oidc.SigningKey, error) {
	var keys []*oidc.SigningKey
	err := db.view(ctx, func(tx *bolt.Tx) error {
		p, err := get[[]*oidc.SigningKey](tx.Bucket(bucketOIDCKeys), keyOIDCKeys)
		if p != nil {
			keys = *p
		}
		return err
	})
	return keys, err
}

// PutOIDCKeys implements oidc.Store.
func (db *DB) PutOIDCKeys(ctx context.Context, keys []*oidc.SigningKey) error {
	if err := checkOIDCKeys(keys); err != nil {
		return err
	}
	return db.update(ctx, false, nil, func(tx *bolt.Tx) error {
		return put(tx.Bucket(bucketOIDCKeys), keyOIDCKeys, keys)
	})
}

// UpdateOIDCKeys implements oidc.Store: bbolt's one writable transaction
// at a time is the lock.
func (db *DB) UpdateOIDCKeys(ctx context.Context, fn func([]*oidc.SigningKey) ([]*oidc.SigningKey, error)) ([]*oidc.SigningKey, error) {
	if fn == nil {
		return nil, invalidf("nil update function")
	}
	var keys []*oidc.SigningKey
	err := db.update(ctx, false, nil, func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketOIDCKeys)
		p, err := get[[]*oidc.SigningKey](b, keyOIDCKeys)
		if err != nil {
			return err
		}
		var have []*oidc.SigningKey
		if p != nil {
			have = *p
		}
		if keys, err = fn(have); err != nil {
			return err
		} else if err := checkOIDCKeys(keys); err != nil {
			return err
		}
		return put(b, keyOIDCKeys, keys)
	})
	if err != nil {
		return nil, err
	}
	return keys, nil
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
	err := db.view(ctx, func(tx *bolt.Tx) (err error) {
		c, err = get[oidc.Consent](tx.Bucket(bucketOIDCConsents), pairKey(userID, clientID))
		return err
	})
	if err == nil && c == nil {
		err = oidcNotFound("consent")
	}
	return c, err
}

// PutOIDCConsent implements oidc.Store.
func (db *DB) PutOIDCConsent(ctx context.Context, c *oidc.Consent) error {
	if err := checkOIDCID("user", c.UserID); err != nil {
		return err
	}
	if err := checkOIDCID("client", c.ClientID); err != nil {
		return err
	}
	return db.update(ctx, true, nil, func(tx *bolt.Tx) error {
		return put(tx.Bucket(bucketOIDCConsents), pairKey(c.UserID, c.ClientID), c)
	})
}

// PutOIDCSessionInfo implements oidc.Store.
func (db *DB) PutOIDCSessionInfo(ctx context.Context, si *oidc.SessionInfo) error {
	if si.SessionID == "" {
		return invalidf("empty session id")
	}
	return db.update(ctx, true, nil, func(tx *bolt.Tx) error {
		return put(tx.Bucket(bucketOIDCSessions), []byte(si.SessionID), si)
	})
}

// FindOIDCSessionInfo implements oidc.Store.
func (db *DB) FindOIDCSessionInfo(ctx context.Context, sessionID string) (*oidc.SessionInfo, error) {
	var si *oidc.SessionInfo
	err := db.view(ctx, func(tx *bolt.Tx) (err error) {
		si, err = get[oidc.SessionInfo](tx.Bucket(bucketOIDCSessions), []byte(sessionID))
		return err
	})
	if err == nil && si == nil {
		err = oidcNotFound("session")
	}
	return si, err
}

// PurgeOIDC implements oidc.Store.
func (db *DB) PurgeOIDC(ctx context.Context, now time.Time) error {
	return db.update(ctx, false, nil, func(tx *bolt.Tx) error {
		var reqs []*oidc.AuthRequest
		var toks []*oidc.Token
		var sess [][]byte
		err := tx.Bucket(bucketOIDCRequests).ForEach(func(k, v []byte) error {
			r, err := decode[oidc.AuthRequest](k, v)
			if err == nil && !r.ExpiresAt.After(now) {
				reqs = append(reqs, r)
			}
			return err
		})
		if err != nil {
			return err
		}
		err = tx.Bucket(bucketOIDCTokens).ForEach(func(k, v []byte) error {
			t, err := decode[oidc.Token](k, v)
			if err == nil && !t.ExpiresAt.After(now) {
				toks = append(toks, t)
			}
			return err
		})
		if err != nil {
			return err
		}
		err = tx.Bucket(bucketOIDCSessions).ForEach(func(k, v []byte) error {
			s, err := decode[oidc.SessionInfo](k, v)
			if err == nil && !s.ExpiresAt.After(now) {
				sess = append(sess, bytes.Clone(k))
			}
			return err
		})
		if err != nil {
			return err
		}
		for _, r := range reqs {
			if err := deleteOIDCRequest(tx, r); err != nil {
				return err
			}
		}
		for _, t := range toks {
			if err := deleteOIDCToken(tx, t); err != nil {
				return err
			}
		}
		for _, k := range sess {
			if err := tx.Bucket(bucketOIDCSessions).Delete(k); err != nil {
				return err
			}
		}
		return nil
	})
}

// deleteOIDCOfUser deletes the tokens and authorization requests of user
// id, and with consents also the consents the user gave (DeleteUser keeps
// nothing; DisableUser keeps the consents for when the account is enabled
// again).
func deleteOIDCOfUser(tx *bolt.Tx, id qrauth.UserID, consents bool) error {
	reqs, err := collect(tx.Bucket(bucketOIDCRequests), func(r *oidc.AuthRequest) bool { return r.UserID == string(id) })
	if err != nil {
		return err
	}
	for _, r := range reqs {
		if err := deleteOIDCRequest(tx, r); err != nil {
			return err
		}
	}
	toks, err := collect(tx.Bucket(bucketOIDCTokens), func(t *oidc.Token) bool { return t.UserID == string(id) })
	if err != nil {
		return err
	}
	for _, t := range toks {
		if err := deleteOIDCToken(tx, t); err != nil {
			return err
		}
	}
	if !consents {
		return nil
	}
	return deletePrefix(tx.Bucket(bucketOIDCConsents), userPrefix(id))
}
