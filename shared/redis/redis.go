// Package redis is the shared.Store of a qrauthd cluster, on Redis (6.2 or
// later: Take is GETDEL). Every instance opens the same Redis with the same
// key prefix; several deployments can share one Redis by taking different
// prefixes.
//
// # Keys
//
// With the default prefix "qrauth:":
//
//	qrauth:rec:KEY   hash {v, ver}   versioned records (rooms)
//	qrauth:val:KEY   string          single-use entries (Put/Take/Get/Drop)
//	qrauth:once:KEY  string "1"      Once marks
//	qrauth:rate:KEY  string          a rate bucket's theoretical arrival time (GCRA, µs)
//	qrauth:hints     pub/sub channel the hints' topics are published on
//
// Every key carries its TTL in Redis (PEXPIRE / SET PX), so Redis alone
// forgets what expired; nothing here sweeps. Each compare-then-write
// (Create, Swap, Drop, Allow) is one Lua script, so it is atomic on the
// server whichever instance runs it.
package redis

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"math"
	"net/url"
	"strconv"
	"sync"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/qrauth/qrauth/shared"
)

// DefaultPrefix is the key prefix when Options.Prefix is empty.
const DefaultPrefix = "qrauth:"

// hintBuffer is how many hints a Subscribe may fall behind by.
const hintBuffer = 256

// Options tune Open; the zero value means the defaults.
type Options struct {
	// Prefix starts every key and the hint channel (DefaultPrefix when
	// empty), so that one Redis can serve several deployments.
	Prefix string
	// TLSConfig is for a rediss:// URL whose server certificate is not
	// signed by a system root, or that asks for a client certificate. Its
	// ServerName defaults to the URL's host. A redis:// URL with a
	// TLSConfig is refused rather than silently sent in the clear.
	TLSConfig *tls.Config
}

// Store is a shared.Store on one Redis (a server, or the primary that a
// load balancer or proxy in front of it names).
type Store struct {
	rdb    *goredis.Client
	prefix string
	hints  string

	closeOnce sync.Once
	done      chan struct{} // closed by Close: ends every Subscribe
}

var _ shared.Store = (*Store)(nil)

// Open connects to the Redis at rawURL (redis://[user:password@]host:port/db
// or rediss:// for TLS, or unix:///path) and checks that it answers. Its
// errors never contain the password.
func Open(ctx context.Context, rawURL string, opts Options) (*Store, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		// url's own error quotes the whole URL, password included.
		return nil, errors.New("shared/redis: the Redis URL does not parse (want redis://[user:password@]host:port/db or rediss://…)")
	}
	safe := u.Redacted()
	o, err := goredis.ParseURL(rawURL)
	if err != nil {
		return nil, fmt.Errorf("shared/redis: %s: %w", safe, err)
	}
	if opts.TLSConfig != nil {
		if u.Scheme != "rediss" {
			return nil, fmt.Errorf("shared/redis: %s: TLS settings need a rediss:// URL", safe)
		}
		c := opts.TLSConfig.Clone()
		if c.ServerName == "" {
			c.ServerName = u.Hostname()
		}
		o.TLSConfig = c
	}
	prefix := opts.Prefix
	if prefix == "" {
		prefix = DefaultPrefix
	}
	s := &Store{
		rdb:    goredis.NewClient(o),
		prefix: prefix,
		hints:  prefix + "hints",
		done:   make(chan struct{}),
	}
	if err := s.rdb.Ping(ctx).Err(); err != nil {
		s.rdb.Close()
		return nil, fmt.Errorf("shared/redis: %s does not answer: %w", safe, err)
	}
	return s, nil
}

func (s *Store) rec(key string) string  { return s.prefix + "rec:" + key }
func (s *Store) val(key string) string  { return s.prefix + "val:" + key }
func (s *Store) once(key string) string { return s.prefix + "once:" + key }
func (s *Store) rate(key string) string { return s.prefix + "rate:" + key }

// fail turns a go-redis error into the Store's: redis.Nil is ErrNotFound,
// a closed client ErrClosed, anything else the backend's failure with the
// operation named.
func fail(op string, err error) error {
	switch {
	case errors.Is(err, goredis.Nil):
		return shared.ErrNotFound
	case errors.Is(err, goredis.ErrClosed):
		return shared.ErrClosed
	}
	return fmt.Errorf("shared/redis %s: %w", op, err)
}

// ms is ttl in whole milliseconds, rounded up so that a key never lives
// shorter than asked; ErrInvalid unless positive.
func ms(ttl time.Duration) (int64, error) {
	if ttl <= 0 {
		return 0, shared.ErrInvalid
	}
	return int64((ttl + time.Millisecond - 1) / time.Millisecond), nil
}

var createScript = goredis.NewScript(`
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
redis.call('HSET', KEYS[1], 'v', ARGV[1], 'ver', 1)
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return 1`)

// swapScript returns the new version, -1 if the key is gone, -2 if its
// version is not ARGV[1]. Versions are compared as the decimal strings
// HINCRBY stores, so no Lua float ever touches them.
var swapScript = goredis.NewScript(`
local cur = redis.call('HGET', KEYS[1], 'ver')
if not cur then return -1 end
if cur ~= ARGV[1] then return -2 end
redis.call('HSET', KEYS[1], 'v', ARGV[2])
local n = redis.call('HINCRBY', KEYS[1], 'ver', 1)
redis.call('PEXPIRE', KEYS[1], ARGV[3])
return n`)

// dropScript returns 1 if it removed the key, 0 if the value differs, -1
// if the key is gone.
var dropScript = goredis.NewScript(`
local cur = redis.call('GET', KEYS[1])
if not cur then return -1 end
if cur ~= ARGV[1] then return 0 end
redis.call('DEL', KEYS[1])
return 1`)

// allowScript is GCRA (the generic cell rate algorithm): the key holds the
// theoretical arrival time (TAT) in µs of the server's clock, so every
// instance shares one clock and no instance's drift matters. ARGV[1] is the
// emission interval T (µs per token), ARGV[2] the burst. A request is let
// through if TAT + T - burst*T <= now; it then moves TAT by T. A refusal
// writes nothing and says how long until it would pass. The key expires
// when the bucket is full again (TAT <= now), which is when it is the same
// as no key. Times are formatted with %.0f: Redis would turn a Lua number
// into "%.17g" text, which is not an integer Redis can read back.
var allowScript = goredis.NewScript(`
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local T = tonumber(ARGV[1])
local tat = tonumber(redis.call('GET', KEYS[1]) or now)
if tat < now then tat = now end
local newtat = tat + T
local at = newtat - T * tonumber(ARGV[2])
if at > now then return {0, string.format('%.0f', at - now)} end
redis.call('SET', KEYS[1], string.format('%.0f', newtat), 'PX', string.format('%.0f', math.ceil((newtat - now) / 1000)))
return {1, '0'}`)

func (s *Store) Create(ctx context.Context, key string, v []byte, ttl time.Duration) error {
	px, err := ms(ttl)
	if err != nil {
		return err
	}
	n, err := createScript.Run(ctx, s.rdb, []string{s.rec(key)}, v, px).Int64()
	if err != nil {
		return fail("create", err)
	}
	if n == 0 {
		return shared.ErrConflict
	}
	return nil
}

func (s *Store) Load(ctx context.Context, key string) ([]byte, uint64, error) {
	res, err := s.rdb.HMGet(ctx, s.rec(key), "v", "ver").Result()
	if err != nil {
		return nil, 0, fail("load", err)
	}
	v, ok1 := res[0].(string)
	ver, ok2 := res[1].(string)
	if !ok1 || !ok2 {
		return nil, 0, shared.ErrNotFound
	}
	n, err := strconv.ParseUint(ver, 10, 64)
	if err != nil {
		return nil, 0, fmt.Errorf("shared/redis load: version %q: %w", ver, err)
	}
	return []byte(v), n, nil
}

func (s *Store) Swap(ctx context.Context, key string, ver uint64, v []byte, ttl time.Duration) (uint64, error) {
	px, err := ms(ttl)
	if err != nil {
		return 0, err
	}
	n, err := swapScript.Run(ctx, s.rdb, []string{s.rec(key)}, strconv.FormatUint(ver, 10), v, px).Int64()
	if err != nil {
		return 0, fail("swap", err)
	}
	switch n {
	case -1:
		return 0, shared.ErrNotFound
	case -2:
		return 0, shared.ErrConflict
	}
	return uint64(n), nil
}

func (s *Store) Delete(ctx context.Context, key string) error {
	if err := s.rdb.Del(ctx, s.rec(key)).Err(); err != nil {
		return fail("delete", err)
	}
	return nil
}

func (s *Store) Put(ctx context.Context, key string, v []byte, ttl time.Duration) error {
	px, err := ms(ttl)
	if err != nil {
		return err
	}
	ok, err := s.rdb.SetNX(ctx, s.val(key), v, time.Duration(px)*time.Millisecond).Result()
	if err != nil {
		return fail("put", err)
	}
	if !ok {
		return shared.ErrConflict
	}
	return nil
}

func (s *Store) Take(ctx context.Context, key string) ([]byte, error) {
	v, err := s.rdb.GetDel(ctx, s.val(key)).Bytes()
	if err != nil {
		return nil, fail("take", err)
	}
	return v, nil
}

func (s *Store) Get(ctx context.Context, key string) ([]byte, error) {
	v, err := s.rdb.Get(ctx, s.val(key)).Bytes()
	if err != nil {
		return nil, fail("get", err)
	}
	return v, nil
}

func (s *Store) Drop(ctx context.Context, key string, v []byte) error {
	n, err := dropScript.Run(ctx, s.rdb, []string{s.val(key)}, v).Int64()
	if err != nil {
		return fail("drop", err)
	}
	switch n {
	case -1:
		return shared.ErrNotFound
	case 0:
		return shared.ErrConflict
	}
	return nil
}

func (s *Store) Once(ctx context.Context, key string, ttl time.Duration) (bool, error) {
	px, err := ms(ttl)
	if err != nil {
		return false, err
	}
	first, err := s.rdb.SetNX(ctx, s.once(key), "1", time.Duration(px)*time.Millisecond).Result()
	if err != nil {
		return false, fail("once", err)
	}
	return first, nil
}

func (s *Store) Allow(ctx context.Context, key string, rate float64, burst int) (bool, time.Duration, error) {
	if !(rate > 0) || burst < 1 || math.IsInf(rate, 0) {
		return false, 0, shared.ErrInvalid
	}
	// The emission interval in whole µs, at least 1: rates above a
	// million per second are not a rate limit.
	t := math.Max(1, math.Ceil(1e6/rate))
	res, err := allowScript.Run(ctx, s.rdb, []string{s.rate(key)}, strconv.FormatFloat(t, 'f', 0, 64), burst).Slice()
	if err != nil {
		return false, 0, fail("allow", err)
	}
	if len(res) != 2 {
		return false, 0, fmt.Errorf("shared/redis allow: script answered %v", res)
	}
	ok, _ := res[0].(int64)
	waitText, _ := res[1].(string)
	wait, err := strconv.ParseInt(waitText, 10, 64)
	if err != nil {
		return false, 0, fmt.Errorf("shared/redis allow: script answered %v", res)
	}
	return ok == 1, time.Duration(wait) * time.Microsecond, nil
}

func (s *Store) Publish(ctx context.Context, topic string) error {
	if err := s.rdb.Publish(ctx, s.hints, topic).Err(); err != nil {
		return fail("publish", err)
	}
	return nil
}

// Subscribe listens on the hint channel. go-redis's PubSub reconnects and
// subscribes again on its own when the connection fails (or Redis was down
// when Subscribe began); hints published meanwhile are lost, which the
// Store contract allows.
func (s *Store) Subscribe(ctx context.Context, fn func(topic string)) error {
	select {
	case <-s.done:
		return shared.ErrClosed
	default:
	}
	ps := s.rdb.Subscribe(ctx, s.hints)
	defer ps.Close()
	// The same buffer as shared.Memory's; past it go-redis waits a while,
	// then drops the hint.
	ch := ps.Channel(goredis.WithChannelSize(hintBuffer))
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-s.done:
			return shared.ErrClosed
		case m, ok := <-ch:
			if !ok {
				return shared.ErrClosed
			}
			fn(m.Payload)
		}
	}
}

func (s *Store) Ping(ctx context.Context) error {
	if err := s.rdb.Ping(ctx).Err(); err != nil {
		return fail("ping", err)
	}
	return nil
}

// Close ends every Subscribe and closes the connections; later calls
// return shared.ErrClosed.
func (s *Store) Close() error {
	var err error
	s.closeOnce.Do(func() {
		close(s.done)
		err = s.rdb.Close()
	})
	return err
}
