package redis_test

import (
	"context"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/qrauth/qrauth/internal/redistest"
	"github.com/qrauth/qrauth/shared/redis"
)

// openBench is open for a benchmark: its own prefix on the shared server.
func openBench(b *testing.B) *redis.Store {
	srv := redistest.Shared(b)
	s, err := redis.Open(context.Background(), srv.URL, redis.Options{Prefix: fmt.Sprintf("b%d-%d:", os.Getpid(), prefixes.Add(1))})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { s.Close() })
	return s
}

// BenchmarkPutTake: one PSK's life on loopback Redis, two round trips.
func BenchmarkPutTake(b *testing.B) {
	s := openBench(b)
	ctx := context.Background()
	v := []byte("0123456789abcdef0123456789abcdef")
	b.ReportAllocs()
	for b.Loop() {
		if err := s.Put(ctx, "psk", v, time.Minute); err != nil {
			b.Fatal(err)
		}
		if _, err := s.Take(ctx, "psk"); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkSwap: one room change (a Lua script, by its SHA).
func BenchmarkSwap(b *testing.B) {
	s := openBench(b)
	ctx := context.Background()
	v := make([]byte, 256)
	if err := s.Create(ctx, "room", v, time.Minute); err != nil {
		b.Fatal(err)
	}
	ver := uint64(1)
	b.ReportAllocs()
	for b.Loop() {
		n, err := s.Swap(ctx, "room", ver, v, time.Minute)
		if err != nil {
			b.Fatal(err)
		}
		ver = n
	}
}

// BenchmarkAllow: one rate-limit check (GCRA script).
func BenchmarkAllow(b *testing.B) {
	s := openBench(b)
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := s.Allow(ctx, "ip", 1e6, 1000); err != nil {
			b.Fatal(err)
		}
	}
}
