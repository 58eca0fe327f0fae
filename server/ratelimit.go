package server

import (
	"context"
	"errors"
	"log/slog"
	"math"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/qrauth/qrauth/shared"
	"golang.org/x/time/rate"
)

// Limiter keeps one token bucket per key (a client IP, an account). Idle
// buckets are dropped by purge, so the map stays as small as the set of recent callers.
//
// In a cluster (Config.Shared set) the buckets live in the shared store
// instead, so that every instance counts against the same budget: see
// allowShared and peekShared. The map is then unused.
type Limiter struct {
	limit   rate.Limit
	burst   int
	name    string  // labels its refusals in the metrics
	metrics Metrics // counts them

	// With a shared store: sh holds the buckets; peek says whether Peek
	// must read them exactly (see Server.newLimiter); log and failing
	// report an unreachable store once per outage.
	sh      shared.Store
	peek    bool
	log     *slog.Logger
	failing atomic.Bool

	mu sync.Mutex
	m  map[string]*bucket
}

type bucket struct {
	lim  *rate.Limiter
	seen time.Time
}

func newLimiter(name string, limit rate.Limit, burst int, m Metrics) *Limiter {
	return &Limiter{limit: limit, burst: burst, name: name, metrics: m, m: make(map[string]*bucket)}
}

// newLimiter is the server's limiter: in memory when the server is alone,
// in Config.Shared in a cluster. peek marks a limiter whose Peek decides
// something (a limit of wrong answers: Peek before checking the answer,
// Allow only to count a wrong one); in a cluster its buckets are kept as
// versioned records that Peek can read without taking a token. Other
// limiters use the store's own bucket (shared.Store.Allow, one round trip)
// and their Peek answers yes.
func (s *Server) newLimiter(name string, limit rate.Limit, burst int, peek bool) *Limiter {
	l := newLimiter(name, limit, burst, s.cfg.Metrics)
	if s.cfg.Shared != nil {
		l.sh, l.peek, l.log, l.m = s.cfg.Shared, peek, s.log, nil
	}
	return l
}

// Allow takes a token for ip. When none is left it returns the wait until
// the next one, for Retry-After.
func (l *Limiter) Allow(ip string, now time.Time) (bool, time.Duration) {
	if l.limit == rate.Inf {
		return true, 0
	}
	if l.sh != nil {
		return l.allowShared(ip, now)
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	b, ok := l.m[ip]
	if !ok {
		b = &bucket{lim: rate.NewLimiter(l.limit, l.burst)}
		l.m[ip] = b
	}
	b.seen = now
	r := b.lim.ReserveN(now, 1)
	if !r.OK() {
		l.metrics.RateLimited(l.name)
		return false, time.Minute
	}
	if d := r.DelayFrom(now); d > 0 {
		r.CancelAt(now)
		l.metrics.RateLimited(l.name)
		return false, d
	}
	return true, 0
}

// Peek reports whether ip would get a token now, without taking one.
func (l *Limiter) Peek(ip string, now time.Time) (bool, time.Duration) {
	if l.limit == rate.Inf {
		return true, 0
	}
	if l.sh != nil {
		return l.peekShared(ip, now)
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	b, ok := l.m[ip]
	if !ok {
		return true, 0
	}
	if tok := b.lim.TokensAt(now); tok < 1 {
		return false, time.Duration((1 - tok) / float64(l.limit) * float64(time.Second))
	}
	return true, 0
}

// purge drops buckets idle long enough to have refilled completely. (The
// shared store forgets full buckets by itself.)
func (l *Limiter) purge(now time.Time) {
	if l.sh != nil {
		return
	}
	full := time.Duration(math.Ceil(float64(l.burst)/float64(l.limit))) * time.Second
	l.mu.Lock()
	defer l.mu.Unlock()
	for ip, b := range l.m {
		if now.Sub(b.seen) > full {
			delete(l.m, ip)
		}
	}
}

// The shared buckets.
//
// A failure of the shared store is a refusal, whatever the limiter: most
// limiters bound guessing (typed codes, passwords, recovery answers), and
// failing open there would lift the bound exactly when an attacker can
// make the store slow; and with the store down the sign-ins the other
// limiters protect cannot complete anyway (rooms, tickets and pending
// sign-ins live there too). The refusal asks for a short wait
// (sharedFailWait), is not counted as a rate-limit refusal in the metrics
// (nobody went over a limit), and is logged at warn once per outage of
// each limiter.
const (
	sharedFailWait = time.Second
	// sharedTimeout bounds one limiter decision against the shared store.
	sharedTimeout = 2 * time.Second
	// sharedRetries bounds the compare-and-set rounds of a peekable
	// limiter's Allow under contention.
	sharedRetries = 16
)

var errContended = errors.New("rate limit: too much contention on one bucket")

func (l *Limiter) sharedKey(key string) string { return "rl:" + l.name + ":" + key }

func (l *Limiter) allowShared(key string, now time.Time) (bool, time.Duration) {
	ctx, cancel := context.WithTimeout(context.Background(), sharedTimeout)
	defer cancel()
	var ok bool
	var wait time.Duration
	var err error
	switch {
	case l.limit <= 0 || l.burst < 1:
		// No token ever (as rate.Limiter with burst 0): refused like the
		// in-memory limiter, without asking the store.
		ok, wait = false, time.Minute
	case l.peek:
		ok, wait, err = l.takeRecord(ctx, l.sharedKey(key), now)
	default:
		ok, wait, err = l.sh.Allow(ctx, l.sharedKey(key), float64(l.limit), l.burst)
	}
	if err != nil {
		l.storeFailed(err)
		return false, sharedFailWait
	}
	l.storeAnswered()
	if !ok {
		l.metrics.RateLimited(l.name)
		if wait <= 0 {
			wait = time.Millisecond
		}
	}
	return ok, wait
}

func (l *Limiter) peekShared(key string, now time.Time) (bool, time.Duration) {
	if !l.peek {
		// The store's own buckets cannot be read without taking a token;
		// such a limiter's Peek is only ever advisory (Allow decides).
		return true, 0
	}
	if l.limit <= 0 || l.burst < 1 {
		return false, time.Minute
	}
	ctx, cancel := context.WithTimeout(context.Background(), sharedTimeout)
	defer cancel()
	v, _, err := l.sh.Load(ctx, l.sharedKey(key))
	if errors.Is(err, shared.ErrNotFound) {
		l.storeAnswered()
		return true, 0
	}
	if err != nil {
		l.storeFailed(err)
		return false, sharedFailWait
	}
	l.storeAnswered()
	ok, wait, _ := l.gcra(parseTAT(v), now)
	return ok, wait
}

// takeRecord is the token bucket as GCRA over a versioned record holding
// the theoretical arrival time (TAT, Unix nanoseconds): a token is free
// when TAT is at most (burst-1) emission intervals ahead of now; taking it
// moves TAT one interval on. The record expires when the bucket is full
// again, so an absent record is a full bucket. A lost compare-and-set
// (another instance took a token meanwhile) reloads and decides again.
func (l *Limiter) takeRecord(ctx context.Context, key string, now time.Time) (bool, time.Duration, error) {
	for range sharedRetries {
		v, ver, err := l.sh.Load(ctx, key)
		found := err == nil
		if err != nil && !errors.Is(err, shared.ErrNotFound) {
			return false, 0, err
		}
		var tat time.Time
		if found {
			tat = parseTAT(v)
		}
		ok, wait, next := l.gcra(tat, now)
		if !ok {
			return false, wait, nil
		}
		enc := []byte(strconv.FormatInt(next.UnixNano(), 10))
		ttl := next.Sub(now)
		if found {
			_, err = l.sh.Swap(ctx, key, ver, enc, ttl)
		} else {
			err = l.sh.Create(ctx, key, enc, ttl)
		}
		switch {
		case err == nil:
			return true, 0, nil
		case errors.Is(err, shared.ErrConflict), errors.Is(err, shared.ErrNotFound):
			continue
		default:
			return false, 0, err
		}
	}
	return false, 0, errContended
}

// gcra decides one take against tat (zero: a full bucket) and returns the
// TAT after it.
func (l *Limiter) gcra(tat, now time.Time) (ok bool, wait time.Duration, next time.Time) {
	t := time.Duration(float64(time.Second) / float64(l.limit))
	if t <= 0 {
		t = 1
	}
	base := now
	if tat.After(now) {
		base = tat
	}
	if ahead, allowed := base.Sub(now), time.Duration(l.burst-1)*t; ahead > allowed {
		return false, ahead - allowed, time.Time{}
	}
	return true, 0, base.Add(t)
}

// parseTAT reads a record written by takeRecord; garbage reads as a full
// bucket (the record is ours; it cannot be garbage unless the store lost it).
func parseTAT(v []byte) time.Time {
	n, err := strconv.ParseInt(string(v), 10, 64)
	if err != nil {
		return time.Time{}
	}
	return time.Unix(0, n)
}

func (l *Limiter) storeFailed(err error) {
	if l.failing.CompareAndSwap(false, true) {
		l.log.Warn("rate limit refused: the shared store failed", slog.String("limiter", l.name), slog.Any("err", err))
	}
}

func (l *Limiter) storeAnswered() {
	if l.failing.Load() && l.failing.CompareAndSwap(true, false) {
		l.log.Info("rate limit: the shared store answers again", slog.String("limiter", l.name))
	}
}
