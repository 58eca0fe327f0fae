package server

import (
	"math"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// Limiter keeps one token bucket per key (a client IP, an account). Idle
// buckets are dropped by purge, so the map stays as small as the set of recent callers.
type Limiter struct {
	limit   rate.Limit
	burst   int
	name    string  // labels its refusals in the metrics
	metrics Metrics // counts them

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

// Allow takes a token for ip. When none is left it returns the wait until
// the next one, for Retry-After.
func (l *Limiter) Allow(ip string, now time.Time) (bool, time.Duration) {
	if l.limit == rate.Inf {
		return true, 0
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

// purge drops buckets idle long enough to have refilled completely.
func (l *Limiter) purge(now time.Time) {
	full := time.Duration(math.Ceil(float64(l.burst)/float64(l.limit))) * time.Second
	l.mu.Lock()
	defer l.mu.Unlock()
	for ip, b := range l.m {
		if now.Sub(b.seen) > full {
			delete(l.m, ip)
		}
	}
}
