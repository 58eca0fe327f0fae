package postgres

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/qrauth/qrauth"
	"github.com/qrauth/qrauth/oidc"
	"github.com/qrauth/qrauth/store"
)

// ImportReport counts what Import copied, by bbolt bucket.
type ImportReport map[string]int

// Import copies every record of a bbolt store into this database, which
// must be empty (no user, no secret), in one transaction: a failed import
// leaves nothing behind. The JSON documents go over unchanged (both stores
// keep the same encoding); the columns beside them are worked out from the
// documents. Audit events keep their Seq, and the counter continues after
// the last.
func (db *DB) Import(ctx context.Context, src *store.DB) (ImportReport, error) {
	rep := ImportReport{}
	err := pgx.BeginFunc(ctx, db.pool, func(tx pgx.Tx) error {
		var n int
		if err := tx.QueryRow(ctx, "SELECT (SELECT count(*) FROM users) + (SELECT count(*) FROM secrets)").Scan(&n); err != nil {
			return err
		} else if n > 0 {
			return fmt.Errorf("the PostgreSQL database is not empty (%d users and secrets): import into a new database", n)
		}
		var maxSeq uint64
		err := src.Export(ctx, func(r store.Record) error {
			if err := importRecord(ctx, tx, r, &maxSeq); err != nil {
				return fmt.Errorf("%s %q: %w", r.Bucket, r.Key, err)
			}
			rep[r.Bucket]++
			return nil
		})
		if err != nil {
			return err
		}
		_, err = tx.Exec(ctx, "UPDATE counters SET n = $1 WHERE name = 'audit'", int64(maxSeq))
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("import: %w", err)
	}
	return rep, nil
}

// fields decodes the few fields of a document that become columns.
type fields struct {
	ID        string    `json:"id"`
	UserID    string    `json:"user_id"`
	DeviceID  string    `json:"device_id"`
	Method    string    `json:"method"`
	TokenHash []byte    `json:"token_hash"`
	CodeHash  []byte    `json:"code_hash"`
	Hash      []byte    `json:"hash"`
	Kind      string    `json:"kind"`
	GrantID   string    `json:"grant_id"`
	ClientID  string    `json:"client_id"`
	SessionID string    `json:"session_id"`
	CreatedAt time.Time `json:"created_at"`
	ExpiresAt time.Time `json:"expires_at"`
}

func importRecord(ctx context.Context, tx pgx.Tx, r store.Record, maxSeq *uint64) error {
	var f fields
	if json.Valid(r.Value) && bytes.HasPrefix(bytes.TrimSpace(r.Value), []byte("{")) {
		if err := json.Unmarshal(r.Value, &f); err != nil {
			return err
		}
	}
	exec := func(sql string, args ...any) error {
		_, err := tx.Exec(ctx, sql, args...)
		return err
	}
	doc := r.Value
	switch r.Bucket {
	case "secrets":
		return exec("INSERT INTO secrets (name, value) VALUES ($1, $2)", string(r.Key), r.Value)
	case "users":
		return exec("INSERT INTO users (id, doc) VALUES ($1, $2)", string(r.Key), doc)
	case "users_by_phone":
		return exec("INSERT INTO phone_hashes (phone_id_hash, user_id) VALUES ($1, $2)", string(r.Key), string(r.Value))
	case "devices":
		return exec("INSERT INTO devices (id, user_id, created_at, doc) VALUES ($1, $2, $3, $4)", string(r.Key), f.UserID, f.CreatedAt, doc)
	case "sessions":
		return exec("INSERT INTO sessions (id, user_id, token_hash, created_at, expires_at, doc) VALUES ($1, $2, $3, $4, $5, $6)",
			string(r.Key), f.UserID, f.TokenHash, f.CreatedAt, f.ExpiresAt, doc)
	case "addresses":
		user, ip, ok := strings.Cut(string(r.Key), "/")
		if !ok {
			return fmt.Errorf("malformed address key")
		}
		return exec("INSERT INTO known_addresses (user_id, ip) VALUES ($1, $2)", user, ip)
	case "audit":
		if len(r.Key) != 8 {
			return fmt.Errorf("malformed audit key")
		}
		seq := binary.BigEndian.Uint64(r.Key)
		*maxSeq = max(*maxSeq, seq)
		var e qrauth.AuditEvent
		if err := json.Unmarshal(r.Value, &e); err != nil {
			return err
		}
		e.Seq = seq // older records may not carry it in the document
		b, err := json.Marshal(&e)
		if err != nil {
			return err
		}
		var uid *string
		if e.UserID != "" {
			s := string(e.UserID)
			uid = &s
		}
		return exec("INSERT INTO audit (seq, user_id, doc) VALUES ($1, $2, $3)", int64(seq), uid, b)
	case "oath_accounts":
		return exec("INSERT INTO oath_accounts (user_id, doc) VALUES ($1, $2)", string(r.Key), doc)
	case "passwords":
		return exec("INSERT INTO passwords (user_id, doc) VALUES ($1, $2)", string(r.Key), doc)
	case "badges":
		return exec("INSERT INTO badges (id, user_id, created_at, doc) VALUES ($1, $2, $3, $4)", string(r.Key), f.UserID, f.CreatedAt, doc)
	case "offline_credentials":
		return exec("INSERT INTO offline_credentials (device_id, method, user_id, doc) VALUES ($1, $2, $3, $4)", f.DeviceID, f.Method, f.UserID, doc)
	case "offline_sessions":
		return exec("INSERT INTO offline_sessions (id, user_id, expires_at, doc) VALUES ($1, $2, $3, $4)", string(r.Key), f.UserID, f.ExpiresAt, doc)
	case "approvals":
		return exec("INSERT INTO approvals (id, user_id, token_hash, expires_at, doc) VALUES ($1, $2, $3, $4, $5)",
			string(r.Key), f.UserID, f.TokenHash, f.ExpiresAt, doc)
	case "recovery_codes":
		var c recoveryCode
		if err := json.Unmarshal(r.Value, &c); err != nil {
			return err
		}
		var exp *time.Time
		if !c.ExpiresAt.IsZero() {
			exp = &c.ExpiresAt
		}
		return exec("INSERT INTO recovery_codes (hash, user_id, kind, expires_at, doc) VALUES ($1, $2, $3, $4, $5)",
			r.Key, string(c.UserID), c.Kind, exp, doc)
	case "recovery_state":
		return exec("INSERT INTO recovery_state (user_id, doc) VALUES ($1, $2)", string(r.Key), doc)
	case "oidc_clients":
		return exec("INSERT INTO oidc_clients (id, doc) VALUES ($1, $2)", string(r.Key), doc)
	case "oidc_requests":
		var code []byte
		if len(f.CodeHash) > 0 {
			code = f.CodeHash
		}
		return exec("INSERT INTO oidc_requests (id, code_hash, expires_at, doc) VALUES ($1, $2, $3, $4)", string(r.Key), code, f.ExpiresAt, doc)
	case "oidc_tokens":
		var refresh []byte
		if f.Kind == oidc.KindRefresh {
			refresh = f.Hash
		}
		return exec("INSERT INTO oidc_tokens (id, refresh_hash, grant_id, client_id, expires_at, doc) VALUES ($1, $2, $3, $4, $5, $6)",
			string(r.Key), refresh, f.GrantID, f.ClientID, f.ExpiresAt, doc)
	case "oidc_keys":
		return exec("INSERT INTO oidc_keys (name, doc) VALUES ($1, $2)", string(r.Key), doc)
	case "oidc_consents":
		return exec("INSERT INTO oidc_consents (user_id, client_id, doc) VALUES ($1, $2, $3)", f.UserID, f.ClientID, doc)
	case "oidc_sessions":
		return exec("INSERT INTO oidc_sessions (session_id, expires_at, doc) VALUES ($1, $2, $3)", string(r.Key), f.ExpiresAt, doc)
	}
	return fmt.Errorf("no table for bucket %s", r.Bucket)
}
