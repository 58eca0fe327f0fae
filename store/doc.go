// Package store implements qrauth.Store on bbolt, an embedded key/value store
// that keeps everything in one file and allows one writing process at a time.
//
// It owns the on-disk format: the buckets below, the JSON encoding of records
// and the indexes that keep lookups to one or two B+tree seeks. Nothing else
// reads or writes the file.
//
// # Layout
//
// Each noun has a bucket of records keyed by id, encoded with encoding/json,
// and index buckets that point back to those ids. All are top-level buckets
// created by Open:
//
//	meta               "version" → schema version, 8 bytes big-endian
//	secrets            name → value
//	users              UserID → User
//	users_by_phone     PhoneIDHash → UserID
//	devices            DeviceID → Device
//	devices_by_user    UserID "/" DeviceID → DeviceID
//	sessions           SessionID → Session
//	sessions_by_token  TokenHash (raw SHA-256) → SessionID
//	sessions_by_user   UserID "/" SessionID → SessionID
//	addresses          UserID "/" IP → empty
//	audit              Seq, 8 bytes big-endian → AuditEvent
//	audit_by_user      UserID "/" Seq, 8 bytes big-endian → empty
//
// A UserID therefore never contains "/": otherwise a scan of one user's
// prefix could return another user's entries. Methods refuse such ids with
// EINVALID; ids made by qrauth.NewUserID never contain one.
//
// Seq comes from the audit bucket's own sequence, so it is assigned in the
// same transaction as the event and a rolled-back transaction gives its
// numbers back instead of leaving gaps that look like deleted entries.
//
// # Upgrades
//
// The meta bucket's version is the layout of the file (SchemaVersion). Open
// runs the migrations (migrate.go) from the file's version to this
// program's in the one write transaction that opens it, so a failed
// upgrade leaves the file as it was; it refuses a file of a newer version
// (ErrNewerSchema) rather than misread it. A read-only open upgrades
// nothing. Going back is restoring the backup taken before the upgrade
// (Backup) with the older program.
//
// # Writes
//
// Every write is fsynced before its method returns. Writes on the sign-in
// path go through group commit (commit.go): writes that arrive while a
// commit is on its way to disk share the next transaction and its fsyncs.
// A write may run more than once, so those functions derive everything from
// the transaction and touch the caller's values only after commit.
package store
