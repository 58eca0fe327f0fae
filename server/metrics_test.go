package server_test

import (
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/qrauth/qrauth/server"
	"github.com/qrauth/qrauth/wire"
	"golang.org/x/time/rate"
)

var _ server.Metrics = (*recorder)(nil)

// recorder is a server.Metrics that counts every call by its arguments
// ("signin qr ok") and keeps the gauges, telling waiters of each change.
type recorder struct {
	mu      sync.Mutex
	counts  map[string]int
	gauges  map[string]int
	changed chan struct{}
}

func newRecorder() *recorder {
	return &recorder{counts: map[string]int{}, gauges: map[string]int{}, changed: make(chan struct{}, 1)}
}

func (r *recorder) add(m map[string]int, key string, n int) {
	r.mu.Lock()
	m[key] += n
	r.mu.Unlock()
	select {
	case r.changed <- struct{}{}:
	default:
	}
}

func (r *recorder) SignIn(method, result string)       { r.add(r.counts, "signin "+method+" "+result, 1) }
func (r *recorder) SignUp(method, result string)       { r.add(r.counts, "signup "+method+" "+result, 1) }
func (r *recorder) Refused(code, reason string)        { r.add(r.counts, "refused "+code+" "+reason, 1) }
func (r *recorder) ScanToSignedIn(time.Duration)       { r.add(r.counts, "scan_to_signed_in", 1) }
func (r *recorder) TicketExchange(time.Duration)       { r.add(r.counts, "ticket_exchange", 1) }
func (r *recorder) RoomsWaiting(delta int)             { r.add(r.gauges, "rooms", delta) }
func (r *recorder) SocketsOpen(role string, delta int) { r.add(r.gauges, "sockets "+role, delta) }
func (r *recorder) RateLimited(limiter string)         { r.add(r.counts, "rate_limited "+limiter, 1) }

func (r *recorder) count(key string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.counts[key]
}

// waitGauges waits until every gauge is zero: everything opened was closed.
func (r *recorder) waitGauges(t *testing.T) {
	t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		r.mu.Lock()
		open := fmt.Sprint(r.gauges)
		zero := true
		for _, v := range r.gauges {
			zero = zero && v == 0
		}
		r.mu.Unlock()
		if zero {
			return
		}
		select {
		case <-r.changed:
		case <-deadline:
			t.Fatalf("gauges still %s", open)
		}
	}
}

func TestMetricsHooks(t *testing.T) {
	rec := newRecorder()
	srv := MustOpenServer(t, func(c *testConfig) {
		c.Metrics = rec
		c.RoomRate, c.RoomBurst = rate.Every(time.Hour), 4
	})
	p := newPhone(t, srv, "+41 79 123 45 67")
	b := signUp(t, srv, p) // room 1
	signIn(t, srv, p)      // room 2

	// Denied: room 3.
	b3 := newBrowser(t, srv)
	p.join(b3.open())
	b3.next() // scanned
	if d := p.decide(wire.DecisionDeny, false, nil); d.Type != wire.MsgDone || d.Result != wire.ResultDenied {
		t.Fatalf("deny: %+v", d)
	}
	// Refused: a decision signed for another room (room 4).
	b4 := newBrowser(t, srv)
	p.join(b4.open())
	b4.next()
	p.ch.Nonce = strings.Repeat("A", 43)
	if m := p.decide(wire.DecisionApprove, false, nil); m.Type != wire.MsgError {
		t.Fatalf("forged decision: %+v", m)
	}
	// Refused at the ticket: one nobody was given.
	if st, _ := b.exchange(strings.Repeat("x", 43)); st != 401 {
		t.Fatalf("bogus ticket: %d", st)
	}
	// Rate-limited: the fifth room from this address within the hour.
	if _, resp, err := newBrowser(t, srv).dial(""); err == nil || resp == nil || resp.StatusCode != 429 {
		t.Fatalf("fifth room: %v %v, want 429", err, resp)
	}

	for key, want := range map[string]int{
		"signup qr ok":                        1,
		"signin qr ok":                        2, // the sign-up's session too
		"signin qr denied":                    1,
		"signin qr refused":                   2,
		"scan_to_signed_in":                   2,
		"ticket_exchange":                     3,
		"refused unauthorized bad_signature":  1,
		"refused unauthorized ticket_invalid": 1,
		"refused rate_limited rate_limited":   1,
		"rate_limited rooms":                  1,
	} {
		if got := rec.count(key); got != want {
			t.Errorf("%s: %d, want %d (all: %v)", key, got, want, rec.counts)
		}
	}
	for key := range rec.counts {
		if strings.Contains(key, string(p.id)) || strings.Contains(key, p.phone) || strings.Contains(key, "127.0.0.1") {
			t.Errorf("metric %q names the phone or an address", key)
		}
	}
	// Every socket and room ends, and the gauges come back to zero.
	b.ws.Close()
	b3.ws.Close()
	b4.ws.Close()
	p.ws.Close()
	rec.waitGauges(t)
}
