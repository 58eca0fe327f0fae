package postgres

import (
	"context"

	"github.com/jackc/pgx/v5"
	"github.com/qrauth/qrauth"
)

// endSessions deletes the sessions of user id (all, or those device
// approved) with what OpenID Connect kept of them, and returns how many.
func endSessions(ctx context.Context, tx pgx.Tx, id qrauth.UserID, device qrauth.DeviceID) (int, error) {
	sql := "DELETE FROM sessions WHERE user_id = $1 RETURNING id"
	args := []any{string(id)}
	if device != "" {
		sql = "DELETE FROM sessions WHERE user_id = $1 AND doc->>'device_id' = $2 RETURNING id"
		args = append(args, string(device))
	}
	rows, err := tx.Query(ctx, sql, args...)
	if err != nil {
		return 0, err
	}
	ids, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return 0, err
	}
	if len(ids) > 0 {
		if _, err := tx.Exec(ctx, "DELETE FROM oidc_sessions WHERE session_id = ANY($1)", ids); err != nil {
			return 0, err
		}
	}
	return len(ids), nil
}

// deleteOIDCOfUser drops a relying site's requests and tokens of the user,
// and with consents their consents too.
func deleteOIDCOfUser(ctx context.Context, tx pgx.Tx, id qrauth.UserID, consents bool) error {
	if _, err := tx.Exec(ctx, "DELETE FROM oidc_requests WHERE doc->>'user_id' = $1", string(id)); err != nil {
		return err
	}
	if _, err := tx.Exec(ctx, "DELETE FROM oidc_tokens WHERE doc->>'user_id' = $1", string(id)); err != nil {
		return err
	}
	if consents {
		_, err := tx.Exec(ctx, "DELETE FROM oidc_consents WHERE user_id = $1", string(id))
		return err
	}
	return nil
}

// DisableUser implements qrauth.Store.
func (db *DB) DisableUser(ctx context.Context, id qrauth.UserID, d qrauth.Disabled, events ...*qrauth.AuditEvent) (*qrauth.User, int, error) {
	var ended int
	u, err := db.modifyUserTx(ctx, id, events, func(tx pgx.Tx, u *qrauth.User) (err error) {
		dis := d
		u.Disabled = &dis
		if ended, err = endSessions(ctx, tx, id, ""); err != nil {
			return err
		}
		// A relying site's tokens and unexchanged codes would outlive the
		// sessions they came from.
		return deleteOIDCOfUser(ctx, tx, id, false)
	})
	if err != nil {
		return nil, 0, err
	}
	return u, ended, nil
}

// EnableUser implements qrauth.Store.
func (db *DB) EnableUser(ctx context.Context, id qrauth.UserID, events ...*qrauth.AuditEvent) (*qrauth.User, error) {
	return db.modifyUser(ctx, id, events, func(u *qrauth.User) { u.Disabled = nil })
}

// RemoveDevice implements qrauth.Store.
func (db *DB) RemoveDevice(ctx context.Context, id qrauth.DeviceID, events ...*qrauth.AuditEvent) (int, error) {
	if id == "" {
		return 0, errDeviceNotFound()
	}
	var ended int
	err := db.update(ctx, events, func(tx pgx.Tx) error {
		var owner string
		err := tx.QueryRow(ctx, "DELETE FROM devices WHERE id = $1 RETURNING user_id", string(id)).Scan(&owner)
		if err != nil {
			return notFound(err, errDeviceNotFound)
		}
		ended, err = endSessions(ctx, tx, qrauth.UserID(owner), id)
		return err
	})
	if err != nil {
		return 0, err
	}
	return ended, nil
}

// DeleteUser implements qrauth.Store. The tables of every flow reference
// users ON DELETE CASCADE, so deleting the user row takes its devices,
// phone hashes, sessions, addresses, offline records, OATH, passwords,
// badges and recovery codes with it in the same transaction; what names
// the user without a foreign key (OpenID Connect records, the audit log)
// is handled here.
func (db *DB) DeleteUser(ctx context.Context, id qrauth.UserID, events ...*qrauth.AuditEvent) error {
	if err := checkUserID(id); err != nil {
		return err
	}
	return db.update(ctx, events, func(tx pgx.Tx) error {
		var one int
		if err := tx.QueryRow(ctx, "SELECT 1 FROM users WHERE id = $1 FOR UPDATE", string(id)).Scan(&one); err != nil {
			return notFound(err, errUserNotFound)
		}
		if _, err := endSessions(ctx, tx, id, ""); err != nil {
			return err
		}
		if err := deleteOIDCOfUser(ctx, tx, id, true); err != nil {
			return err
		}
		// The events stay in their place in the sequence but keep only
		// time, type and actor.
		if _, err := tx.Exec(ctx, `UPDATE audit SET user_id = NULL,
			doc = jsonb_strip_nulls(jsonb_build_object('seq', doc->'seq', 'time', doc->'time', 'type', doc->'type', 'actor', doc->'actor'))
			WHERE user_id = $1`, string(id)); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, "DELETE FROM users WHERE id = $1", string(id))
		return err
	})
}
