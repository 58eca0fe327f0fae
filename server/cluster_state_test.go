package server_test

import (
	"context"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/qrauth/qrauth/internal/redistest"
	"github.com/qrauth/qrauth/server"
	"github.com/qrauth/qrauth/server/oathflow"
	"github.com/qrauth/qrauth/shared"
	"github.com/qrauth/qrauth/shared/redis"
	"github.com/qrauth/qrauth/store"
	"github.com/qrauth/qrauth/wire"
	"golang.org/x/time/rate"
)

// openPair starts two instances of a cluster on loopback ports: one store
// (the same bbolt file, standing in for PostgreSQL) and one shared store.
// edit changes the config of both before start.
func openPair(t *testing.T, sh shared.Store, edit func(*testConfig)) (a, b *testServer) {
	t.Helper()
	db, err := store.Open(t.TempDir()+"/qrauth.db", store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	var servers []*server.Server
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		for _, s := range servers {
			if err := s.Shutdown(ctx); err != nil {
				t.Errorf("shutdown: %v", err)
			}
		}
		db.Close()
	})
	open := func(id string) *testServer {
		cfg := testConfig{Config: server.Config{Addr: "127.0.0.1:0", RoomRate: rate.Inf, AppRate: rate.Inf,
			Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), Shared: sh, InstanceID: id}}
		if edit != nil {
			edit(&cfg)
		}
		s, err := server.New(cfg.Config, db, testFlows(t, cfg, db)...)
		if err != nil {
			t.Fatal(err)
		}
		if err := s.Open(); err != nil {
			t.Fatal(err)
		}
		servers = append(servers, s)
		return &testServer{Server: s, DB: db, URL: s.Origin()}
	}
	return open("a"), open("b")
}

// sharedBackends runs check on the in-process shared store and on a real
// Redis (a server of its own for this test, each check under a prefix of
// its own).
func sharedBackends(t *testing.T, check func(t *testing.T, sh shared.Store)) {
	t.Run("memory", func(t *testing.T) { check(t, shared.NewMemory(nil)) })
	t.Run("redis", func(t *testing.T) { check(t, openRedis(t)) })
}

var redisPrefix atomic.Int64

func openRedis(t *testing.T) shared.Store {
	t.Helper()
	srv := redistest.Own(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	s, err := redis.Open(ctx, srv.URL, redis.Options{Prefix: fmt.Sprintf("t%d-%d:", os.Getpid(), redisPrefix.Add(1))})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// signedStatus makes a device-signed app request to srv and returns the
// status and the refusal's reason.
func signedStatus(t *testing.T, p *phone, srv *testServer, nonce string) (int, string) {
	t.Helper()
	p.srv = srv
	r := wire.AppRequest{Method: "GET", Path: wire.PathAppSessions, Time: time.Now().Unix(), Nonce: nonce, DeviceID: p.id}
	req, _ := http.NewRequest("GET", srv.URL+wire.PathAppSessions, nil)
	req.Header.Set(wire.HeaderDevice, string(p.id))
	req.Header.Set(wire.HeaderTime, fmt.Sprint(r.Time))
	req.Header.Set(wire.HeaderNonce, nonce)
	req.Header.Set(wire.HeaderSignature, r.Sign(p.priv))
	return statusReason(t, req)
}

func statusReason(t *testing.T, req *http.Request) (int, string) {
	t.Helper()
	return statusReasonWith(t, http.DefaultClient, req)
}

func statusReasonWith(t *testing.T, client *http.Client, req *http.Request) (int, string) {
	t.Helper()
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	var body struct {
		Reason string `json:"reason"`
	}
	if resp.StatusCode >= 400 {
		if err := json.Unmarshal(data, &body); err != nil {
			t.Fatalf("%s %s: %d %q", req.Method, req.URL.Path, resp.StatusCode, data)
		}
	}
	return resp.StatusCode, body.Reason
}

// TestClusterNonce: a signed app request accepted by one instance is a
// replay on the other.
func TestClusterNonce(t *testing.T) {
	sharedBackends(t, func(t *testing.T, sh shared.Store) {
		keys := &keyLog{Store: sh}
		a, b := openPair(t, keys, nil)
		p := newPhone(t, a, "+41 79 123 45 67")
		signUp(t, a, p)
		nonce := base64.RawURLEncoding.EncodeToString([]byte("cluster nonce 01"))
		if st, reason := signedStatus(t, p, a, nonce); st != 200 {
			t.Fatalf("first use on A: %d %s", st, reason)
		}
		if st, reason := signedStatus(t, p, b, nonce); st != 401 || reason != "replayed" {
			t.Fatalf("replay on B: %d %s, want 401 replayed", st, reason)
		}
		if st, reason := signedStatus(t, p, a, nonce); st != 401 || reason != "replayed" {
			t.Fatalf("replay on A: %d %s, want 401 replayed", st, reason)
		}
		// B takes the device's requests otherwise.
		other := base64.RawURLEncoding.EncodeToString([]byte("cluster nonce 02"))
		if st, reason := signedStatus(t, p, b, other); st != 200 {
			t.Fatalf("fresh nonce on B: %d %s", st, reason)
		}
		// The shared store was given a hash of each nonce, never the nonce.
		keys.want(t, "nonce:", 2, nonce, other)
	})
}

// TestClusterPendingSignIn: a sign-in parked after its first step on one
// instance is continued on the other, and wrong answers count on both
// towards the one limit.
func TestClusterPendingSignIn(t *testing.T) {
	sharedBackends(t, func(t *testing.T, sh shared.Store) {
		clock := newOATHClock()
		keys := &keyLog{Store: sh}
		a, b := openPair(t, keys, func(c *testConfig) {
			oathConfig(clock, nil)(c)
			c.OATHOn = true
			// OATH's own lock out of the way: the pending sign-in's
			// limit (5 answers) is what is tested.
			oathOn(func(o *oathflow.Config) { o.MaxFailures = 100 })(&c.OATH)
		})
		p, k, _ := oathEnrolled(t, a, clock, "+41 79 123 45 67")
		clock.Add(time.Minute)
		wrong := oathTOTP(k, clock.Now(), 4)

		br := oathFirstStep(t, a, p)
		// B sees the sign-in parked on A; looking counts nothing.
		br.srv = b
		for range 3 {
			if st, pend := br.do("GET", wire.PathOATHSignIn, ""); st != 200 || pend["state"] != "verify" || pend["name"] != "Ada Lovelace" {
				t.Fatalf("pending on B: %d %v", st, pend)
			}
		}
		// Five answers in all, three on A and two on B, ...
		br.srv = a
		for range 3 {
			st, body := oathSecond(br, wrong)
			oathWant(t, st, body, 400, "oath_wrong_code")
		}
		br.srv = b
		for range 2 {
			st, body := oathSecond(br, wrong)
			oathWant(t, st, body, 400, "oath_wrong_code")
		}
		// ... and the sign-in is gone, on both, even for the right code.
		st, body := oathSecond(br, oathTOTP(k, clock.Now(), 0))
		oathWant(t, st, body, 401, "no_pending_sign_in")
		br.srv = a
		st, body = oathSecond(br, oathTOTP(k, clock.Now(), 0))
		oathWant(t, st, body, 401, "no_pending_sign_in")

		// A fresh sign-in parked on A and finished on B: one wrong answer
		// on A, the right one on B; the session works on both.
		br = oathFirstStep(t, a, p)
		st, body = oathSecond(br, wrong)
		oathWant(t, st, body, 400, "oath_wrong_code")
		br.srv = b
		if st, body := oathSecond(br, oathTOTP(k, clock.Now(), 0)); st != 200 || body["session_id"] == nil {
			t.Fatalf("right code on B: %d %v", st, body)
		}
		for _, srv := range []*testServer{a, b} {
			br.srv = srv
			if st, _ := br.do("GET", wire.PathMe, ""); st != 200 {
				t.Fatalf("session on %s: %d", srv.URL, st)
			}
		}
		// The sign-in is used up: on A too.
		br.srv = a
		st, body = oathSecond(br, oathTOTP(k, clock.Now(), 0))
		oathWant(t, st, body, 401, "no_pending_sign_in")
		// Two sign-ins were parked, each under the hash of its cookie.
		keys.want(t, "pending:", 2)
	})
}

// TestClusterRateLimits: the limits count the calls made to both
// instances, both kinds of shared bucket: the typed codes' (peeked before
// the lookup) and the app calls' (the store's own bucket).
func TestClusterRateLimits(t *testing.T) {
	sharedBackends(t, func(t *testing.T, sh shared.Store) {
		a, b := openPair(t, sh, func(c *testConfig) {
			c.CodeRate, c.CodeBurst = rate.Every(time.Hour), 2
			c.AppRate, c.AppBurst = rate.Every(time.Hour), 2
		})
		code := func(srv *testServer) (int, string) {
			req, _ := http.NewRequest("POST", srv.URL+wire.PathAppCode, strings.NewReader(`{"code":"7K3M-QX9D"}`))
			req.Header.Set("Content-Type", "application/json")
			return statusReason(t, req)
		}
		for _, srv := range []*testServer{a, b} {
			if st, reason := code(srv); st != 404 || reason != "code_unknown" {
				t.Fatalf("wrong code on %s: %d %s", srv.URL, st, reason)
			}
		}
		for _, srv := range []*testServer{b, a} {
			if st, reason := code(srv); st != 429 || reason != "rate_limited" {
				t.Fatalf("third wrong code, on %s: %d %s, want 429", srv.URL, st, reason)
			}
		}

		app := func(srv *testServer) (int, string) {
			req, _ := http.NewRequest("GET", srv.URL+wire.PathAppSessions, nil)
			return statusReason(t, req)
		}
		for _, srv := range []*testServer{a, a} {
			if st, reason := app(srv); st != 401 {
				t.Fatalf("unsigned app call on A: %d %s", st, reason)
			}
		}
		if st, reason := app(b); st != 429 || reason != "rate_limited" {
			t.Fatalf("third app call, on B: %d %s, want 429", st, reason)
		}
	})
}

// keyLog is a shared.Store that remembers the keys of Once and Create.
type keyLog struct {
	shared.Store
	mu   sync.Mutex
	keys []string
}

func (k *keyLog) log(key string) {
	k.mu.Lock()
	k.keys = append(k.keys, key)
	k.mu.Unlock()
}

func (k *keyLog) Once(ctx context.Context, key string, ttl time.Duration) (bool, error) {
	k.log(key)
	return k.Store.Once(ctx, key, ttl)
}

func (k *keyLog) Create(ctx context.Context, key string, v []byte, ttl time.Duration) error {
	k.log(key)
	return k.Store.Create(ctx, key, v, ttl)
}

// want checks that n distinct keys began with prefix, each followed by a
// SHA-256 in hex, and that no key contained any of secrets.
func (k *keyLog) want(t *testing.T, prefix string, n int, secrets ...string) {
	t.Helper()
	k.mu.Lock()
	defer k.mu.Unlock()
	seen := map[string]bool{}
	for _, key := range k.keys {
		for _, s := range secrets {
			if strings.Contains(key, s) {
				t.Fatalf("key %q holds a client secret verbatim", key)
			}
		}
		if h, ok := strings.CutPrefix(key, prefix); ok {
			if _, err := hex.DecodeString(h); err != nil || len(h) != 64 {
				t.Fatalf("key %q: want %s and a SHA-256 in hex", key, prefix)
			}
			seen[key] = true
		}
	}
	if len(seen) != n {
		t.Fatalf("%d keys %s…, want %d (all keys: %q)", len(seen), prefix, n, k.keys)
	}
}

// TestClusterCodeGuessesConcurrent: wrong codes sent at once to both
// instances are all counted (the shared record's compare-and-set loses
// none): with a budget of 5, at most one more guess than the budget is
// looked up (the one another instance was checking as the limit was
// reached), never more.
func TestClusterCodeGuessesConcurrent(t *testing.T) {
	sharedBackends(t, func(t *testing.T, sh shared.Store) {
		a, b := openPair(t, sh, func(c *testConfig) {
			c.CodeRate, c.CodeBurst = rate.Every(time.Hour), 5
		})
		const n = 24
		// A client of its own, its connections closed at the end: a
		// connection dialled for a request that another one served would
		// otherwise hold the servers' shutdown up for 5 s.
		tr := &http.Transport{}
		client := &http.Client{Transport: tr, Timeout: 10 * time.Second}
		defer tr.CloseIdleConnections()
		statuses := make(chan int, n)
		var wg sync.WaitGroup
		for i := range n {
			srv := []*testServer{a, b}[i%2]
			wg.Go(func() {
				req, _ := http.NewRequest("POST", srv.URL+wire.PathAppCode, strings.NewReader(`{"code":"7K3M-QX9D"}`))
				req.Header.Set("Content-Type", "application/json")
				st, _ := statusReasonWith(t, client, req)
				statuses <- st
			})
		}
		wg.Wait()
		close(statuses)
		count := map[int]int{}
		for st := range statuses {
			count[st]++
		}
		if count[404] < 5 || count[404] > 6 || count[404]+count[429] != n {
			t.Fatalf("statuses %v: want 5 or 6 lookups (404), the rest 429", count)
		}
	})
}

// failingStore is a shared store whose rate buckets fail while down is set.
type failingStore struct {
	shared.Store
	down atomic.Bool
}

var errDown = errors.New("shared store down (test)")

func (f *failingStore) Allow(ctx context.Context, key string, r float64, burst int) (bool, time.Duration, error) {
	if f.down.Load() {
		return false, 0, errDown
	}
	return f.Store.Allow(ctx, key, r, burst)
}

func (f *failingStore) Load(ctx context.Context, key string) ([]byte, uint64, error) {
	if f.down.Load() && strings.HasPrefix(key, "rl:") {
		return nil, 0, errDown
	}
	return f.Store.Load(ctx, key)
}

// TestClusterRateLimitStoreDown: while the shared store fails, limited
// calls are refused (fail-closed) with a short Retry-After, one warning is
// logged per limiter, and they pass again once it answers.
func TestClusterRateLimitStoreDown(t *testing.T) {
	fs := &failingStore{Store: shared.NewMemory(nil)}
	var logs syncBuffer
	a, _ := openPair(t, fs, func(c *testConfig) {
		c.AppRate, c.AppBurst = rate.Every(time.Hour), 100
		c.Logger = slog.New(slog.NewTextHandler(&logs, nil))
	})
	call := func(path, body string) (int, string, string) {
		method := "GET"
		if body != "" {
			method = "POST"
		}
		req, _ := http.NewRequest(method, a.URL+path, strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var b struct {
			Reason string `json:"reason"`
		}
		json.NewDecoder(resp.Body).Decode(&b)
		return resp.StatusCode, b.Reason, resp.Header.Get("Retry-After")
	}
	fs.down.Store(true)
	for range 3 {
		if st, reason, after := call(wire.PathAppSessions, ""); st != 429 || reason != "rate_limited" || after != "1" {
			t.Fatalf("app call, store down: %d %s Retry-After %q", st, reason, after)
		}
		if st, reason, after := call(wire.PathAppCode, `{"code":"7K3M-QX9D"}`); st != 429 || reason != "rate_limited" || after != "1" {
			t.Fatalf("typed code, store down: %d %s Retry-After %q", st, reason, after)
		}
	}
	out := logs.String()
	for _, name := range []string{"limiter=app", "limiter=code_ip"} {
		if n := strings.Count(out, "rate limit refused: the shared store failed\" "+name); n != 1 {
			t.Fatalf("%d warnings for %s, want 1:\n%s", n, name, out)
		}
	}
	fs.down.Store(false)
	if st, reason, _ := call(wire.PathAppSessions, ""); st != 401 {
		t.Fatalf("app call, store back: %d %s", st, reason)
	}
	if st, reason, _ := call(wire.PathAppCode, `{"code":"7K3M-QX9D"}`); st != 404 {
		t.Fatalf("typed code, store back: %d %s", st, reason)
	}
}

// TestClusterApprovalLongPoll: a relying site long-polling an approval on
// one instance learns of the phone's scan made through the other within
// the re-check interval, not at the end of its wait.
func TestClusterApprovalLongPoll(t *testing.T) {
	clock := &offlineClock{}
	a, b := openPair(t, shared.NewMemory(nil), offlineConfig(clock, func(c *testConfig) {
		c.RoomRecheck = 50 * time.Millisecond
	}))
	p := newPhone(t, a, "+41 79 123 45 67")
	br := signUp(t, a, p)
	_, me := br.do("GET", wire.PathMe, "")
	uid := me["user"].(map[string]any)["id"].(string)
	st, ap := offlineCall(t, a.URL, "POST", wire.PathApprovals, map[string]any{"user_id": uid, "text": "Pay CHF 5 to Carol"}, "Bearer "+offlineAPIToken)
	if st != 201 {
		t.Fatalf("create: %d %v", st, ap)
	}
	id := ap["id"].(string)
	polled := make(chan map[string]any, 1)
	start := time.Now()
	go func() {
		_, v := offlineCall(t, a.URL, "GET", wire.Prefix(wire.PathApproval)+id+"?wait=20", nil, "Bearer "+offlineAPIToken)
		polled <- v
	}()
	// The phone scans through B (its own origin here; one origin behind a
	// load balancer in production).
	url := strings.Replace(offlineScan(t, ap["qr"].(string)), a.URL, b.URL, 1)
	if _, err := offlineDevice(b, p, clock).FetchTransaction(context.Background(), url); err != nil {
		t.Fatal(err)
	}
	v := <-polled
	if v["scanned"] != true || v["status"] != "pending" {
		t.Fatalf("long poll: %v", v)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Fatalf("the long poll on A learnt of the scan on B after %v", d)
	}
}
