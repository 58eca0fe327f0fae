// Package postgres is the qrauth store on PostgreSQL, for running several
// qrauthd instances on one database (cluster mode). It implements the same
// contracts as the embedded bbolt store (package store) and passes the same
// conformance suites (store/storetest).
//
// Records are kept whole as JSON beside the columns that queries and
// constraints need (see migrations/). Every mutating method is one
// transaction at READ COMMITTED: it reads what it changes with FOR UPDATE,
// and unique constraints decide races that the reads cannot see, their
// violations mapped to the same typed conflicts the bbolt store returns.
// Audit events passed to a method are appended in its transaction.
package postgres

import (
	"context"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/qrauth/qrauth"
	"github.com/qrauth/qrauth/store"
)

//go:embed migrations/*.sql
var migrationFiles embed.FS

// migrationLock is the advisory lock key that serializes migrations between
// instances starting at once ("qrauth" in ASCII).
const migrationLock = 0x7172617574680000

// DB is a qrauth store on a PostgreSQL pool.
type DB struct {
	pool *pgxpool.Pool
	obs  store.Observer
}

// Options tune Open.
type Options struct {
	// Observer is told of every transaction and every durable audit
	// event, as the bbolt store tells its own (metrics, the operator's
	// log). nil: nobody.
	Observer store.Observer
}

// Open connects to the database at url (postgres://…; TLS and passwords as
// libpq takes them, e.g. sslmode=verify-full, sslrootcert=…), checks that it
// answers, and applies the migrations it lacks. It fails with a clear error
// when the database is unreachable.
func Open(ctx context.Context, url string, opts Options) (*DB, error) {
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		// pgx's message may quote the URL; never echo a password.
		return nil, fmt.Errorf("postgres: bad connection URL: %s", redact(err.Error(), url))
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("postgres: %s", redact(err.Error(), url))
	}
	pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := pool.Ping(pctx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("postgres: cannot reach %s: %s", Redact(url), redact(err.Error(), url))
	}
	db := &DB{pool: pool, obs: opts.Observer}
	if db.obs == nil {
		db.obs = nopObserver{}
	}
	if err := db.migrate(ctx); err != nil {
		pool.Close()
		return nil, err
	}
	return db, nil
}

// Close closes the pool.
func (db *DB) Close() error {
	db.pool.Close()
	return nil
}

// Ping reports whether the database answers (for /readyz).
func (db *DB) Ping(ctx context.Context) error { return db.pool.Ping(ctx) }

// Redact returns url with any password replaced by "xxxxx", for messages.
func Redact(url string) string {
	cfg, err := pgconn.ParseConfig(url)
	if err != nil || cfg.Password == "" {
		return url
	}
	return strings.ReplaceAll(url, cfg.Password, "xxxxx")
}

func redact(msg, url string) string {
	if cfg, err := pgconn.ParseConfig(url); err == nil && cfg.Password != "" {
		msg = strings.ReplaceAll(msg, cfg.Password, "xxxxx")
	}
	return msg
}

// migration is one embedded SQL file, applied once, in version order.
type migration struct {
	version int
	name    string
	sql     string
}

func migrations() ([]migration, error) {
	names, err := fs.Glob(migrationFiles, "migrations/*.sql")
	if err != nil {
		return nil, err
	}
	var ms []migration
	for _, n := range names {
		base := strings.TrimPrefix(n, "migrations/")
		v, err := strconv.Atoi(strings.SplitN(base, "_", 2)[0])
		if err != nil {
			return nil, fmt.Errorf("migration %s: name must start with its version number", base)
		}
		b, err := migrationFiles.ReadFile(n)
		if err != nil {
			return nil, err
		}
		ms = append(ms, migration{v, base, string(b)})
	}
	sort.Slice(ms, func(i, j int) bool { return ms[i].version < ms[j].version })
	return ms, nil
}

// SchemaVersion is the newest migration this program knows.
func SchemaVersion() int {
	ms, _ := migrations()
	if len(ms) == 0 {
		return 0
	}
	return ms[len(ms)-1].version
}

// migrate applies the missing migrations, each in its own transaction,
// under a session advisory lock so that instances starting together apply
// each exactly once. A database newer than this program is refused.
//
// A small runner rather than a migration library: the store needs forward
// migrations only, embedded, in one transaction each, under a lock; that is
// fifty lines, and a library would bring a CLI, drivers and down-migrations
// that qrauth does not use (roll back = restore a backup, docs/cluster.md).
func (db *DB) migrate(ctx context.Context) error {
	ms, err := migrations()
	if err != nil {
		return err
	}
	conn, err := db.pool.Acquire(ctx)
	if err != nil {
		return fmt.Errorf("postgres: %w", err)
	}
	defer conn.Release()
	if _, err := conn.Exec(ctx, "SELECT pg_advisory_lock($1)", int64(migrationLock)); err != nil {
		return fmt.Errorf("postgres: migration lock: %w", err)
	}
	defer conn.Exec(context.WithoutCancel(ctx), "SELECT pg_advisory_unlock($1)", int64(migrationLock))
	if _, err := conn.Exec(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
		version int PRIMARY KEY, name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())`); err != nil {
		return fmt.Errorf("postgres: %w", err)
	}
	var have int
	if err := conn.QueryRow(ctx, "SELECT coalesce(max(version), 0) FROM schema_migrations").Scan(&have); err != nil {
		return fmt.Errorf("postgres: %w", err)
	}
	if want := SchemaVersion(); have > want {
		return fmt.Errorf("postgres: the database's schema version %d is newer than this program's %d: run the newer qrauthd, or restore the backup taken before the upgrade", have, want)
	}
	for _, m := range ms {
		if m.version <= have {
			continue
		}
		err := pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
			if _, err := tx.Exec(ctx, m.sql); err != nil {
				return err
			}
			_, err := tx.Exec(ctx, "INSERT INTO schema_migrations (version, name) VALUES ($1, $2)", m.version, m.name)
			return err
		})
		if err != nil {
			return fmt.Errorf("postgres: migration %s: %w", m.name, err)
		}
	}
	return nil
}

// view runs fn on the pool outside any explicit transaction (one statement
// reads are atomic) or inside a read-only one when it needs several.
func (db *DB) view(ctx context.Context, fn func(q querier) error) error {
	if err := ctxError(ctx); err != nil {
		return err
	}
	return storeError(ctx, fn(db.pool))
}

// querier is what both the pool and a transaction offer.
type querier interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// maxAttempts bounds the retries of a transaction that lost a deadlock or
// serialization race: the loser is rolled back whole, so running it again
// is safe.
const maxAttempts = 5

// update runs fn and appends events in one transaction. The events' Seq
// fields are set only once it has committed, so a failed attempt leaves
// the caller's events as they were.
func (db *DB) update(ctx context.Context, events []*qrauth.AuditEvent, fn func(tx pgx.Tx) error) error {
	return db.updateMore(ctx, events, func(tx pgx.Tx) ([]*qrauth.AuditEvent, error) {
		if fn == nil {
			return nil, nil
		}
		return nil, fn(tx)
	})
}

// updateMore is update for a change that decides on further events as it
// goes (an account that locks appends its lock event): fn returns them, and
// they are appended after events.
func (db *DB) updateMore(ctx context.Context, events []*qrauth.AuditEvent, fn func(tx pgx.Tx) ([]*qrauth.AuditEvent, error)) error {
	if err := ctxError(ctx); err != nil {
		return err
	}
	evs, err := copyEvents(events)
	if err != nil {
		return err
	}
	var all []*qrauth.AuditEvent
	var seqs []uint64
	start := time.Now()
	defer func() { db.obs.Committed(time.Since(start), 1) }()
	for attempt := 1; ; attempt++ {
		all, seqs = events, nil
		err = pgx.BeginFunc(ctx, db.pool, func(tx pgx.Tx) error {
			more, err := fn(tx)
			if err != nil {
				return err
			}
			extra, err := copyEvents(more)
			if err != nil {
				return err
			}
			all = append(slices.Clip(events), more...)
			seqs, err = appendAudit(ctx, tx, append(slices.Clip(evs), extra...))
			return err
		})
		if !retryable(err) || attempt == maxAttempts {
			break
		}
	}
	if err != nil {
		return storeError(ctx, err)
	}
	for i, e := range all {
		e.Seq = seqs[i]
		db.obs.Appended(*e)
	}
	return nil
}

type nopObserver struct{}

func (nopObserver) Committed(time.Duration, int) {}
func (nopObserver) Appended(qrauth.AuditEvent)   {}

// copyEvents checks events and copies them, so that nothing the store does
// shows in the caller's values before the commit.
func copyEvents(events []*qrauth.AuditEvent) ([]qrauth.AuditEvent, error) {
	evs := make([]qrauth.AuditEvent, len(events))
	for i, e := range events {
		if e == nil {
			return nil, invalidf("nil audit event")
		} else if e.UserID != "" {
			if err := checkUserID(e.UserID); err != nil {
				return nil, err
			}
		}
		evs[i] = *e
	}
	return evs, nil
}

// appendAudit writes evs last in the transaction, so that the counter row
// it locks is held only for the commit.
func appendAudit(ctx context.Context, tx pgx.Tx, evs []qrauth.AuditEvent) ([]uint64, error) {
	if len(evs) == 0 {
		return nil, nil
	}
	var last uint64
	if err := tx.QueryRow(ctx, "UPDATE counters SET n = n + $1 WHERE name = 'audit' RETURNING n", len(evs)).Scan(&last); err != nil {
		return nil, err
	}
	seqs := make([]uint64, len(evs))
	for i := range evs {
		e := evs[i]
		e.Seq = last - uint64(len(evs)-1-i)
		doc, err := json.Marshal(&e)
		if err != nil {
			return nil, err
		}
		var uid *string
		if e.UserID != "" {
			s := string(e.UserID)
			uid = &s
		}
		if _, err := tx.Exec(ctx, "INSERT INTO audit (seq, user_id, doc) VALUES ($1, $2, $3)", int64(e.Seq), uid, doc); err != nil {
			return nil, err
		}
		seqs[i] = e.Seq
	}
	return seqs, nil
}

func retryable(err error) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && (pe.Code == "40001" || pe.Code == "40P01")
}

// uniqueViolation returns the constraint a unique violation hit, or "".
func uniqueViolation(err error) string {
	var pe *pgconn.PgError
	if errors.As(err, &pe) && pe.Code == "23505" {
		return pe.ConstraintName
	}
	return ""
}

func ctxError(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return qrauth.Internal(err)
	}
	return nil
}

// storeError passes our own errors through and wraps everything else
// (network, PostgreSQL, JSON) as internal, so callers see one error type.
func storeError(ctx context.Context, err error) error {
	var e *qrauth.Error
	if err == nil || errors.As(err, &e) {
		return err
	}
	if c := uniqueViolation(err); c != "" {
		if ce := conflictFor(c); ce != nil {
			return ce
		}
	}
	return qrauth.Internal(err)
}

// invalidf reports a call the store cannot carry out without corrupting its
// data: a bug in the caller, not bad user input (as in package store).
func invalidf(format string, args ...any) *qrauth.Error {
	return qrauth.Errorf(qrauth.EINVALID, "invalid_argument", "store: "+format, args...)
}

func checkUserID(id qrauth.UserID) error {
	if id == "" {
		return invalidf("empty user id")
	} else if strings.Contains(string(id), "/") {
		return invalidf("user id %q contains '/'", id)
	}
	return nil
}

// scanDoc decodes the JSON document of one row into a new T.
func scanDoc[T any](row pgx.Row) (*T, error) {
	var doc []byte
	if err := row.Scan(&doc); err != nil {
		return nil, err
	}
	return decodeDoc[T](doc)
}

func decodeDoc[T any](doc []byte) (*T, error) {
	v := new(T)
	if err := json.Unmarshal(doc, v); err != nil {
		return nil, fmt.Errorf("decode %T: %w", v, err)
	}
	return v, nil
}

// scanDocs decodes every row's single JSON column.
func scanDocs[T any](rows pgx.Rows, err error) ([]*T, error) {
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := []*T{}
	for rows.Next() {
		v, err := scanDoc[T](rows)
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, rows.Err()
}

func marshal(v any) ([]byte, error) { return json.Marshal(v) }

// Query runs a read-only statement on the pool, for tests and checks that
// look at the tables directly.
func (db *DB) Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error) {
	return db.pool.Query(ctx, sql, args...)
}
