package store

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/qrauth/qrauth"
	bolt "go.etcd.io/bbolt"
	bolterrors "go.etcd.io/bbolt/errors"
)

// Defaults for the zero values of Options.
const (
	DefaultLockTimeout  = time.Second
	DefaultMaxBatchSize = 1000
)

// ErrLocked is returned (wrapped) by Open when another process holds the
// database file.
var ErrLocked = errors.New("database is locked by another process")

// Options configure Open. The zero value of each field means its default.
type Options struct {
	// LockTimeout is how long Open waits for another process to release
	// the file before failing with ErrLocked. bbolt would otherwise wait
	// forever, which looks like a hung server. Default 1s.
	LockTimeout time.Duration

	// MaxBatchSize is the most writes that share one transaction (see
	// committer). Default 1000.
	MaxBatchSize int

	// ReadOnly opens the file for reading only, sharing it with other
	// readers (`qrauthd check`); it is never created or upgraded.
	ReadOnly bool

	// Observer, when set, is told of every group commit and every audit
	// event once it is durable: the operator's metrics and log hang on
	// it, so that this package needs neither (see Observer).
	Observer Observer
}

// Observer sees the store's work after the fact. Its methods are called
// outside every transaction, from the goroutine that did the work, so they
// must be quick and must not call the store.
type Observer interface {
	// Committed reports one write transaction, a group commit (see
	// committer) or a lone write's own: how long it and its fsyncs took
	// and how many writes it carried, whether it succeeded or not.
	Committed(took time.Duration, writes int)
	// Appended reports an audit event that is durable, its Seq set. It
	// is the one place every event passes, whichever method wrote it.
	Appended(e qrauth.AuditEvent)
}

// nopObserver is the Observer of a store opened without one.
type nopObserver struct{}

func (nopObserver) Committed(time.Duration, int) {}
func (nopObserver) Appended(e qrauth.AuditEvent) {}

// safeObserver drops a panic of the Observer it wraps: it is called from
// the group-commit loop, which must never die (every later write would
// wait forever), and after a write is durable, which must not then be
// reported as failed.
type safeObserver struct{ o Observer }

func (s safeObserver) Committed(took time.Duration, writes int) {
	defer func() { _ = recover() }()
	s.o.Committed(took, writes)
}

func (s safeObserver) Appended(e qrauth.AuditEvent) {
	defer func() { _ = recover() }()
	s.o.Appended(e)
}

func (o Options) withDefaults() Options {
	if o.LockTimeout <= 0 {
		o.LockTimeout = DefaultLockTimeout
	}
	if o.MaxBatchSize <= 0 {
		o.MaxBatchSize = DefaultMaxBatchSize
	}
	if o.Observer == nil {
		o.Observer = nopObserver{}
	} else {
		o.Observer = safeObserver{o.Observer}
	}
	return o
}

// Bucket names; see doc.go.
var (
	bucketMeta            = []byte("meta")
	bucketSecrets         = []byte("secrets")
	bucketUsers           = []byte("users")
	bucketUsersByPhone    = []byte("users_by_phone")
	bucketDevices         = []byte("devices")
	bucketDevicesByUser   = []byte("devices_by_user")
	bucketSessions        = []byte("sessions")
	bucketSessionsByToken = []byte("sessions_by_token")
	bucketSessionsByUser  = []byte("sessions_by_user")
	bucketAddresses       = []byte("addresses")
	bucketAudit           = []byte("audit")
	bucketAuditByUser     = []byte("audit_by_user")

	allBuckets = [][]byte{
		bucketMeta, bucketSecrets,
		bucketUsers, bucketUsersByPhone,
		bucketDevices, bucketDevicesByUser,
		bucketSessions, bucketSessionsByToken, bucketSessionsByUser,
		bucketAddresses,
		bucketAudit, bucketAuditByUser,
		// The flows' buckets, declared in their files.
		bucketOfflineCreds, bucketOfflineCredsByUser, bucketOfflineSessions,
		bucketApprovals, bucketApprovalsByToken, bucketOfflineExpiry,
		bucketOATH,
		bucketPasswords, bucketBadges, bucketBadgesByUser,
		bucketOIDCClients, bucketOIDCRequests, bucketOIDCCodes, bucketOIDCTokens, bucketOIDCRefresh,
		bucketOIDCGrants, bucketOIDCKeys, bucketOIDCConsents, bucketOIDCSessions,
		bucketRecoveryCodes, bucketRecoveryCodesByUser, bucketRecoveryState,
	}

	keyVersion = []byte("version")

	// present is the value of index entries whose key says it all. It is
	// not empty because bbolt's Get returns nil for a nil value put earlier
	// in the same transaction, which would read as "absent".
	present = []byte{1}
)

// DB is a qrauth.Store in a bbolt file. It is safe for concurrent use.
type DB struct {
	bolt   *bolt.DB
	writes *committer
	obs    Observer
	// upgradedFrom is the schema version Open upgraded from, 0 if none.
	upgradedFrom uint64
}

var _ qrauth.Store = (*DB)(nil)

// Open opens or creates the database at path, creating missing parent
// directories with mode 0700 and the file with mode 0600, since the file
// names every user's phone hash and address history. It fails with ErrLocked
// after opts.LockTimeout if another process has the file open.
func Open(path string, opts Options) (*DB, error) {
	opts = opts.withDefaults()
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, openError(path, err)
	}
	// Refuse a truncated file before bbolt maps it: a read past its end
	// is a fault, not an error.
	if err := VerifyFile(path); err != nil {
		return nil, openError(path, err)
	}
	var b *bolt.DB
	err := guard(func() (err error) {
		b, err = bolt.Open(path, 0o600, &bolt.Options{Timeout: opts.LockTimeout, ReadOnly: opts.ReadOnly})
		return err
	})
	if errors.Is(err, bolterrors.ErrTimeout) {
		return nil, openError(path, fmt.Errorf("%w (waited %s)", ErrLocked, opts.LockTimeout))
	} else if errors.Is(err, bolterrors.ErrInvalid) || errors.Is(err, bolterrors.ErrChecksum) || errors.Is(err, bolterrors.ErrVersionMismatch) {
		return nil, openError(path, fmt.Errorf("%w: %w", ErrDamaged, err))
	} else if err != nil {
		return nil, openError(path, err)
	}
	var from uint64
	if opts.ReadOnly {
		err = guard(func() error { return b.View(checkSchema) })
	} else {
		err = guard(func() error {
			return b.Update(func(tx *bolt.Tx) (err error) { from, err = initialize(tx); return err })
		})
	}
	if err != nil {
		b.Close()
		return nil, openError(path, err)
	}
	return &DB{bolt: b, writes: &committer{db: b, max: opts.MaxBatchSize, obs: opts.Observer}, obs: opts.Observer, upgradedFrom: from}, nil
}

// openError names the file once: the causes below (os.PathError, our own
// "store: " errors) would otherwise each repeat it or the package name.
func openError(path string, err error) error {
	var pe *os.PathError
	if errors.As(err, &pe) && pe.Path == path {
		err = fmt.Errorf("%s: %w", pe.Op, pe.Err)
	}
	msg := strings.TrimPrefix(err.Error(), "store: ")
	return &openErr{msg: "open " + path + ": " + msg, err: err}
}

type openErr struct {
	msg string
	err error
}

func (e *openErr) Error() string { return e.msg }
func (e *openErr) Unwrap() error { return e.err }

// checkSchema is initialize for a read-only open: it only reads, and
// accepts an older version it will not upgrade.
func checkSchema(tx *bolt.Tx) error {
	_, err := readVersion(tx)
	return err
}

// initialize makes a new file current, or upgrades an older one (migrate),
// then creates the buckets that are missing: a flow's new buckets need no
// migration. It returns the version it upgraded from, 0 if none.
func initialize(tx *bolt.Tx) (uint64, error) {
	meta, err := tx.CreateBucketIfNotExists(bucketMeta)
	if err != nil {
		return 0, err
	}
	var from uint64
	if meta.Get(keyVersion) == nil {
		if err := meta.Put(keyVersion, u64(SchemaVersion())); err != nil {
			return 0, err
		}
	} else if n, err := readVersion(tx); err != nil {
		return 0, err
	} else if n < SchemaVersion() {
		if err := migrate(tx, n); err != nil {
			return 0, err
		}
		from = n
	}
	for _, name := range allBuckets {
		if _, err := tx.CreateBucketIfNotExists(name); err != nil {
			return 0, err
		}
	}
	return from, nil
}

// Path returns the file the database lives in.
func (db *DB) Path() string { return db.bolt.Path() }

// Close waits for running transactions and releases the file. Pending
// writes have already been made durable by the methods that issued them.
func (db *DB) Close() error {
	if err := db.bolt.Close(); err != nil {
		return qrauth.Internal(err)
	}
	return nil
}

// Ping reads the schema version: the store answers reads (the server's
// readiness check).
func (db *DB) Ping(ctx context.Context) error {
	return db.view(ctx, checkSchema)
}

// view runs fn in a read-only transaction.
func (db *DB) view(ctx context.Context, fn func(tx *bolt.Tx) error) error {
	if err := ctxError(ctx); err != nil {
		return err
	}
	return storeError(guard(func() error { return db.bolt.View(fn) }))
}

// update runs fn and appends events in one write transaction, on its own
// (batch false) or shared with concurrent callers (batch true). The events'
// Seq fields are set only once the transaction has committed, so that a
// failed or retried attempt leaves the caller's events as they were.
func (db *DB) update(ctx context.Context, batch bool, events []*qrauth.AuditEvent, fn func(tx *bolt.Tx) error) error {
	if err := ctxError(ctx); err != nil {
		return err
	}
	p, err := newPendingEvents(events)
	if err != nil {
		return err
	}
	txfn := func(tx *bolt.Tx) error {
		if fn != nil {
			if err := fn(tx); err != nil {
				return err
			}
		}
		return p.write(tx)
	}
	if batch {
		err = db.writes.run(txfn)
	} else {
		start := time.Now()
		err = guard(func() error { return db.bolt.Update(txfn) })
		db.obs.Committed(time.Since(start), 1)
	}
	if err != nil {
		return storeError(err)
	}
	p.commit(db.obs)
	return nil
}

// ctxError refuses to start work for a caller that has gone away. Once a
// transaction has started it runs to the end: bbolt cannot abandon a commit.
func ctxError(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return qrauth.Internal(err)
	}
	return nil
}

// storeError passes our own errors through and wraps everything else (bbolt,
// I/O, JSON) so callers see one error type.
func storeError(err error) error {
	var e *qrauth.Error
	if err == nil || errors.As(err, &e) {
		return err
	}
	return qrauth.Internal(err)
}

// invalidf reports a call the store cannot carry out without corrupting its
// indexes. It signals a bug in the caller, not bad user input.
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

// userKey is the key of an entry in a by-user index. Because user ids hold
// no "/", the entries of one user are exactly those starting with
// userPrefix(id).
func userKey(id qrauth.UserID, rest []byte) []byte {
	k := make([]byte, 0, len(id)+1+len(rest))
	k = append(k, id...)
	k = append(k, '/')
	return append(k, rest...)
}

func userPrefix(id qrauth.UserID) []byte { return userKey(id, nil) }

// scanUser calls fn with the value of every entry of index b under user id.
func scanUser(b *bolt.Bucket, id qrauth.UserID, fn func(k, v []byte) error) error {
	prefix := userPrefix(id)
	c := b.Cursor()
	for k, v := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, v = c.Next() {
		if err := fn(k, v); err != nil {
			return err
		}
	}
	return nil
}

func u64(n uint64) []byte {
	b := make([]byte, 8)
	binary.BigEndian.PutUint64(b, n)
	return b
}

// get decodes the record at key into a new T, or returns nil if there is
// none.
func get[T any](b *bolt.Bucket, key []byte) (*T, error) {
	v := b.Get(key)
	if v == nil {
		return nil, nil
	}
	return decode[T](key, v)
}

// decode decodes a record into a new T. Decoding copies, so the result
// outlives the transaction that v belongs to.
func decode[T any](key, v []byte) (*T, error) {
	r := new(T)
	if err := json.Unmarshal(v, r); err != nil {
		return nil, fmt.Errorf("decode record %q: %w", key, err)
	}
	return r, nil
}

func put(b *bolt.Bucket, key []byte, r any) error {
	v, err := json.Marshal(r)
	if err != nil {
		return err
	}
	return b.Put(key, v)
}

// Check verifies the file's page structure and that every index entry and
// every record agree with each other. Tests run it when they close a DB; an
// operator may run it after a crash. It holds the write lock while it runs,
// because bbolt's page check is only safe against concurrent writers then.
//
// Check does not look at key strength (WeakKeys does): a weak device key is
// a danger to its account, not damage to the file.
func (db *DB) Check() error {
	if errs := db.Problems(); len(errs) > 0 {
		return qrauth.Internal(fmt.Errorf("store: check %s: %w", db.Path(), errors.Join(errs...)))
	}
	return nil
}

// Problems is Check's list of findings, one error each, for `qrauthd check`
// and the check at start. A damaged page that makes bbolt panic is one
// finding, not a crash.
func (db *DB) Problems() []error {
	var errs []error
	err := guard(func() error {
		// A read-only DB has no writers to exclude (nor can it begin a
		// write transaction).
		tx, err := db.bolt.Begin(!db.bolt.IsReadOnly())
		if err != nil {
			return err
		}
		defer tx.Rollback()
		for err := range tx.Check() {
			errs = append(errs, err)
		}
		if len(errs) == 0 {
			errs = checkIndexes(tx)
		}
		return nil
	})
	if err != nil {
		errs = append(errs, err)
	}
	return errs
}

// checkIndexes returns every disagreement between records and indexes: each
// record must be indexed, and each index entry must point to a record that
// says the same thing.
func checkIndexes(tx *bolt.Tx) []error {
	var errs []error
	fail := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	bucket := tx.Bucket

	forEach := func(name []byte, fn func(k, v []byte) error) {
		if err := bucket(name).ForEach(fn); err != nil {
			fail("%s: %w", name, err)
		}
	}
	users := map[qrauth.UserID]bool{}
	forEach(bucketUsers, func(k, v []byte) error {
		u, err := decode[qrauth.User](k, v)
		if err != nil {
			return err
		} else if string(u.ID) != string(k) {
			fail("user %q has id %q", k, u.ID)
		}
		users[u.ID] = true
		return nil
	})
	forEach(bucketUsersByPhone, func(k, v []byte) error {
		if !users[qrauth.UserID(v)] {
			fail("phone %s points to missing user %q", k, v)
		}
		return nil
	})

	forEach(bucketDevices, func(k, v []byte) error {
		d, err := decode[qrauth.Device](k, v)
		if err != nil {
			return err
		}
		switch {
		case string(d.ID) != string(k):
			fail("device %q has id %q", k, d.ID)
		case !users[d.UserID]:
			fail("device %q belongs to missing user %q", k, d.UserID)
		case string(bucket(bucketDevicesByUser).Get(userKey(d.UserID, k))) != string(k):
			fail("device %q missing from its user's index", k)
		case string(bucket(bucketUsersByPhone).Get([]byte(d.PhoneIDHash))) != string(d.UserID):
			fail("phone of device %q not indexed to its user", k)
		}
		return nil
	})
	forEach(bucketDevicesByUser, func(k, v []byte) error {
		d, err := get[qrauth.Device](bucket(bucketDevices), v)
		if err != nil {
			return err
		} else if d == nil || string(userKey(d.UserID, v)) != string(k) {
			fail("device index entry %q does not match device %q", k, v)
		}
		return nil
	})

	forEach(bucketSessions, func(k, v []byte) error {
		s, err := decode[qrauth.Session](k, v)
		if err != nil {
			return err
		}
		switch {
		case string(s.ID) != string(k):
			fail("session %q has id %q", k, s.ID)
		case !users[s.UserID]:
			fail("session %q belongs to missing user %q", k, s.UserID)
		case string(bucket(bucketSessionsByToken).Get(s.TokenHash)) != string(k):
			fail("session %q missing from the token index", k)
		case string(bucket(bucketSessionsByUser).Get(userKey(s.UserID, k))) != string(k):
			fail("session %q missing from its user's index", k)
		}
		return nil
	})
	forEach(bucketSessionsByToken, func(k, v []byte) error {
		s, err := get[qrauth.Session](bucket(bucketSessions), v)
		if err != nil {
			return err
		} else if s == nil || !bytes.Equal(s.TokenHash, k) {
			fail("token index entry %x does not match session %q", k, v)
		}
		return nil
	})
	forEach(bucketSessionsByUser, func(k, v []byte) error {
		s, err := get[qrauth.Session](bucket(bucketSessions), v)
		if err != nil {
			return err
		} else if s == nil || string(userKey(s.UserID, v)) != string(k) {
			fail("session index entry %q does not match session %q", k, v)
		}
		return nil
	})

	audit := bucket(bucketAudit)
	forEach(bucketAudit, func(k, v []byte) error {
		e, err := decode[qrauth.AuditEvent](k, v)
		if err != nil {
			return err
		}
		switch {
		case len(k) != 8 || binary.BigEndian.Uint64(k) != e.Seq:
			fail("audit key %x holds seq %d", k, e.Seq)
		case e.Seq == 0 || e.Seq > audit.Sequence():
			fail("audit seq %d out of range (1, %d)", e.Seq, audit.Sequence())
		case e.UserID != "" && bucket(bucketAuditByUser).Get(userKey(e.UserID, k)) == nil:
			fail("audit event %d missing from its user's index", e.Seq)
		}
		return nil
	})
	forEach(bucketAuditByUser, func(k, v []byte) error {
		// The seq is the last 8 bytes and may itself contain '/'.
		i := len(k) - 9
		if i < 1 || k[i] != '/' {
			fail("malformed audit index key %x", k)
			return nil
		}
		e, err := get[qrauth.AuditEvent](audit, k[i+1:])
		if err != nil {
			return err
		} else if e == nil || string(e.UserID) != string(k[:i]) {
			fail("audit index entry %x does not match its event", k)
		}
		return nil
	})
	forEach(bucketAddresses, func(k, _ []byte) error {
		if i := bytes.IndexByte(k, '/'); i < 1 || !users[qrauth.UserID(k[:i])] {
			fail("address entry %q belongs to no user", k)
		}
		return nil
	})
	errs = append(errs, checkFlowIndexes(tx, users)...)
	return errs
}

// collect decodes every record of b and returns those keep accepts: for
// the few walks that look for records by a field no index covers.
func collect[T any](b *bolt.Bucket, keep func(*T) bool) ([]*T, error) {
	var out []*T
	err := b.ForEach(func(k, v []byte) error {
		r, err := decode[T](k, v)
		if err == nil && keep(r) {
			out = append(out, r)
		}
		return err
	})
	return out, err
}
