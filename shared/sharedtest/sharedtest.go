// Package sharedtest is the conformance suite of shared.Store: Run checks
// every method's contract against a real implementation, and both
// shared.Memory and shared/redis run it. Expiry is checked against the real
// clock with short TTLs, waiting by polling with a deadline, never by a
// fixed sleep.
package sharedtest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/qrauth/qrauth/shared"
)

const (
	// short is the TTL of the expiry tests: long enough for the write and
	// a read to land before it on a loaded machine most of the time (a
	// read that misses it is not counted as a failure, see alive), short
	// enough that the suite stays quick.
	short = 150 * time.Millisecond
	long  = time.Minute
	// patience bounds every wait for something the store must do on its
	// own (expire a key, deliver a hint).
	patience = 10 * time.Second
	// takers is how many goroutines race for one key.
	takers = 16
)

// Run runs the suite; open returns a new, empty store for one subtest (it
// may share a backend with other subtests, kept apart by key prefix) and
// registers its Close with t.Cleanup if it wants it closed.
func Run(t *testing.T, open func(t *testing.T) shared.Store) {
	t.Run("Records", func(t *testing.T) { testRecords(t, open(t)) })
	t.Run("RecordSwapOneWinner", func(t *testing.T) { testSwapRace(t, open(t)) })
	t.Run("RecordExpiry", func(t *testing.T) { testRecordExpiry(t, open(t)) })
	t.Run("Entries", func(t *testing.T) { testEntries(t, open(t)) })
	t.Run("EntryTakeOnce", func(t *testing.T) { testTakeRace(t, open(t)) })
	t.Run("EntryExpiry", func(t *testing.T) { testEntryExpiry(t, open(t)) })
	t.Run("Drop", func(t *testing.T) { testDrop(t, open(t)) })
	t.Run("Once", func(t *testing.T) { testOnce(t, open(t)) })
	t.Run("KeySpaces", func(t *testing.T) { testKeySpaces(t, open(t)) })
	t.Run("Invalid", func(t *testing.T) { testInvalid(t, open(t)) })
	t.Run("Allow", func(t *testing.T) { testAllow(t, open(t)) })
	t.Run("AllowKeys", func(t *testing.T) { testAllowKeys(t, open(t)) })
	t.Run("Hints", func(t *testing.T) { testHints(t, open(t)) })
	t.Run("Close", func(t *testing.T) { testClose(t, open(t)) })
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), patience)
	t.Cleanup(cancel)
	return c
}

func is(t *testing.T, what string, err, want error) {
	t.Helper()
	if !errors.Is(err, want) {
		t.Fatalf("%s: got error %v, want %v", what, err, want)
	}
}

func ok(t *testing.T, what string, err error) {
	t.Helper()
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

// Eventually polls cond every few milliseconds until it is true, failing
// t after patience. Stores' tests use it to wait for what happens on its
// own (expiry, reconnection).
func Eventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(patience)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %v", what, patience)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func testRecords(t *testing.T, s shared.Store) {
	c := ctx(t)
	_, _, err := s.Load(c, "r")
	is(t, "Load absent", err, shared.ErrNotFound)
	_, err = s.Swap(c, "r", 1, []byte("x"), long)
	is(t, "Swap absent", err, shared.ErrNotFound)

	in := []byte("room-1")
	ok(t, "Create", s.Create(c, "r", in, long))
	in[0] = 'X' // the store keeps its own copy
	is(t, "Create again", s.Create(c, "r", []byte("other"), long), shared.ErrConflict)
	v, ver, err := s.Load(c, "r")
	ok(t, "Load", err)
	if string(v) != "room-1" || ver != 1 {
		t.Fatalf("Load = %q v%d, want room-1 v1", v, ver)
	}
	v[0] = 'Y' // nor does the caller's copy reach it
	n, err := s.Swap(c, "r", 1, []byte("room-2"), long)
	ok(t, "Swap", err)
	if n != 2 {
		t.Fatalf("Swap returned version %d, want 2", n)
	}
	_, err = s.Swap(c, "r", 1, []byte("stale"), long)
	is(t, "Swap stale version", err, shared.ErrConflict)
	v, ver, err = s.Load(c, "r")
	ok(t, "Load after Swap", err)
	if string(v) != "room-2" || ver != 2 {
		t.Fatalf("Load = %q v%d, want room-2 v2", v, ver)
	}
	// Empty values round-trip (a room may be created before it has state).
	ok(t, "Create empty", s.Create(c, "e", nil, long))
	v, ver, err = s.Load(c, "e")
	ok(t, "Load empty", err)
	if len(v) != 0 || ver != 1 {
		t.Fatalf("Load empty = %q v%d", v, ver)
	}
	// Binary values round-trip byte for byte.
	bin := []byte{0, 1, 2, 0xff, 0xfe, '\n', 0}
	ok(t, "Create binary", s.Create(c, "b", bin, long))
	v, _, err = s.Load(c, "b")
	ok(t, "Load binary", err)
	if !bytes.Equal(v, bin) {
		t.Fatalf("Load binary = %x, want %x", v, bin)
	}

	ok(t, "Delete", s.Delete(c, "r"))
	_, _, err = s.Load(c, "r")
	is(t, "Load deleted", err, shared.ErrNotFound)
	ok(t, "Delete again", s.Delete(c, "r"))
	_, err = s.Swap(c, "r", 2, []byte("x"), long)
	is(t, "Swap deleted", err, shared.ErrNotFound)
	// A deleted key can be created afresh, at version 1.
	ok(t, "Create after Delete", s.Create(c, "r", []byte("again"), long))
	if _, ver, _ := s.Load(c, "r"); ver != 1 {
		t.Fatalf("version after re-Create = %d, want 1", ver)
	}
}

func testSwapRace(t *testing.T, s shared.Store) {
	c := ctx(t)
	for round := range 10 {
		key := fmt.Sprintf("race%d", round)
		ok(t, "Create", s.Create(c, key, []byte("start"), long))
		var wins atomic.Int32
		var winner atomic.Value
		errs := make(chan error, takers)
		start := make(chan struct{})
		var wg sync.WaitGroup
		for i := range takers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				mine := fmt.Sprintf("w%d", i)
				n, err := s.Swap(c, key, 1, []byte(mine), long)
				switch {
				case err == nil:
					if n != 2 {
						errs <- fmt.Errorf("winner got version %d, want 2", n)
					}
					wins.Add(1)
					winner.Store(mine)
				case !errors.Is(err, shared.ErrConflict):
					errs <- err
				}
			}()
		}
		close(start)
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Fatal(err)
		}
		if wins.Load() != 1 {
			t.Fatalf("round %d: %d Swaps won, want exactly 1", round, wins.Load())
		}
		v, ver, err := s.Load(c, key)
		ok(t, "Load", err)
		if string(v) != winner.Load().(string) || ver != 2 {
			t.Fatalf("round %d: Load = %q v%d, want the winner's %q v2", round, v, ver, winner.Load())
		}
	}
}

// alive checks that key is still there if less than ttl has passed since
// before it was written; past ttl a miss proves nothing (the machine was
// slow), so it is not a failure.
func alive(t *testing.T, what string, since time.Time, ttl time.Duration, err error) {
	t.Helper()
	if errors.Is(err, shared.ErrNotFound) && time.Since(since) < ttl {
		t.Fatalf("%s: gone after %v, before its TTL of %v", what, time.Since(since), ttl)
	}
	if err != nil && !errors.Is(err, shared.ErrNotFound) {
		t.Fatalf("%s: %v", what, err)
	}
}

func testRecordExpiry(t *testing.T, s shared.Store) {
	c := ctx(t)
	start := time.Now()
	ok(t, "Create", s.Create(c, "r", []byte("v"), short))
	_, _, err := s.Load(c, "r")
	alive(t, "Load", start, short, err)
	Eventually(t, "record expiry", func() bool {
		_, _, err := s.Load(c, "r")
		return errors.Is(err, shared.ErrNotFound)
	})
	_, err = s.Swap(c, "r", 1, []byte("late"), long)
	is(t, "Swap expired", err, shared.ErrNotFound)
	ok(t, "Create over expired", s.Create(c, "r", []byte("new"), long))

	// Swap sets the TTL it is given: a long-lived record swapped with a
	// short TTL expires.
	ok(t, "Create long", s.Create(c, "s", []byte("v"), long))
	start = time.Now()
	_, err = s.Swap(c, "s", 1, []byte("v2"), short)
	ok(t, "Swap short", err)
	_, _, err = s.Load(c, "s")
	alive(t, "Load swapped", start, short, err)
	Eventually(t, "expiry after Swap", func() bool {
		_, _, err := s.Load(c, "s")
		return errors.Is(err, shared.ErrNotFound)
	})
}

func testEntries(t *testing.T, s shared.Store) {
	c := ctx(t)
	_, err := s.Get(c, "k")
	is(t, "Get absent", err, shared.ErrNotFound)
	_, err = s.Take(c, "k")
	is(t, "Take absent", err, shared.ErrNotFound)

	in := []byte("ticket")
	ok(t, "Put", s.Put(c, "k", in, long))
	in[0] = 'X'
	is(t, "Put again", s.Put(c, "k", []byte("other"), long), shared.ErrConflict)
	v, err := s.Get(c, "k")
	ok(t, "Get", err)
	if string(v) != "ticket" {
		t.Fatalf("Get = %q, want ticket", v)
	}
	v[0] = 'Y'
	v, err = s.Get(c, "k")
	ok(t, "Get twice", err)
	if string(v) != "ticket" {
		t.Fatalf("second Get = %q: Get must not remove nor share its bytes", v)
	}
	v, err = s.Take(c, "k")
	ok(t, "Take", err)
	if string(v) != "ticket" {
		t.Fatalf("Take = %q, want ticket", v)
	}
	_, err = s.Take(c, "k")
	is(t, "Take again", err, shared.ErrNotFound)
	_, err = s.Get(c, "k")
	is(t, "Get taken", err, shared.ErrNotFound)
	ok(t, "Put after Take", s.Put(c, "k", []byte("next"), long))
	ok(t, "Put empty", s.Put(c, "empty", nil, long))
	v, err = s.Take(c, "empty")
	ok(t, "Take empty", err)
	if len(v) != 0 {
		t.Fatalf("Take empty = %q", v)
	}
}

func testTakeRace(t *testing.T, s shared.Store) {
	c := ctx(t)
	for round := range 10 {
		key := fmt.Sprintf("psk%d", round)
		ok(t, "Put", s.Put(c, key, []byte(key), long))
		var got atomic.Int32
		errs := make(chan error, takers)
		start := make(chan struct{})
		var wg sync.WaitGroup
		for range takers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				v, err := s.Take(c, key)
				switch {
				case err == nil:
					if string(v) != key {
						errs <- fmt.Errorf("Take = %q, want %q", v, key)
					}
					got.Add(1)
				case !errors.Is(err, shared.ErrNotFound):
					errs <- err
				}
			}()
		}
		close(start)
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Fatal(err)
		}
		if got.Load() != 1 {
			t.Fatalf("round %d: %d takers got the entry, want exactly 1", round, got.Load())
		}
	}
}

func testEntryExpiry(t *testing.T, s shared.Store) {
	c := ctx(t)
	start := time.Now()
	ok(t, "Put", s.Put(c, "k", []byte("v"), short))
	_, err := s.Get(c, "k")
	alive(t, "Get", start, short, err)
	Eventually(t, "entry expiry", func() bool {
		_, err := s.Get(c, "k")
		return errors.Is(err, shared.ErrNotFound)
	})
	_, err = s.Take(c, "k")
	is(t, "Take expired", err, shared.ErrNotFound)
	is(t, "Drop expired", s.Drop(c, "k", []byte("v")), shared.ErrNotFound)
	ok(t, "Put over expired", s.Put(c, "k", []byte("w"), long))
	v, err := s.Take(c, "k")
	ok(t, "Take", err)
	if string(v) != "w" {
		t.Fatalf("Take = %q, want w", v)
	}

	// An entry taken before it expires is gone at once.
	start = time.Now()
	ok(t, "Put short", s.Put(c, "t", []byte("v"), short))
	_, err = s.Take(c, "t")
	alive(t, "Take short", start, short, err)
}

func testDrop(t *testing.T, s shared.Store) {
	c := ctx(t)
	is(t, "Drop absent", s.Drop(c, "k", []byte("a")), shared.ErrNotFound)
	ok(t, "Put", s.Put(c, "k", []byte("owner-b"), long))
	// The old owner's value: nothing removed.
	is(t, "Drop other value", s.Drop(c, "k", []byte("owner-a")), shared.ErrConflict)
	is(t, "Drop prefix of value", s.Drop(c, "k", []byte("owner-")), shared.ErrConflict)
	is(t, "Drop empty", s.Drop(c, "k", nil), shared.ErrConflict)
	v, err := s.Get(c, "k")
	ok(t, "Get after refused Drop", err)
	if string(v) != "owner-b" {
		t.Fatalf("Get = %q, want owner-b", v)
	}
	ok(t, "Drop matching", s.Drop(c, "k", []byte("owner-b")))
	_, err = s.Get(c, "k")
	is(t, "Get dropped", err, shared.ErrNotFound)
	is(t, "Drop again", s.Drop(c, "k", []byte("owner-b")), shared.ErrNotFound)
}

func testOnce(t *testing.T, s shared.Store) {
	c := ctx(t)
	first, err := s.Once(c, "n", long)
	ok(t, "Once", err)
	if !first {
		t.Fatal("first Once reported a replay")
	}
	first, err = s.Once(c, "n", long)
	ok(t, "Once again", err)
	if first {
		t.Fatal("second Once reported first")
	}
	// Concurrent callers: exactly one is first.
	var firsts atomic.Int32
	var wg sync.WaitGroup
	for range takers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			f, err := s.Once(c, "race", long)
			if err != nil {
				t.Error(err)
			}
			if f {
				firsts.Add(1)
			}
		}()
	}
	wg.Wait()
	if firsts.Load() != 1 {
		t.Fatalf("%d concurrent Once calls were first, want 1", firsts.Load())
	}
	// A mark expires; then the key is new again.
	start := time.Now()
	_, err = s.Once(c, "short", short)
	ok(t, "Once short", err)
	first, err = s.Once(c, "short", short)
	ok(t, "Once short again", err)
	if first && time.Since(start) < short {
		t.Fatal("Once reported first again before the mark's TTL")
	}
	Eventually(t, "Once mark expiry", func() bool {
		f, err := s.Once(c, "short", long)
		ok(t, "Once", err)
		return f
	})
}

// testKeySpaces checks that records, entries, marks and buckets of the
// same name are different things.
func testKeySpaces(t *testing.T, s shared.Store) {
	c := ctx(t)
	ok(t, "Create", s.Create(c, "same", []byte("record"), long))
	ok(t, "Put", s.Put(c, "same", []byte("entry"), long))
	first, err := s.Once(c, "same", long)
	ok(t, "Once", err)
	if !first {
		t.Fatal("Once saw a record or entry as its mark")
	}
	v, _, err := s.Load(c, "same")
	ok(t, "Load", err)
	if string(v) != "record" {
		t.Fatalf("Load = %q", v)
	}
	v, err = s.Take(c, "same")
	ok(t, "Take", err)
	if string(v) != "entry" {
		t.Fatalf("Take = %q", v)
	}
	ok(t, "Delete", s.Delete(c, "same"))
	is(t, "Get after Delete of the record", func() error { _, err := s.Get(c, "same"); return err }(), shared.ErrNotFound)
	ok(t, "Put", s.Put(c, "same", []byte("entry2"), long))
	ok(t, "Delete", s.Delete(c, "same"))
	if _, err := s.Get(c, "same"); err != nil {
		t.Fatalf("Delete (records) removed an entry: %v", err)
	}
}

func testInvalid(t *testing.T, s shared.Store) {
	c := ctx(t)
	for _, ttl := range []time.Duration{0, -time.Second} {
		is(t, "Create ttl", s.Create(c, "i", nil, ttl), shared.ErrInvalid)
		is(t, "Put ttl", s.Put(c, "i", nil, ttl), shared.ErrInvalid)
		_, err := s.Once(c, "i", ttl)
		is(t, "Once ttl", err, shared.ErrInvalid)
	}
	_, _, err := s.Load(c, "i")
	is(t, "Load after refused Create", err, shared.ErrNotFound)
	_, err = s.Get(c, "i")
	is(t, "Get after refused Put", err, shared.ErrNotFound)
	first, err := s.Once(c, "i", long)
	if err != nil || !first {
		t.Fatalf("Once after refused Once = %v, %v: the refusal left a mark", first, err)
	}
	ok(t, "Create", s.Create(c, "i", []byte("v"), long))
	_, err = s.Swap(c, "i", 1, []byte("w"), 0)
	is(t, "Swap ttl", err, shared.ErrInvalid)
	if v, ver, _ := s.Load(c, "i"); string(v) != "v" || ver != 1 {
		t.Fatalf("refused Swap changed the record: %q v%d", v, ver)
	}
	for _, tc := range []struct {
		rate  float64
		burst int
	}{{0, 1}, {-1, 1}, {math.NaN(), 1}, {math.Inf(1), 1}, {1, 0}, {1, -1}} {
		_, _, err := s.Allow(c, "i", tc.rate, tc.burst)
		is(t, fmt.Sprintf("Allow(%v, %d)", tc.rate, tc.burst), err, shared.ErrInvalid)
	}
}

func testAllow(t *testing.T, s shared.Store) {
	c := ctx(t)
	const rate, burst = 10.0, 3 // one token per 100 ms
	for i := range burst {
		allowed, wait, err := s.Allow(c, "ip", rate, burst)
		ok(t, "Allow", err)
		if !allowed || wait != 0 {
			// The burst refills at 10/s, so a slow machine only adds
			// tokens: a refusal here is a bug.
			t.Fatalf("Allow %d of the burst = %v, %v", i+1, allowed, wait)
		}
	}
	start := time.Now()
	allowed, wait, err := s.Allow(c, "ip", rate, burst)
	ok(t, "Allow past burst", err)
	took := time.Since(start)
	if allowed {
		// Allowed only if the burst took more than a token's interval.
		t.Fatalf("Allow past the burst was let through")
	}
	if wait <= 0 || wait > 100*time.Millisecond+took {
		t.Fatalf("refusal says wait %v, want (0, 100ms]", wait)
	}
	// A refusal takes nothing: a second refusal right after says to wait
	// no longer than the first (a refusal that took a token would add a
	// whole interval), and after the wait one token is there.
	allowed, wait2, err := s.Allow(c, "ip", rate, burst)
	ok(t, "Allow refused again", err)
	if !allowed && wait2 > wait {
		t.Fatalf("a second refusal says wait %v, longer than the first's %v: the refusal took a token", wait2, wait)
	}
	Eventually(t, "a token after the wait", func() bool {
		allowed, _, err := s.Allow(c, "ip", rate, burst)
		ok(t, "Allow", err)
		return allowed
	})
	if time.Since(start) < wait-10*time.Millisecond {
		t.Fatalf("a token came back after %v, before the %v the refusal said", time.Since(start), wait)
	}
	// Another key has its own bucket.
	allowed, _, err = s.Allow(c, "other", rate, burst)
	ok(t, "Allow other key", err)
	if !allowed {
		t.Fatal("a fresh bucket refused")
	}
}

// testAllowKeys checks that concurrent callers share one bucket: of many
// calls at once on a slow bucket, exactly burst pass.
func testAllowKeys(t *testing.T, s shared.Store) {
	c := ctx(t)
	const burst = 5
	var passed atomic.Int32
	var wg sync.WaitGroup
	for range 4 * takers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			// One token an hour: nothing refills during the test.
			allowed, wait, err := s.Allow(c, "shared", 1.0/3600, burst)
			if err != nil {
				t.Error(err)
				return
			}
			if allowed {
				passed.Add(1)
			} else if wait < 59*time.Minute {
				t.Errorf("refusal says wait %v, want about an hour", wait)
			}
		}()
	}
	wg.Wait()
	if passed.Load() != burst {
		t.Fatalf("%d of %d concurrent calls passed, want the burst of %d", passed.Load(), 4*takers, burst)
	}
}

// Hints waits for a hint: it publishes topic every few milliseconds until
// got reports it (a subscription may not be listening yet when it
// starts, and hints may be lost), failing after patience.
func Hints(t testing.TB, s shared.Store, topic string, got func() bool) {
	t.Helper()
	c, cancel := context.WithTimeout(context.Background(), patience)
	defer cancel()
	Eventually(t, "hint "+topic, func() bool {
		if got() {
			return true
		}
		s.Publish(c, topic) // errors while the backend recovers are fine here
		return false
	})
}

func testHints(t *testing.T, s shared.Store) {
	c, cancel := context.WithCancel(ctx(t))
	const subscribers = 2
	var mu sync.Mutex
	var seen [subscribers]map[string]int
	// each reports whether every subscriber has seen topic.
	each := func(topic string) func() bool {
		return func() bool {
			mu.Lock()
			defer mu.Unlock()
			for _, m := range seen {
				if m[topic] == 0 {
					return false
				}
			}
			return true
		}
	}
	var wg sync.WaitGroup
	ends := make(chan error, subscribers)
	for i := range subscribers {
		seen[i] = map[string]int{}
		wg.Add(1)
		go func() {
			defer wg.Done()
			ends <- s.Subscribe(c, func(topic string) {
				mu.Lock()
				seen[i][topic]++
				mu.Unlock()
			})
		}()
	}
	// Publish until every subscriber is surely listening; from then on
	// one Publish must reach each of them.
	Hints(t, s, "room:a", each("room:a"))
	ok(t, "Publish", s.Publish(c, "room:b"))
	Eventually(t, "hint room:b to every subscriber", each("room:b"))
	mu.Lock()
	for i, m := range seen {
		if len(m) != 2 {
			t.Errorf("subscriber %d saw %v, want room:a and room:b only", i, m)
		}
	}
	mu.Unlock()
	cancel()
	wg.Wait()
	for range subscribers {
		if err := <-ends; err != nil {
			t.Fatalf("Subscribe after its ctx ended = %v, want nil", err)
		}
	}
	// Publishing with no subscriber is fine.
	ok(t, "Publish unheard", s.Publish(ctx(t), "room:d"))
}

func testClose(t *testing.T, s shared.Store) {
	c := ctx(t)
	ok(t, "Ping", s.Ping(c))
	ended := make(chan error, 1)
	var subscribed atomic.Bool
	go func() {
		ended <- s.Subscribe(c, func(string) { subscribed.Store(true) })
	}()
	Hints(t, s, "before-close", subscribed.Load)
	ok(t, "Close", s.Close())
	select {
	case err := <-ended:
		is(t, "Subscribe ended by Close", err, shared.ErrClosed)
	case <-time.After(patience):
		t.Fatal("Close did not end Subscribe")
	}
	is(t, "Ping after Close", s.Ping(c), shared.ErrClosed)
	is(t, "Put after Close", s.Put(c, "k", nil, long), shared.ErrClosed)
	_, err := s.Take(c, "k")
	is(t, "Take after Close", err, shared.ErrClosed)
	is(t, "Subscribe after Close", s.Subscribe(c, func(string) {}), shared.ErrClosed)
}
