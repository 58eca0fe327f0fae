// Package shared is the short-lived state that the qrauthd instances of a
// cluster share: login rooms and their versions, the PSK and user-code
// indexes that lead a phone to a room, tickets, app-request nonces, pending
// sign-in steps, rate limits, and the hints that tell an instance a room
// changed. One qrauthd alone uses Memory; a cluster uses Redis
// (shared/redis). Both pass the same conformance suite (shared/sharedtest).
//
// Nothing here is durable: a restart of Redis loses rooms in flight (their
// browsers get a fresh code) and never an account or a session, which live
// in the store (docs/cluster.md).
package shared

import (
	"context"
	"errors"
	"time"
)

// ErrNotFound: no such key, or it expired.
var ErrNotFound = errors.New("shared: not found")

// ErrConflict: a compare-and-set lost to another writer (reload and retry),
// or a put-if-absent found the key taken.
var ErrConflict = errors.New("shared: conflict")

// ErrInvalid: an argument no backend can honour (a TTL, rate or burst that
// is not positive). It is the caller's bug, reported before anything is
// changed.
var ErrInvalid = errors.New("shared: invalid argument")

// ErrClosed: the Store was closed. Subscribe returns it when Close ends it.
var ErrClosed = errors.New("shared: closed")

// Store is the shared state. Keys are opaque strings chosen by the caller
// (hashes of secrets, never the secrets themselves); values are opaque
// bytes. Every key has a time to live; an expired key is as if absent.
// Methods return ErrNotFound / ErrConflict as documented, ErrInvalid for a
// TTL, rate or burst that is not positive, ErrClosed after Close, and any
// other error when the backing service fails (the caller answers
// "internal" and changes nothing it has not already made durable).
//
// The three families below (versioned records, single-use entries, Once
// marks) and the rate buckets are separate key spaces: the same key string
// in two of them names two different things. Values are copied in and out,
// so the caller may reuse its slices.
type Store interface {
	// Versioned records (rooms). Create stores v at version 1; ErrConflict
	// if the key exists. Load returns the value and its version. Swap
	// replaces the value only if the version is still ver, returning the
	// new version (ver+1); ErrConflict if it changed, ErrNotFound if the
	// key is gone. Delete removes the key whatever its version, and is nil
	// when it was already gone (closing a room twice is not an error).
	Create(ctx context.Context, key string, v []byte, ttl time.Duration) error
	Load(ctx context.Context, key string) (v []byte, ver uint64, err error)
	Swap(ctx context.Context, key string, ver uint64, v []byte, ttl time.Duration) (uint64, error)
	Delete(ctx context.Context, key string) error

	// Single-use entries (PSK and user-code indexes, tickets, pending
	// sign-ins). Put stores v only if key is absent (ErrConflict if not).
	// Take returns and removes the value in one step, so that of two
	// instances taking the same key at once exactly one gets it
	// (ErrNotFound for the other). Get reads without removing. Drop
	// removes key only if its value is still v (compare-and-delete), so an
	// old owner cannot remove an entry that was given to someone else:
	// ErrConflict when the value differs (nothing removed), ErrNotFound
	// when the key is gone.
	Put(ctx context.Context, key string, v []byte, ttl time.Duration) error
	Take(ctx context.Context, key string) ([]byte, error)
	Get(ctx context.Context, key string) ([]byte, error)
	Drop(ctx context.Context, key string, v []byte) error

	// Once records key for ttl and reports whether this call was the
	// first (replay detection for app-request nonces). A later call while
	// the mark lives reports false and leaves its TTL alone.
	Once(ctx context.Context, key string, ttl time.Duration) (first bool, err error)

	// Allow takes one token from the bucket key (rate per second, burst)
	// shared by every instance; when refused it says how long to wait
	// until a token is free. A refusal takes nothing. The bucket starts
	// full (burst tokens) and refills at rate per second; a bucket left
	// alone until it is full again is forgotten.
	Allow(ctx context.Context, key string, rate float64, burst int) (ok bool, wait time.Duration, err error)

	// Publish tells every instance (this one included) that topic changed;
	// Subscribe calls fn for each such hint, one at a time on the calling
	// goroutine, until ctx ends (it then returns nil) or the Store is
	// closed (ErrClosed). Publish never waits for a slow subscriber. Hints
	// may be lost or repeated: a receiver re-reads the state the hint is
	// about, and re-checks on its own every so often (docs/cluster.md).
	Publish(ctx context.Context, topic string) error
	Subscribe(ctx context.Context, fn func(topic string)) error

	// Ping reports whether the backing service answers (/readyz).
	Ping(ctx context.Context) error
	Close() error
}
