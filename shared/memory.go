package shared

import (
	"context"
	"crypto/subtle"
	"math"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// Memory is the Store of a single qrauthd: maps under one mutex. It is on
// the hot path of every login, so an operation is a map access and a copy
// of the value, nothing more.
//
// Expired keys are treated as absent as soon as their time is up and are
// removed when next touched, by Purge, and by a sweep that a write runs by
// itself at most once per sweepEvery, so that keys nobody touches again
// cannot pile up even if the owner never calls Purge.
//
// Hints (Publish) go to each Subscribe through a buffered channel of
// hintBuffer; Publish never blocks, so it may be called with the caller's
// own locks held, and a hint for a subscriber whose buffer is full is
// dropped (hints may be lost, see Store). The subscriber's fn runs on the
// goroutine that called Subscribe, never on the publisher's.
type Memory struct {
	now func() time.Time

	mu        sync.Mutex
	recs      map[string]record
	vals      map[string]entry
	marks     map[string]time.Time // Once: key → expiry
	buckets   map[string]*bucket
	subs      map[chan string]struct{}
	lastSweep time.Time
	closed    bool
	done      chan struct{} // closed by Close; ends every Subscribe
}

type record struct {
	v   []byte
	ver uint64
	exp time.Time
}

type entry struct {
	v   []byte
	exp time.Time
}

type bucket struct {
	lim *rate.Limiter
	// full is when the bucket will be full again if nobody takes from
	// it: from then on it is the same as a new bucket and can be dropped.
	full time.Time
}

const (
	// hintBuffer is how many hints a subscriber may fall behind by
	// before new ones are dropped for it. Rooms re-check on their own, so
	// a burst beyond this costs latency, never correctness.
	hintBuffer = 256
	// sweepEvery bounds how often a write sweeps every map for expired
	// keys: often enough that memory stays bounded by what lives in a
	// couple of minutes, rarely enough that the O(n) cost is noise.
	sweepEvery = time.Minute
)

var _ Store = (*Memory)(nil)

// NewMemory returns an empty Memory reading the time from now (time.Now
// when nil); tests pass a fake clock to expire keys without waiting.
func NewMemory(now func() time.Time) *Memory {
	if now == nil {
		now = time.Now
	}
	return &Memory{
		now:       now,
		recs:      map[string]record{},
		vals:      map[string]entry{},
		marks:     map[string]time.Time{},
		buckets:   map[string]*bucket{},
		subs:      map[chan string]struct{}{},
		lastSweep: now(),
		done:      make(chan struct{}),
	}
}

func clone(b []byte) []byte {
	if b == nil {
		return []byte{}
	}
	return append([]byte(nil), b...)
}

// begin locks m and returns the current time, or ErrClosed (unlocked).
// The clock is read under the lock so that one operation sees one "now".
func (m *Memory) begin() (time.Time, error) {
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return time.Time{}, ErrClosed
	}
	return m.now(), nil
}

// maybeSweep runs Purge's sweep if the last one is sweepEvery old. Called
// with m.mu held, from writes only.
func (m *Memory) maybeSweep(now time.Time) {
	if now.Sub(m.lastSweep) >= sweepEvery {
		m.sweep(now)
	}
}

func (m *Memory) Create(ctx context.Context, key string, v []byte, ttl time.Duration) error {
	if ttl <= 0 {
		return ErrInvalid
	}
	now, err := m.begin()
	if err != nil {
		return err
	}
	defer m.mu.Unlock()
	m.maybeSweep(now)
	if r, ok := m.recs[key]; ok && now.Before(r.exp) {
		return ErrConflict
	}
	m.recs[key] = record{v: clone(v), ver: 1, exp: now.Add(ttl)}
	return nil
}

func (m *Memory) Load(ctx context.Context, key string) ([]byte, uint64, error) {
	now, err := m.begin()
	if err != nil {
		return nil, 0, err
	}
	defer m.mu.Unlock()
	r, ok := m.recs[key]
	if !ok {
		return nil, 0, ErrNotFound
	}
	if !now.Before(r.exp) {
		delete(m.recs, key)
		return nil, 0, ErrNotFound
	}
	return clone(r.v), r.ver, nil
}

func (m *Memory) Swap(ctx context.Context, key string, ver uint64, v []byte, ttl time.Duration) (uint64, error) {
	if ttl <= 0 {
		return 0, ErrInvalid
	}
	now, err := m.begin()
	if err != nil {
		return 0, err
	}
	defer m.mu.Unlock()
	r, ok := m.recs[key]
	if !ok {
		return 0, ErrNotFound
	}
	if !now.Before(r.exp) {
		delete(m.recs, key)
		return 0, ErrNotFound
	}
	if r.ver != ver {
		return 0, ErrConflict
	}
	r.v, r.ver, r.exp = clone(v), r.ver+1, now.Add(ttl)
	m.recs[key] = r
	return r.ver, nil
}

func (m *Memory) Delete(ctx context.Context, key string) error {
	if _, err := m.begin(); err != nil {
		return err
	}
	defer m.mu.Unlock()
	delete(m.recs, key)
	return nil
}

func (m *Memory) Put(ctx context.Context, key string, v []byte, ttl time.Duration) error {
	if ttl <= 0 {
		return ErrInvalid
	}
	now, err := m.begin()
	if err != nil {
		return err
	}
	defer m.mu.Unlock()
	m.maybeSweep(now)
	if e, ok := m.vals[key]; ok && now.Before(e.exp) {
		return ErrConflict
	}
	m.vals[key] = entry{v: clone(v), exp: now.Add(ttl)}
	return nil
}

func (m *Memory) Take(ctx context.Context, key string) ([]byte, error) {
	now, err := m.begin()
	if err != nil {
		return nil, err
	}
	defer m.mu.Unlock()
	e, ok := m.vals[key]
	if !ok {
		return nil, ErrNotFound
	}
	delete(m.vals, key)
	if !now.Before(e.exp) {
		return nil, ErrNotFound
	}
	// The entry is no longer reachable from the map, so its bytes can be
	// handed over without a copy.
	return e.v, nil
}

func (m *Memory) Get(ctx context.Context, key string) ([]byte, error) {
	now, err := m.begin()
	if err != nil {
		return nil, err
	}
	defer m.mu.Unlock()
	e, ok := m.vals[key]
	if !ok {
		return nil, ErrNotFound
	}
	if !now.Before(e.exp) {
		delete(m.vals, key)
		return nil, ErrNotFound
	}
	return clone(e.v), nil
}

func (m *Memory) Drop(ctx context.Context, key string, v []byte) error {
	now, err := m.begin()
	if err != nil {
		return err
	}
	defer m.mu.Unlock()
	e, ok := m.vals[key]
	if !ok {
		return ErrNotFound
	}
	if !now.Before(e.exp) {
		delete(m.vals, key)
		return ErrNotFound
	}
	// Values may be secrets' owners (a ticket's holder); compare in
	// constant time as everywhere else.
	if subtle.ConstantTimeCompare(e.v, v) != 1 {
		return ErrConflict
	}
	delete(m.vals, key)
	return nil
}

func (m *Memory) Once(ctx context.Context, key string, ttl time.Duration) (bool, error) {
	if ttl <= 0 {
		return false, ErrInvalid
	}
	now, err := m.begin()
	if err != nil {
		return false, err
	}
	defer m.mu.Unlock()
	m.maybeSweep(now)
	if exp, ok := m.marks[key]; ok && now.Before(exp) {
		return false, nil
	}
	m.marks[key] = now.Add(ttl)
	return true, nil
}

func (m *Memory) Allow(ctx context.Context, key string, r float64, burst int) (bool, time.Duration, error) {
	if !(r > 0) || math.IsInf(r, 1) || burst < 1 {
		return false, 0, ErrInvalid
	}
	now, err := m.begin()
	if err != nil {
		return false, 0, err
	}
	defer m.mu.Unlock()
	m.maybeSweep(now)
	b := m.buckets[key]
	if b == nil || !now.Before(b.full) {
		// A bucket that has refilled is as good as new; starting a new
		// one also takes any change of rate or burst.
		b = &bucket{lim: rate.NewLimiter(rate.Limit(r), burst)}
		m.buckets[key] = b
	} else {
		if b.lim.Limit() != rate.Limit(r) {
			b.lim.SetLimitAt(now, rate.Limit(r))
		}
		if b.lim.Burst() != burst {
			b.lim.SetBurstAt(now, burst)
		}
	}
	res := b.lim.ReserveN(now, 1)
	if d := res.DelayFrom(now); d > 0 {
		// Refused: give the token back, so a refusal takes nothing.
		res.CancelAt(now)
		return false, d, nil
	}
	// Empty tokens refill in (burst - tokens)/rate; the bucket is
	// forgettable from then on.
	missing := float64(burst) - b.lim.TokensAt(now)
	b.full = now.Add(time.Duration(missing / r * float64(time.Second)))
	return true, 0, nil
}

func (m *Memory) Publish(ctx context.Context, topic string) error {
	if _, err := m.begin(); err != nil {
		return err
	}
	defer m.mu.Unlock()
	for ch := range m.subs {
		select {
		case ch <- topic:
		default: // full: this hint is lost for that subscriber
		}
	}
	return nil
}

func (m *Memory) Subscribe(ctx context.Context, fn func(topic string)) error {
	if _, err := m.begin(); err != nil {
		return err
	}
	ch := make(chan string, hintBuffer)
	m.subs[ch] = struct{}{}
	m.mu.Unlock()
	defer func() {
		m.mu.Lock()
		delete(m.subs, ch)
		m.mu.Unlock()
	}()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-m.done:
			return ErrClosed
		case topic := <-ch:
			fn(topic)
		}
	}
}

func (m *Memory) Ping(ctx context.Context) error {
	if _, err := m.begin(); err != nil {
		return err
	}
	m.mu.Unlock()
	return nil
}

// Close ends every Subscribe and makes every later call return ErrClosed.
func (m *Memory) Close() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if !m.closed {
		m.closed = true
		close(m.done)
	}
	return nil
}

// Purge removes every expired key and every bucket that has refilled.
// Nothing it removes could be seen anyway; it only returns the memory.
// The server's purge loop calls it; writes also run it on their own at
// most once per sweepEvery.
func (m *Memory) Purge() {
	m.mu.Lock()
	defer m.mu.Unlock()
	if !m.closed {
		m.sweep(m.now())
	}
}

func (m *Memory) sweep(now time.Time) {
	m.lastSweep = now
	for k, r := range m.recs {
		if !now.Before(r.exp) {
			delete(m.recs, k)
		}
	}
	for k, e := range m.vals {
		if !now.Before(e.exp) {
			delete(m.vals, k)
		}
	}
	for k, exp := range m.marks {
		if !now.Before(exp) {
			delete(m.marks, k)
		}
	}
	for k, b := range m.buckets {
		if !now.Before(b.full) {
			delete(m.buckets, k)
		}
	}
}

// Len reports how many keys (records, entries, Once marks and buckets)
// Memory holds, expired or not: what Purge is for. Tests and metrics use
// it.
func (m *Memory) Len() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.recs) + len(m.vals) + len(m.marks) + len(m.buckets)
}
