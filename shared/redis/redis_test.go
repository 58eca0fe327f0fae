package redis_test

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/qrauth/qrauth/internal/redistest"
	"github.com/qrauth/qrauth/internal/testutil"
	"github.com/qrauth/qrauth/shared"
	"github.com/qrauth/qrauth/shared/redis"
	"github.com/qrauth/qrauth/shared/sharedtest"
)

func TestMain(m *testing.M) {
	code := m.Run()
	redistest.StopShared()
	os.Exit(code)
}

var prefixes atomic.Int64

// open connects to srv with a prefix of its own, so that tests sharing a
// server never see each other's keys or hints.
func open(t *testing.T, srv *redistest.Server) (*redis.Store, string) {
	t.Helper()
	prefix := fmt.Sprintf("t%d-%d:", os.Getpid(), prefixes.Add(1))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	s, err := redis.Open(ctx, srv.URL, redis.Options{Prefix: prefix})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s, prefix
}

func TestConformance(t *testing.T) {
	srv := redistest.Shared(t)
	sharedtest.Run(t, func(t *testing.T) shared.Store {
		s, _ := open(t, srv)
		return s
	})
}

// TestPrefixes: two deployments on one Redis, told apart by prefix, share
// no key, bucket nor hint.
func TestPrefixes(t *testing.T) {
	srv := redistest.Shared(t)
	a, _ := open(t, srv)
	b, _ := open(t, srv)
	ctx := context.Background()
	if err := a.Put(ctx, "k", []byte("a"), time.Minute); err != nil {
		t.Fatal(err)
	}
	if err := b.Put(ctx, "k", []byte("b"), time.Minute); err != nil {
		t.Fatalf("b's Put saw a's key: %v", err)
	}
	if v, _ := a.Take(ctx, "k"); string(v) != "a" {
		t.Fatalf("a took %q", v)
	}
	if err := a.Create(ctx, "r", []byte("a"), time.Minute); err != nil {
		t.Fatal(err)
	}
	if _, _, err := b.Load(ctx, "r"); !errors.Is(err, shared.ErrNotFound) {
		t.Fatalf("b loaded a's record: %v", err)
	}
	if first, _ := b.Once(ctx, "n", time.Minute); !first {
		t.Fatal("b's Once saw a's mark")
	}
	if first, _ := a.Once(ctx, "n", time.Minute); !first {
		t.Fatal("a's Once saw b's mark")
	}
	if ok, _, _ := a.Allow(ctx, "ip", 1.0/3600, 1); !ok {
		t.Fatal("a refused")
	}
	if ok, _, _ := b.Allow(ctx, "ip", 1.0/3600, 1); !ok {
		t.Fatal("b shares a's bucket")
	}

	// Hints: b's subscriber hears b's hints and never a's.
	sctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var heardA, heardB atomic.Bool
	go b.Subscribe(sctx, func(topic string) {
		switch topic {
		case "from-a":
			heardA.Store(true)
		case "from-b":
			heardB.Store(true)
		}
	})
	a.Publish(ctx, "from-a") // not heard whenever it lands
	sharedtest.Hints(t, b, "from-b", heardB.Load)
	// Now b listens; one more hint from a must not reach it. A hint from b
	// sent after it shows that a's went by (one connection, in order).
	heardB.Store(false)
	if err := a.Publish(ctx, "from-a"); err != nil {
		t.Fatal(err)
	}
	sharedtest.Hints(t, b, "from-b", heardB.Load)
	if heardA.Load() {
		t.Fatal("b heard a hint published under a's prefix")
	}
}

// TestKeys checks the documented key layout and that every key carries a
// TTL in Redis, so Redis forgets expired state by itself.
func TestKeys(t *testing.T) {
	srv := redistest.Shared(t)
	s, prefix := open(t, srv)
	ctx := context.Background()
	s.Create(ctx, "room", []byte("v"), time.Minute)
	s.Put(ctx, "psk", []byte("v"), time.Minute)
	s.Once(ctx, "nonce", time.Minute)
	s.Allow(ctx, "ip", 1, 5)
	cli := redistest.Client(t, srv)
	for _, k := range []string{"rec:room", "val:psk", "once:nonce", "rate:ip"} {
		ttl, err := cli.PTTL(ctx, prefix+k).Result()
		if err != nil {
			t.Fatal(err)
		}
		if ttl <= 0 || ttl > time.Minute {
			t.Errorf("%s%s: PTTL %v, want a TTL within a minute", prefix, k, ttl)
		}
	}
	keys, err := cli.Keys(ctx, prefix+"*").Result()
	if err != nil {
		t.Fatal(err)
	}
	if len(keys) != 4 {
		t.Errorf("keys under %q: %v, want 4", prefix, keys)
	}
}

// TestOpenErrors: a clear error when Redis is not there or the URL is
// wrong, and never the password in it.
func TestOpenErrors(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	const secret = "s3cret-pa55"
	for _, tc := range []struct{ name, url, want string }{
		{"Unreachable", "redis://user:" + secret + "@127.0.0.1:1/0", "does not answer"},
		{"BadScheme", "http://user:" + secret + "@127.0.0.1:1/0", "invalid URL scheme"},
		{"BadDB", "redis://user:" + secret + "@127.0.0.1:1/x", "invalid database"},
		{"Unparsable", "redis://user:" + secret + "@127.0.0.1:port/0", "does not parse"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, err := redis.Open(ctx, tc.url, redis.Options{})
			if err == nil {
				s.Close()
				t.Fatal("Open succeeded")
			}
			if strings.Contains(err.Error(), secret) {
				t.Fatalf("error shows the password: %v", err)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %q does not say %q", err, tc.want)
			}
		})
	}
}

func TestOpenAuth(t *testing.T) {
	srv := redistest.Own(t)
	cli := redistest.Client(t, srv)
	ctx := context.Background()
	const secret = "s3cret-pa55"
	if err := cli.ConfigSet(ctx, "requirepass", secret).Err(); err != nil {
		t.Fatal(err)
	}
	wrong := strings.Replace(srv.URL, "redis://", "redis://:wrong-"+secret+"@", 1)
	if _, err := redis.Open(ctx, wrong, redis.Options{}); err == nil || strings.Contains(err.Error(), secret) {
		t.Fatalf("Open with a wrong password = %v", err)
	}
	right := strings.Replace(srv.URL, "redis://", "redis://:"+secret+"@", 1)
	s, err := redis.Open(ctx, right, redis.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.Put(ctx, "k", []byte("v"), time.Minute); err != nil {
		t.Fatal(err)
	}
}

// TestDownAndBack: with Redis stopped every call fails with an error that
// is neither ErrNotFound nor ErrConflict (so the caller answers
// "internal"), and once it is back the same Store works again, its
// Subscribe included, with no action from the caller.
func TestDownAndBack(t *testing.T) {
	srv := redistest.Own(t)
	s, _ := open(t, srv)
	ctx := context.Background()
	if err := s.Put(ctx, "k", []byte("v"), time.Minute); err != nil {
		t.Fatal(err)
	}
	sctx, cancel := context.WithCancel(ctx)
	var heard atomic.Value
	heard.Store("")
	ended := make(chan error, 1)
	go func() { ended <- s.Subscribe(sctx, func(topic string) { heard.Store(topic) }) }()
	sharedtest.Hints(t, s, "up", func() bool { return heard.Load() == "up" })

	srv.Stop()
	cctx, ccancel := context.WithTimeout(ctx, 10*time.Second)
	defer ccancel()
	down := func(what string, err error) {
		t.Helper()
		if err == nil || errors.Is(err, shared.ErrNotFound) || errors.Is(err, shared.ErrConflict) {
			t.Errorf("%s with Redis down = %v, want a backend error", what, err)
		}
	}
	down("Ping", s.Ping(cctx))
	down("Put", s.Put(cctx, "k2", []byte("v"), time.Minute))
	_, err := s.Take(cctx, "k")
	down("Take", err)
	_, _, err = s.Load(cctx, "r")
	down("Load", err)
	_, err = s.Swap(cctx, "r", 1, nil, time.Minute)
	down("Swap", err)
	_, err = s.Once(cctx, "n", time.Minute)
	down("Once", err)
	_, _, err = s.Allow(cctx, "ip", 1, 1)
	down("Allow", err)
	down("Publish", s.Publish(cctx, "t"))

	if err := srv.Restart(); err != nil {
		t.Fatal(err)
	}
	sharedtest.Eventually(t, "Ping after restart", func() bool { return s.Ping(ctx) == nil })
	// Redis kept nothing: the entry is lost, as docs/cluster.md says.
	if _, err := s.Take(ctx, "k"); !errors.Is(err, shared.ErrNotFound) {
		t.Fatalf("Take after restart = %v, want ErrNotFound", err)
	}
	if err := s.Put(ctx, "k", []byte("v2"), time.Minute); err != nil {
		t.Fatalf("Put after restart: %v", err)
	}
	// The scripts were flushed with the rest; they load again by themselves.
	if err := s.Create(ctx, "r", []byte("v"), time.Minute); err != nil {
		t.Fatalf("Create after restart: %v", err)
	}
	sharedtest.Hints(t, s, "back", func() bool { return heard.Load() == "back" })
	cancel()
	if err := <-ended; err != nil {
		t.Fatalf("Subscribe ended with %v", err)
	}
}

// TestTLS: a rediss:// URL speaks TLS, checks the server's certificate
// against Options.TLSConfig's roots, and refuses a server it does not
// trust; a redis:// URL with TLS settings is refused.
func TestTLS(t *testing.T) {
	ca := testutil.NewTestCA(t)
	cert, key := ca.Leaf(t, 10, "127.0.0.1")
	srv := redistest.OwnTLS(t, cert, key)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	s, err := redis.Open(ctx, srv.TLSURL, redis.Options{TLSConfig: &tls.Config{RootCAs: ca.Pool()}})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.Put(ctx, "k", []byte("v"), time.Minute); err != nil {
		t.Fatal(err)
	}
	// The value went over TLS to the same server the plain port serves.
	if v, err := redistest.Client(t, srv).Get(ctx, redis.DefaultPrefix+"val:k").Result(); err != nil || v != "v" {
		t.Fatalf("the key on the server = %q, %v", v, err)
	}

	other := testutil.NewTestCA(t)
	if s, err := redis.Open(ctx, srv.TLSURL+"?max_retries=-1", redis.Options{TLSConfig: &tls.Config{RootCAs: other.Pool()}}); err == nil {
		s.Close()
		t.Fatal("Open trusted a certificate from an unknown CA")
	} else if !strings.Contains(err.Error(), "certificate") {
		t.Fatalf("untrusted server: error %q does not name the certificate", err)
	}
	if s, err := redis.Open(ctx, srv.URL, redis.Options{TLSConfig: &tls.Config{RootCAs: ca.Pool()}}); err == nil {
		s.Close()
		t.Fatal("Open took TLS settings with a redis:// URL")
	} else if !strings.Contains(err.Error(), "rediss://") {
		t.Fatalf("redis:// with TLS settings: error %q", err)
	}
}
