package shared_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/qrauth/qrauth/shared"
	"github.com/qrauth/qrauth/shared/sharedtest"
)

func TestMemoryConformance(t *testing.T) {
	sharedtest.Run(t, func(t *testing.T) shared.Store {
		m := shared.NewMemory(nil)
		t.Cleanup(func() { m.Close() })
		return m
	})
}

// clock is a fake time source for Memory.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func newClock() *clock { return &clock{t: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)} }

func TestMemoryExpiryExact(t *testing.T) {
	c := newClock()
	m := shared.NewMemory(c.now)
	ctx := context.Background()
	m.Put(ctx, "k", []byte("v"), time.Second)
	m.Create(ctx, "r", []byte("v"), time.Second)
	c.add(time.Second - time.Nanosecond)
	if _, err := m.Get(ctx, "k"); err != nil {
		t.Fatalf("Get just before expiry: %v", err)
	}
	if _, _, err := m.Load(ctx, "r"); err != nil {
		t.Fatalf("Load just before expiry: %v", err)
	}
	c.add(time.Nanosecond)
	if _, err := m.Get(ctx, "k"); !errors.Is(err, shared.ErrNotFound) {
		t.Fatalf("Get at expiry = %v, want ErrNotFound", err)
	}
	if _, _, err := m.Load(ctx, "r"); !errors.Is(err, shared.ErrNotFound) {
		t.Fatalf("Load at expiry = %v, want ErrNotFound", err)
	}
}

func TestMemoryPurge(t *testing.T) {
	c := newClock()
	m := shared.NewMemory(c.now)
	ctx := context.Background()
	for _, k := range []string{"a", "b", "c"} {
		m.Put(ctx, k, []byte("v"), time.Second)
		m.Create(ctx, k, []byte("v"), time.Second)
		m.Once(ctx, k, time.Second)
	}
	m.Put(ctx, "keep", []byte("v"), time.Hour)
	m.Allow(ctx, "ip", 1, 2) // refills in 1 s
	if got := m.Len(); got != 11 {
		t.Fatalf("Len = %d, want 11", got)
	}
	m.Purge()
	if got := m.Len(); got != 11 {
		t.Fatalf("Purge before expiry removed keys: Len = %d", got)
	}
	c.add(time.Second)
	m.Purge()
	if got := m.Len(); got != 1 {
		t.Fatalf("Len after Purge = %d, want 1 (keep)", got)
	}
	if _, err := m.Get(ctx, "keep"); err != nil {
		t.Fatalf("Purge removed a live key: %v", err)
	}
}

// TestMemorySweepsOnItsOwn: keys nobody touches again go away even if
// nobody calls Purge, once a write comes a minute later.
func TestMemorySweepsOnItsOwn(t *testing.T) {
	c := newClock()
	m := shared.NewMemory(c.now)
	ctx := context.Background()
	for _, k := range []string{"a", "b", "c"} {
		m.Put(ctx, k, []byte("v"), time.Second)
	}
	c.add(30 * time.Second)
	m.Put(ctx, "d", []byte("v"), time.Hour)
	if got := m.Len(); got != 4 {
		t.Fatalf("swept before a minute: Len = %d", got)
	}
	c.add(30 * time.Second)
	m.Put(ctx, "e", []byte("v"), time.Hour)
	if got := m.Len(); got != 2 {
		t.Fatalf("Len after a minute = %d, want 2", got)
	}
}

func TestMemoryAllowClock(t *testing.T) {
	c := newClock()
	m := shared.NewMemory(c.now)
	ctx := context.Background()
	for i := range 2 {
		if ok, _, _ := m.Allow(ctx, "ip", 0.5, 2); !ok {
			t.Fatalf("call %d of the burst refused", i+1)
		}
	}
	ok, wait, _ := m.Allow(ctx, "ip", 0.5, 2)
	if ok || wait != 2*time.Second {
		t.Fatalf("past the burst = %v, %v; want refused, 2s", ok, wait)
	}
	c.add(time.Second)
	if ok, wait, _ := m.Allow(ctx, "ip", 0.5, 2); ok || wait != time.Second {
		t.Fatalf("half-way = %v, %v; want refused, 1s", ok, wait)
	}
	c.add(time.Second)
	if ok, _, _ := m.Allow(ctx, "ip", 0.5, 2); !ok {
		t.Fatal("refused after the wait")
	}
	// Idle until full again (2 tokens at 0.5/s: 4 s): the bucket is dropped.
	c.add(4 * time.Second)
	m.Purge()
	if got := m.Len(); got != 0 {
		t.Fatalf("idle bucket kept: Len = %d", got)
	}
}

// TestMemoryPublishUnderLock: Publish never blocks, even when a subscriber
// is stuck and the publisher holds its own lock, as a room does.
func TestMemoryPublishUnderLock(t *testing.T) {
	m := shared.NewMemory(nil)
	defer m.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var roomMu sync.Mutex
	first := make(chan struct{}, 1)
	go m.Subscribe(ctx, func(string) {
		select {
		case first <- struct{}{}:
		default:
		}
		roomMu.Lock() // stuck until the publisher lets go
		roomMu.Unlock()
	})
	sharedtest.Hints(t, m, "x", func() bool {
		select {
		case <-first:
			return true
		default:
			return false
		}
	})
	roomMu.Lock()
	done := make(chan struct{})
	go func() {
		defer close(done)
		for range 10_000 { // far more than the subscriber's buffer
			m.Publish(ctx, "room")
		}
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Publish blocked on a stuck subscriber")
	}
	roomMu.Unlock()
}

func BenchmarkMemoryPutTake(b *testing.B) {
	m := shared.NewMemory(nil)
	ctx := context.Background()
	v := []byte("0123456789abcdef0123456789abcdef")
	b.ReportAllocs()
	for b.Loop() {
		if err := m.Put(ctx, "psk", v, time.Minute); err != nil {
			b.Fatal(err)
		}
		if _, err := m.Take(ctx, "psk"); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkMemorySwap(b *testing.B) {
	m := shared.NewMemory(nil)
	ctx := context.Background()
	v := make([]byte, 256) // about a room's state
	m.Create(ctx, "room", v, time.Minute)
	ver := uint64(1)
	b.ReportAllocs()
	for b.Loop() {
		n, err := m.Swap(ctx, "room", ver, v, time.Minute)
		if err != nil {
			b.Fatal(err)
		}
		ver = n
	}
}

func BenchmarkMemoryPutTakeParallel(b *testing.B) {
	m := shared.NewMemory(nil)
	ctx := context.Background()
	v := []byte("0123456789abcdef0123456789abcdef")
	b.ReportAllocs()
	var n int64
	var mu sync.Mutex
	b.RunParallel(func(pb *testing.PB) {
		mu.Lock()
		n++
		key := string(rune('a' + n))
		mu.Unlock()
		for pb.Next() {
			m.Put(ctx, key, v, time.Minute)
			m.Take(ctx, key)
		}
	})
}
