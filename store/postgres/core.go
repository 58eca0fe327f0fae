package postgres

import (
	"bytes"
	"context"
	"errors"
	"math"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/qrauth/qrauth"
)

var _ qrauth.Store = (*DB)(nil)

func errUserNotFound() error {
	return qrauth.Errorf(qrauth.ENOTFOUND, "user_not_found", "There is no such account.")
}

func errPhoneTaken() error {
	return qrauth.Errorf(qrauth.ECONFLICT, "phone_taken", "This phone number already belongs to an account.")
}

func errDeviceNotFound() error {
	return qrauth.Errorf(qrauth.ENOTFOUND, "device_not_found", "There is no such device.")
}

func errDeviceExists() error {
	return qrauth.Errorf(qrauth.ECONFLICT, "device_exists", "This device is already registered.")
}

func errSessionNotFound() error {
	return qrauth.Errorf(qrauth.ENOTFOUND, "session_not_found", "There is no such session.")
}

func errSessionExists() error {
	return qrauth.Errorf(qrauth.ECONFLICT, "session_exists", "This session already exists.")
}

// conflictFor maps the unique constraint a racing insert hit to the
// conflict that the check before it would have returned.
func conflictFor(constraint string) error {
	switch constraint {
	case "users_pkey":
		return qrauth.Errorf(qrauth.ECONFLICT, "user_exists", "This account already exists.")
	case "phone_hashes_pkey":
		return errPhoneTaken()
	case "devices_pkey":
		return errDeviceExists()
	case "sessions_pkey", "sessions_token_hash_key":
		return errSessionExists()
	case "passwords_pkey": // two first passwords raced; the other won
		return errPasswordChanged()
	case "offline_sessions_pkey":
		return errOfflineSessionExists()
	case "approvals_pkey", "approvals_token_hash_key":
		return errApprovalExists()
	case "badges_pkey":
		return qrauth.Errorf(qrauth.ECONFLICT, "badge_exists", "This badge exists already.")
	}
	return nil
}

// notFound turns pgx.ErrNoRows into err.
func notFound(err error, nf func() error) error {
	if errors.Is(err, pgx.ErrNoRows) {
		return nf()
	}
	return err
}

// Secret implements qrauth.Store. create runs outside any transaction; when
// two callers race, the first insert wins and both return it.
func (db *DB) Secret(ctx context.Context, name string, create func() ([]byte, error)) ([]byte, error) {
	if name == "" {
		return nil, invalidf("empty secret name")
	} else if create == nil {
		return nil, invalidf("nil create function")
	}
	var v []byte
	err := db.view(ctx, func(q querier) error {
		err := q.QueryRow(ctx, "SELECT value FROM secrets WHERE name = $1", name).Scan(&v)
		if errors.Is(err, pgx.ErrNoRows) {
			return nil
		}
		return err
	})
	if err != nil || v != nil {
		return v, err
	}
	nv, err := create()
	if err != nil {
		return nil, storeError(ctx, err)
	} else if len(nv) == 0 {
		return nil, qrauth.Internal(errors.New("store: secret " + name + ": create returned an empty value"))
	}
	err = db.update(ctx, nil, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, "INSERT INTO secrets (name, value) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING", name, nv); err != nil {
			return err
		}
		return tx.QueryRow(ctx, "SELECT value FROM secrets WHERE name = $1", name).Scan(&v)
	})
	if err != nil {
		return nil, err
	}
	return v, nil
}

// CreateUser implements qrauth.Store, with the same argument checks as the
// bbolt store.
func (db *DB) CreateUser(ctx context.Context, u *qrauth.User, d *qrauth.Device, events ...*qrauth.AuditEvent) error {
	if u == nil || d == nil {
		return invalidf("CreateUser needs a user and a device")
	} else if err := checkUserID(u.ID); err != nil {
		return err
	} else if d.ID == "" {
		return invalidf("empty device id")
	} else if d.UserID != u.ID {
		return invalidf("device %q has user id %q, want %q", d.ID, d.UserID, u.ID)
	} else if d.PhoneIDHash == "" {
		return invalidf("empty phone id hash")
	} else if u.PhoneIDHash != "" && u.PhoneIDHash != d.PhoneIDHash {
		return invalidf("user and device phone id hashes differ")
	}
	user, dev := *u, *d
	return db.update(ctx, events, func(tx pgx.Tx) error {
		// The checks run in the order of the bbolt store's, so that a call
		// that breaks several rules gets the same error from both.
		var one int
		if err := tx.QueryRow(ctx, "SELECT 1 FROM phone_hashes WHERE phone_id_hash = $1", dev.PhoneIDHash).Scan(&one); err == nil {
			return errPhoneTaken()
		} else if !errors.Is(err, pgx.ErrNoRows) {
			return err
		}
		if err := tx.QueryRow(ctx, "SELECT 1 FROM devices WHERE id = $1", dev.ID).Scan(&one); err == nil {
			return errDeviceExists()
		} else if !errors.Is(err, pgx.ErrNoRows) {
			return err
		}
		doc, err := marshal(&user)
		if err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, "INSERT INTO users (id, doc) VALUES ($1, $2)", string(user.ID), doc); err != nil {
			return err
		}
		return insertDevice(ctx, tx, &dev)
	})
}

func insertDevice(ctx context.Context, tx pgx.Tx, d *qrauth.Device) error {
	doc, err := marshal(d)
	if err != nil {
		return err
	}
	if _, err := tx.Exec(ctx, "INSERT INTO devices (id, user_id, created_at, doc) VALUES ($1, $2, $3, $4)",
		string(d.ID), string(d.UserID), d.CreatedAt, doc); err != nil {
		return err
	}
	// A hash already indexed to this same user stays as it is; one indexed
	// to another user (even by a transaction that committed a moment ago)
	// is a conflict.
	if _, err := tx.Exec(ctx, "INSERT INTO phone_hashes (phone_id_hash, user_id) VALUES ($1, $2) ON CONFLICT (phone_id_hash) DO NOTHING",
		d.PhoneIDHash, string(d.UserID)); err != nil {
		return err
	}
	var owner string
	if err := tx.QueryRow(ctx, "SELECT user_id FROM phone_hashes WHERE phone_id_hash = $1", d.PhoneIDHash).Scan(&owner); err != nil {
		return err
	} else if owner != string(d.UserID) {
		return errPhoneTaken()
	}
	return nil
}

// FindUserByID implements qrauth.Store.
func (db *DB) FindUserByID(ctx context.Context, id qrauth.UserID) (*qrauth.User, error) {
	if id == "" {
		return nil, errUserNotFound()
	}
	var u *qrauth.User
	err := db.view(ctx, func(q querier) (err error) {
		u, err = scanDoc[qrauth.User](q.QueryRow(ctx, "SELECT doc FROM users WHERE id = $1", string(id)))
		return notFound(err, errUserNotFound)
	})
	if err != nil {
		return nil, err
	}
	return u, nil
}

// FindUserByPhoneIDHash implements qrauth.Store.
func (db *DB) FindUserByPhoneIDHash(ctx context.Context, phoneIDHash string) (*qrauth.User, error) {
	if phoneIDHash == "" {
		return nil, errUserNotFound()
	}
	var u *qrauth.User
	err := db.view(ctx, func(q querier) (err error) {
		u, err = scanDoc[qrauth.User](q.QueryRow(ctx,
			"SELECT u.doc FROM phone_hashes p JOIN users u ON u.id = p.user_id WHERE p.phone_id_hash = $1", phoneIDHash))
		return notFound(err, errUserNotFound)
	})
	if err != nil {
		return nil, err
	}
	return u, nil
}

// modifyUser reads the user for update, lets change modify it and writes it
// back.
func (db *DB) modifyUser(ctx context.Context, id qrauth.UserID, events []*qrauth.AuditEvent, change func(u *qrauth.User)) (*qrauth.User, error) {
	return db.modifyUserTx(ctx, id, events, func(_ pgx.Tx, u *qrauth.User) error {
		change(u)
		return nil
	})
}

// modifyUserTx is modifyUser for a change that also writes other rows in
// the same transaction.
func (db *DB) modifyUserTx(ctx context.Context, id qrauth.UserID, events []*qrauth.AuditEvent, change func(tx pgx.Tx, u *qrauth.User) error) (*qrauth.User, error) {
	if id == "" {
		return nil, errUserNotFound()
	}
	var u *qrauth.User
	err := db.update(ctx, events, func(tx pgx.Tx) (err error) {
		u, err = scanDoc[qrauth.User](tx.QueryRow(ctx, "SELECT doc FROM users WHERE id = $1 FOR UPDATE", string(id)))
		if err != nil {
			return notFound(err, errUserNotFound)
		}
		if err := change(tx, u); err != nil {
			return err
		}
		doc, err := marshal(u)
		if err != nil {
			return err
		}
		_, err = tx.Exec(ctx, "UPDATE users SET doc = $2 WHERE id = $1", string(id), doc)
		return err
	})
	if err != nil {
		return nil, err
	}
	return u, nil
}

// UpdateProfile implements qrauth.Store; normalizing is the caller's job.
func (db *DB) UpdateProfile(ctx context.Context, id qrauth.UserID, p qrauth.Profile, events ...*qrauth.AuditEvent) (*qrauth.User, error) {
	return db.modifyUser(ctx, id, events, func(u *qrauth.User) { u.Name, u.Email = p.Name, p.Email })
}

// SetRoles implements qrauth.Store.
func (db *DB) SetRoles(ctx context.Context, id qrauth.UserID, roles []qrauth.Role, events ...*qrauth.AuditEvent) (*qrauth.User, error) {
	for _, r := range roles {
		if !qrauth.ValidRole(r) {
			return nil, qrauth.Errorf(qrauth.EINVALID, "invalid_role", "Unknown role %q.", r)
		}
	}
	roles = slices.Compact(slices.Sorted(slices.Values(roles)))
	return db.modifyUser(ctx, id, events, func(u *qrauth.User) { u.Roles = slices.Clone(roles) })
}

// ListUsers implements qrauth.Store. Ids compare bytewise (the column is
// COLLATE "C"), as bbolt's keys do.
func (db *DB) ListUsers(ctx context.Context, after qrauth.UserID, limit int) ([]*qrauth.User, error) {
	if limit <= 0 {
		limit = 100
	}
	limit = min(limit, 1000)
	var out []*qrauth.User
	err := db.view(ctx, func(q querier) (err error) {
		out, err = scanDocs[qrauth.User](q.Query(ctx,
			`SELECT doc FROM users WHERE id > $1 ORDER BY id LIMIT $2`, string(after), limit))
		return err
	})
	if err != nil {
		return nil, err
	}
	if len(out) == 0 {
		return nil, nil
	}
	return out, nil
}

// CreateDevice implements qrauth.Store.
func (db *DB) CreateDevice(ctx context.Context, d *qrauth.Device, events ...*qrauth.AuditEvent) error {
	if d == nil {
		return invalidf("CreateDevice needs a device")
	} else if d.ID == "" {
		return invalidf("empty device id")
	} else if err := checkUserID(d.UserID); err != nil {
		return err
	} else if d.PhoneIDHash == "" {
		return invalidf("empty phone id hash")
	}
	dev := *d
	return db.update(ctx, events, func(tx pgx.Tx) error {
		// FOR SHARE keeps the user from being deleted under us.
		var one int
		if err := tx.QueryRow(ctx, "SELECT 1 FROM users WHERE id = $1 FOR SHARE", string(dev.UserID)).Scan(&one); err != nil {
			return notFound(err, errUserNotFound)
		}
		if err := tx.QueryRow(ctx, "SELECT 1 FROM devices WHERE id = $1", string(dev.ID)).Scan(&one); err == nil {
			return errDeviceExists()
		} else if !errors.Is(err, pgx.ErrNoRows) {
			return err
		}
		var owner string
		if err := tx.QueryRow(ctx, "SELECT user_id FROM phone_hashes WHERE phone_id_hash = $1", dev.PhoneIDHash).Scan(&owner); err == nil && owner != string(dev.UserID) {
			return errPhoneTaken()
		} else if err != nil && !errors.Is(err, pgx.ErrNoRows) {
			return err
		}
		return insertDevice(ctx, tx, &dev)
	})
}

// FindDeviceByID implements qrauth.Store.
func (db *DB) FindDeviceByID(ctx context.Context, id qrauth.DeviceID) (*qrauth.Device, error) {
	if id == "" {
		return nil, errDeviceNotFound()
	}
	var d *qrauth.Device
	err := db.view(ctx, func(q querier) (err error) {
		d, err = scanDoc[qrauth.Device](q.QueryRow(ctx, "SELECT doc FROM devices WHERE id = $1", string(id)))
		return notFound(err, errDeviceNotFound)
	})
	if err != nil {
		return nil, err
	}
	return d, nil
}

// FindDevicesByUser implements qrauth.Store: oldest first, ties by id.
func (db *DB) FindDevicesByUser(ctx context.Context, id qrauth.UserID) ([]*qrauth.Device, error) {
	ds := []*qrauth.Device{}
	if checkUserID(id) != nil {
		return ds, nil
	}
	err := db.view(ctx, func(q querier) (err error) {
		ds, err = scanDocs[qrauth.Device](q.Query(ctx,
			`SELECT doc FROM devices WHERE user_id = $1 ORDER BY created_at, id`, string(id)))
		return err
	})
	if err != nil {
		return nil, err
	}
	return ds, nil
}

// TouchDevice implements qrauth.Store.
func (db *DB) TouchDevice(ctx context.Context, id qrauth.DeviceID, at time.Time) error {
	if id == "" {
		return errDeviceNotFound()
	}
	return db.update(ctx, nil, func(tx pgx.Tx) error {
		return setLastSeen(ctx, tx, "devices", string(id), at, errDeviceNotFound)
	})
}

// setLastSeen sets doc.last_seen_at of one row of table (devices or
// sessions) in one statement, so that a touch never rewrites a record from
// a stale read.
func setLastSeen(ctx context.Context, tx pgx.Tx, table, id string, at time.Time, nf func() error) error {
	b, err := marshal(at)
	if err != nil {
		return err
	}
	tag, err := tx.Exec(ctx, "UPDATE "+table+" SET doc = jsonb_set(doc, '{last_seen_at}', $2::jsonb) WHERE id = $1", id, b)
	if err != nil {
		return err
	} else if tag.RowsAffected() == 0 {
		return nf()
	}
	return nil
}

// DeleteDevice implements qrauth.Store. The phone hash stays indexed to
// the user; what other flows keep of the device goes with it (their tables
// reference devices ON DELETE CASCADE).
func (db *DB) DeleteDevice(ctx context.Context, id qrauth.DeviceID, events ...*qrauth.AuditEvent) error {
	if id == "" {
		return errDeviceNotFound()
	}
	return db.update(ctx, events, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, "DELETE FROM devices WHERE id = $1", string(id))
		if err != nil {
			return err
		} else if tag.RowsAffected() == 0 {
			return errDeviceNotFound()
		}
		return nil
	})
}

// CreateSession implements qrauth.Store.
func (db *DB) CreateSession(ctx context.Context, s *qrauth.Session, events ...*qrauth.AuditEvent) error {
	if s == nil {
		return invalidf("CreateSession needs a session")
	} else if s.ID == "" {
		return invalidf("empty session id")
	} else if err := checkUserID(s.UserID); err != nil {
		return err
	} else if len(s.TokenHash) == 0 {
		return invalidf("empty token hash")
	}
	sess := *s
	sess.TokenHash = bytes.Clone(s.TokenHash)
	return db.update(ctx, events, func(tx pgx.Tx) error {
		// FOR SHARE: a DisableUser that commits first is seen; one that
		// comes later waits for this session and then ends it.
		u, err := scanDoc[qrauth.User](tx.QueryRow(ctx, "SELECT doc FROM users WHERE id = $1 FOR SHARE", string(sess.UserID)))
		if err != nil {
			return notFound(err, errUserNotFound)
		} else if err := u.CheckEnabled(); err != nil {
			return err
		}
		var one int
		if err := tx.QueryRow(ctx, "SELECT 1 FROM sessions WHERE id = $1 OR token_hash = $2", string(sess.ID), sess.TokenHash).Scan(&one); err == nil {
			return errSessionExists()
		} else if !errors.Is(err, pgx.ErrNoRows) {
			return err
		}
		if sess.DeviceID != "" {
			var owner string
			err := tx.QueryRow(ctx, "SELECT user_id FROM devices WHERE id = $1 FOR UPDATE", string(sess.DeviceID)).Scan(&owner)
			if err != nil {
				return notFound(err, errDeviceNotFound)
			} else if owner != string(sess.UserID) {
				return errDeviceNotFound()
			}
			if err := setLastSeen(ctx, tx, "devices", string(sess.DeviceID), sess.CreatedAt, errDeviceNotFound); err != nil {
				return err
			}
		}
		if sess.IP != "" {
			if _, err := tx.Exec(ctx, "INSERT INTO known_addresses (user_id, ip) VALUES ($1, $2) ON CONFLICT DO NOTHING",
				string(sess.UserID), sess.IP); err != nil {
				return err
			}
		}
		doc, err := marshal(&sess)
		if err != nil {
			return err
		}
		_, err = tx.Exec(ctx, "INSERT INTO sessions (id, user_id, token_hash, created_at, expires_at, doc) VALUES ($1, $2, $3, $4, $5, $6)",
			string(sess.ID), string(sess.UserID), sess.TokenHash, sess.CreatedAt, sess.ExpiresAt, doc)
		return err
	})
}

// FindSessionByID implements qrauth.Store.
func (db *DB) FindSessionByID(ctx context.Context, id qrauth.SessionID) (*qrauth.Session, error) {
	if id == "" {
		return nil, errSessionNotFound()
	}
	return db.findSession(ctx, "id = $1", string(id))
}

// FindSessionByTokenHash implements qrauth.Store.
func (db *DB) FindSessionByTokenHash(ctx context.Context, tokenHash []byte) (*qrauth.Session, error) {
	if len(tokenHash) == 0 {
		if err := ctxError(ctx); err != nil {
			return nil, err
		}
		return nil, errSessionNotFound()
	}
	return db.findSession(ctx, "token_hash = $1", tokenHash)
}

func (db *DB) findSession(ctx context.Context, where string, arg any) (*qrauth.Session, error) {
	var s *qrauth.Session
	err := db.view(ctx, func(q querier) (err error) {
		s, err = scanDoc[qrauth.Session](q.QueryRow(ctx, "SELECT doc FROM sessions WHERE "+where, arg))
		return notFound(err, errSessionNotFound)
	})
	if err != nil {
		return nil, err
	}
	return s, nil
}

// FindSessionsByUser implements qrauth.Store: newest first, ties by id.
func (db *DB) FindSessionsByUser(ctx context.Context, id qrauth.UserID) ([]*qrauth.Session, error) {
	ss := []*qrauth.Session{}
	if checkUserID(id) != nil {
		return ss, nil
	}
	err := db.view(ctx, func(q querier) (err error) {
		ss, err = scanDocs[qrauth.Session](q.Query(ctx,
			`SELECT doc FROM sessions WHERE user_id = $1 ORDER BY created_at DESC, id`, string(id)))
		return err
	})
	if err != nil {
		return nil, err
	}
	return ss, nil
}

// TouchSession implements qrauth.Store.
func (db *DB) TouchSession(ctx context.Context, id qrauth.SessionID, at time.Time) error {
	if id == "" {
		return errSessionNotFound()
	}
	return db.update(ctx, nil, func(tx pgx.Tx) error {
		return setLastSeen(ctx, tx, "sessions", string(id), at, errSessionNotFound)
	})
}

// DeleteSession implements qrauth.Store.
func (db *DB) DeleteSession(ctx context.Context, id qrauth.SessionID, events ...*qrauth.AuditEvent) error {
	if id == "" {
		return errSessionNotFound()
	}
	return db.update(ctx, events, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, "DELETE FROM sessions WHERE id = $1", string(id))
		if err != nil {
			return err
		} else if tag.RowsAffected() == 0 {
			return errSessionNotFound()
		}
		return nil
	})
}

// DeleteExpiredSessions implements qrauth.Store in one statement.
func (db *DB) DeleteExpiredSessions(ctx context.Context, now time.Time) (int, error) {
	var n int
	err := db.update(ctx, nil, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, "DELETE FROM sessions WHERE expires_at <= $1", now)
		n = int(tag.RowsAffected())
		return err
	})
	if err != nil {
		return 0, err
	}
	return n, nil
}

// KnownAddress implements qrauth.Store.
func (db *DB) KnownAddress(ctx context.Context, id qrauth.UserID, ip string) (bool, error) {
	if ip == "" || checkUserID(id) != nil {
		return false, ctxError(ctx)
	}
	var ok bool
	err := db.view(ctx, func(q querier) error {
		return q.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM known_addresses WHERE user_id = $1 AND ip = $2)", string(id), ip).Scan(&ok)
	})
	return ok, err
}

// AppendAudit implements qrauth.Store.
func (db *DB) AppendAudit(ctx context.Context, events ...*qrauth.AuditEvent) error {
	if len(events) == 0 {
		return ctxError(ctx)
	}
	return db.update(ctx, events, nil)
}

// ListAudit implements qrauth.Store.
func (db *DB) ListAudit(ctx context.Context, f qrauth.AuditFilter) ([]*qrauth.AuditEvent, error) {
	limit := f.Limit
	if limit <= 0 {
		limit = 100
	} else if limit > 1000 {
		limit = 1000
	}
	evs := []*qrauth.AuditEvent{}
	if f.AfterSeq >= math.MaxInt64 || (f.UserID != "" && checkUserID(f.UserID) != nil) {
		return evs, ctxError(ctx)
	}
	err := db.view(ctx, func(q querier) (err error) {
		if f.UserID == "" {
			evs, err = scanDocs[qrauth.AuditEvent](q.Query(ctx, "SELECT doc FROM audit WHERE seq > $1 ORDER BY seq LIMIT $2", int64(f.AfterSeq), limit))
		} else {
			evs, err = scanDocs[qrauth.AuditEvent](q.Query(ctx, "SELECT doc FROM audit WHERE user_id = $1 AND seq > $2 ORDER BY seq LIMIT $3",
				string(f.UserID), int64(f.AfterSeq), limit))
		}
		return err
	})
	if err != nil {
		return nil, err
	}
	return evs, nil
}
