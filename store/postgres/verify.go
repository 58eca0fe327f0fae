package postgres

import (
	"context"
	"fmt"
	"reflect"

	"github.com/qrauth/qrauth"
	"github.com/qrauth/qrauth/store"
)

// importTables maps each exported bbolt bucket to the table Import fills
// from it, for Verify's counts.
var importTables = map[string]string{
	"secrets": "secrets", "users": "users", "users_by_phone": "phone_hashes", "devices": "devices",
	"sessions": "sessions", "addresses": "known_addresses", "audit": "audit",
	"oath_accounts": "oath_accounts", "passwords": "passwords", "badges": "badges",
	"offline_credentials": "offline_credentials", "offline_sessions": "offline_sessions", "approvals": "approvals",
	"recovery_codes": "recovery_codes", "recovery_state": "recovery_state",
	"oidc_clients": "oidc_clients", "oidc_requests": "oidc_requests", "oidc_tokens": "oidc_tokens",
	"oidc_keys": "oidc_keys", "oidc_consents": "oidc_consents", "oidc_sessions": "oidc_sessions",
}

// Verify compares this database with the bbolt store it was imported
// from: the number of records of every kind, then, for up to sample users
// spread over the id range, the user, devices, sessions, audit events, OATH
// account and recovery status as each store returns them. It returns the
// first difference found.
func (db *DB) Verify(ctx context.Context, src *store.DB, sample int) error {
	counts := map[string]int{}
	if err := src.Export(ctx, func(r store.Record) error { counts[r.Bucket]++; return nil }); err != nil {
		return err
	}
	for bucket, table := range importTables {
		var n int
		if err := db.pool.QueryRow(ctx, "SELECT count(*) FROM "+table).Scan(&n); err != nil {
			return err
		}
		if n != counts[bucket] {
			return fmt.Errorf("%s: %d records in the file, %d rows in PostgreSQL", bucket, counts[bucket], n)
		}
	}
	users, err := allUserIDs(ctx, src)
	if err != nil {
		return err
	}
	step := 1
	if sample > 0 && len(users) > sample {
		step = len(users) / sample
	}
	for i := 0; i < len(users); i += step {
		if err := sameUser(ctx, src, db, users[i]); err != nil {
			return fmt.Errorf("user %s: %w", users[i], err)
		}
	}
	return nil
}

func allUserIDs(ctx context.Context, st qrauth.Store) ([]qrauth.UserID, error) {
	var ids []qrauth.UserID
	var after qrauth.UserID
	for {
		us, err := st.ListUsers(ctx, after, 1000)
		if err != nil {
			return nil, err
		}
		if len(us) == 0 {
			return ids, nil
		}
		for _, u := range us {
			ids = append(ids, u.ID)
		}
		after = us[len(us)-1].ID
	}
}

// sameUser compares what both stores return about one user.
func sameUser(ctx context.Context, a *store.DB, b *DB, id qrauth.UserID) error {
	checks := []struct {
		what string
		a, b func() (any, error)
	}{
		{"user", func() (any, error) { return a.FindUserByID(ctx, id) }, func() (any, error) { return b.FindUserByID(ctx, id) }},
		{"devices", func() (any, error) { return a.FindDevicesByUser(ctx, id) }, func() (any, error) { return b.FindDevicesByUser(ctx, id) }},
		{"sessions", func() (any, error) { return a.FindSessionsByUser(ctx, id) }, func() (any, error) { return b.FindSessionsByUser(ctx, id) }},
		{"audit", func() (any, error) { return a.ListAudit(ctx, qrauth.AuditFilter{UserID: id, Limit: 1000}) },
			func() (any, error) { return b.ListAudit(ctx, qrauth.AuditFilter{UserID: id, Limit: 1000}) }},
		{"oath", func() (any, error) { return a.FindOATHAccount(ctx, id) }, func() (any, error) { return b.FindOATHAccount(ctx, id) }},
		{"recovery", func() (any, error) { return a.FindRecoveryStatus(ctx, id) }, func() (any, error) { return b.FindRecoveryStatus(ctx, id) }},
		{"offline", func() (any, error) { return a.FindOfflineCredentialsByUser(ctx, id) },
			func() (any, error) { return b.FindOfflineCredentialsByUser(ctx, id) }},
		{"badges", func() (any, error) { return a.FindBadgesByUser(ctx, id) }, func() (any, error) { return b.FindBadgesByUser(ctx, id) }},
	}
	for _, c := range checks {
		va, ea := c.a()
		vb, eb := c.b()
		if qrauth.ErrorReason(ea) != qrauth.ErrorReason(eb) || (ea == nil) != (eb == nil) {
			return fmt.Errorf("%s: the file says %v, PostgreSQL %v", c.what, ea, eb)
		}
		if ea == nil && !reflect.DeepEqual(va, vb) {
			return fmt.Errorf("%s differ:\n  file:       %+v\n  PostgreSQL: %+v", c.what, va, vb)
		}
	}
	return nil
}
